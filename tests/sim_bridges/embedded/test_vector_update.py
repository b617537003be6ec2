"""The vectorised road-user update equals the per-user loop within float tolerance, on rollouts of every family."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.registry import load_families
from sim_bridges.embedded import recorder, vector_update
from sim_bridges.embedded.scenario_world import build_scenario

FAMILIES = sorted(load_families())
#: Largest difference allowed between the two accelerations [m/s^2].
TOLERANCE = 1e-9


@pytest.mark.parametrize("family", FAMILIES)
def test_vectorised_accelerations_equal_the_loop(family: str) -> None:
    world = build_scenario(load_families()[family], 3).world
    for step in range(40):
        poses = world.poses()
        loop = world.accelerations(poses=poses)
        batch = vector_update.accelerations(world, False, poses)
        worst = int(np.argmax(np.abs(loop - batch)))
        assert abs(loop[worst] - batch[worst]) < TOLERANCE, (
            f"{family} step {step}: {world.road_users_and_ego[worst].track_token} {loop[worst]} vs {batch[worst]}"
        )
        world.step()


def test_a_vectorised_rollout_follows_the_loop() -> None:
    family = load_families()["signalised_intersection"]
    loop, batch = build_scenario(family, 5).world, build_scenario(family, 5).world
    batch.vectorised = True
    for _ in range(60):
        loop.step()
        batch.step()
    assert np.allclose(loop.poses(), batch.poses(), atol=1e-6)


def test_skipping_the_ego_leaves_the_others_unchanged() -> None:
    world = build_scenario(load_families()["cut_in"], 0).world
    poses = world.poses()
    full = vector_update.accelerations(world, False, poses)
    skipped = vector_update.accelerations(world, True, poses)
    assert skipped[0] == 0.0 and np.array_equal(full[1:], skipped[1:])


def test_batched_annotations_equal_the_loop() -> None:
    world = build_scenario(load_families()["pedestrian_crossing"], 2).world
    for _ in range(10):
        world.step()
    loop = recorder._annotations(world)
    world.vectorised = True
    batch = recorder._annotations(world)
    assert len(loop) > 10 and batch.names == loop.names and batch.track_tokens == loop.track_tokens
    assert np.allclose(batch.boxes, loop.boxes, atol=1e-12) and np.allclose(batch.velocity_3d, loop.velocity_3d)


def test_batched_poses_equal_each_road_users_own() -> None:
    world = build_scenario(load_families()["route_lane_change"], 4).world
    for _ in range(40):
        world.step()
    own = np.stack([u.pose for u in world.road_users_and_ego])
    batch = vector_update.poses(world)
    assert np.allclose(batch[:, :2], own[:, :2], atol=1e-9)
    assert np.allclose(np.angle(np.exp(1j * (batch[:, 2] - own[:, 2]))), 0.0, atol=1e-9)
