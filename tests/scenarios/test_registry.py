"""Scenario families: files parse, sampling is seeded, every family builds a collision-free world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from scenarios.registry import load_families, load_family, sample_value
from sim_bridges.embedded.audit import footprint
from sim_bridges.embedded.scenario_world import build_scenario

FAMILIES = load_families()


def test_sampling_rules() -> None:
    rng = np.random.default_rng(0)
    assert sample_value(3, rng) == 3
    assert all(1 <= sample_value([1, 3], rng) <= 3 for _ in range(50))
    assert isinstance(sample_value([1, 3], rng), int)
    assert 0.5 <= sample_value([0.5, 0.9], rng) <= 0.9
    flags = [sample_value([True, False], rng) for _ in range(50)]
    assert all(type(f) is bool for f in flags) and set(flags) == {True, False}  # choices, not an integer range
    assert sample_value(["left", "right"], rng) in ("left", "right")
    with pytest.raises(ValueError, match="hi < lo"):
        sample_value([3.0, 1.0], rng)


def test_bad_family_files_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhard: false\nroad: {type: corridor}\nego: {}\n")
    with pytest.raises(DataFormatError, match="bad.yaml: missing key 'traffic'"):
        load_family(bad)
    bad.write_text("name: x\nhard: false\nroad: {type: corridor}\nego: {speed: [2.0, 1.0]}\ntraffic: {}\n")
    with pytest.raises(DataFormatError, match=r"bad.yaml: ego.speed: range \[2.0, 1.0\] has hi < lo"):
        load_family(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(DataFormatError, match="bad.yaml: not valid yaml"):
        load_family(bad)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_builds_a_deterministic_collision_free_world(name: str) -> None:
    for seed in range(3):
        a, b = build_scenario(FAMILIES[name], seed), build_scenario(FAMILIES[name], seed)
        assert a.params == b.params
        world = a.world
        for _ in range(150):  # 15 s
            world.step()
            b.world.step()
            boxes = [footprint(x) for x in world.road_users_and_ego]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    assert not boxes[i].intersects(boxes[j]), (
                        name,
                        seed,
                        world.road_users_and_ego[i].track_token,
                        world.road_users_and_ego[j].track_token,
                        world.time,
                    )
        assert np.array_equal(world.ego.pose, b.world.ego.pose)  # same seed, same rollout
        assert a.route_centerline.shape[1] == 3 and a.route_ids


def test_hard_split_tags() -> None:
    assert FAMILIES["unsignalised_intersection"].hard and not FAMILIES["lead_vehicle"].hard
