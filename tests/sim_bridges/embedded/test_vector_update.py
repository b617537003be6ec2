"""The vectorised road-user update equals the per-user loop within float tolerance, on rollouts of every family."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from scenarios.registry import load_families
from sim_bridges.embedded import recorder, vector_update
from sim_bridges.embedded.road_user_kernels import decided_users
from sim_bridges.embedded.scenario_world import build_scenario
from sim_bridges.embedded.world import World

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
        background = np.array([u.background for u in world.road_users_and_ego])
        assert not batch[background].any()  # background life keeps its own pace; ``step`` never reads it
        loop[background] = 0.0
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


def test_vertex_counts_equal_the_padded_comparison() -> None:
    """The kernels' vertex count (a binary search of a path's row) is exact, at vertices and one ulp either side."""
    from sim_bridges.embedded.road_user_kernels import _count_vertices

    world = build_scenario(load_families()["unsignalised_intersection"], 1).world
    table = vector_update.user_table(world).paths
    rng = np.random.default_rng(0)
    paths = rng.integers(0, len(table.paths), 3000)
    at = np.array([rng.choice(table.paths[p].s) for p in paths[:1000]])
    x = np.concatenate([at, np.nextafter(at, -np.inf), np.nextafter(at, np.inf)])
    x = np.concatenate([x, rng.uniform(-50.0, 600.0, len(paths) - len(x))])
    for strict in (False, True):
        expected = (table.vertex_s[paths] < x[:, None]) if strict else (table.vertex_s[paths] <= x[:, None])
        got = [_count_vertices(table.vertex_s, int(p), float(v), strict) for p, v in zip(paths, x, strict=True)]
        assert np.array_equal(got, expected.sum(axis=1))


def test_the_kernels_projection_is_the_paths_own() -> None:
    """``road_user_kernels._project`` on a path window equals ``Path.project(around=...)`` bit for bit."""
    from sim_bridges.embedded.road_user_kernels import _count_vertices, _project, _project_pruned, project_on_path
    from sim_bridges.embedded.vector_update import CHUNK

    world = build_scenario(load_families()["route_lane_change"], 4).world
    table = vector_update.user_table(world).paths
    _, floats = table.kernel_arrays()
    ax, ay, dx, dy, len2, seg_len, s0, s_before_last = floats[:8]
    rng = np.random.default_rng(1)
    for k in rng.integers(0, len(table.paths), 200):
        path = table.paths[k]
        lo = float(rng.uniform(-30.0, path.s[-1]))
        hi = lo + float(rng.uniform(0.0, 120.0))
        full = int(table.count[k])
        k0 = min(max(_count_vertices(floats[13], k, lo, False) - 1, 0), full - 1)
        k1 = max(min(_count_vertices(floats[13], k, hi, True) + 1, full), k0 + 1)
        points = path.pose_at(rng.uniform(lo - 20.0, hi + 20.0, 8))[:, :2] + rng.normal(0.0, 4.0, (8, 2))
        points = np.concatenate([points, path.xy[rng.integers(0, len(path.xy), 4)]])  # ties: on two segments
        want_s, want_lat = path.project(points, around=(lo, hi))
        got = [
            _project(x, y, int(table.offset[k]), full, k0, k1, ax, ay, dx, dy, len2, seg_len, s0, s_before_last[k])
            for x, y in points
        ]
        assert np.array_equal(np.array(got), np.column_stack([want_s, want_lat]))
        one = [project_on_path(path, float(x), float(y), lo, hi) for x, y in points]  # the free ego's projection
        assert np.array_equal(np.array(one), np.column_stack([want_s, want_lat]))
        # Pruned by chunk bounds (the road users' leader search): still the nearest segment, lowest index on ties.
        pruned = [
            _project_pruned(x, y, int(table.offset[k]), full, k0, k1, int(table.chunk_offset[k]), CHUNK, floats,
                            s_before_last[k], np.empty(64))
            for x, y in points
        ]  # fmt: skip
        assert np.array_equal(np.array(pruned), np.column_stack([want_s, want_lat]))


@pytest.mark.parametrize(
    "route",
    [
        "pedestrian_crossing/2",
        "cut_in/1",
        "signalised_intersection/5",
        "lead_vehicle/0",
        "unsignalised_intersection/1",
        "route_lane_change/4",
        "stop_and_go/2",
        "parked_cars/1",
    ],
)
def test_the_vectorised_env_equals_the_per_user_loop(route: str) -> None:
    """Same plans, same states (to 1e-9), same infractions and route completion as the recorder's per-user loop."""
    from irl_vla.envs.env import ResetOption
    from irl_vla.envs.info import InfoKey
    from sim_bridges.embedded.closed_loop_bench import route_follower
    from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig

    envs = [EmbeddedEnv(EmbeddedEnvConfig(vectorised=flag)) for flag in (True, False)]
    for env in envs:
        env.reset(options={ResetOption.ROUTE: route})
    for _ in range(12):
        plan = route_follower(envs[0], 0.6 * envs[0].speed_limit)
        fast, loop = (env.step(plan) for env in envs)
        states = [np.array([[u.s, u.speed, u.accel, u.lateral] for u in env.world.road_users_and_ego]) for env in envs]
        assert np.abs(states[0] - states[1]).max() < TOLERANCE
        assert np.abs(envs[0].ego.state - envs[1].ego.state).max() < TOLERANCE
        assert [(i.kind, i.other_id) for i in fast[4][InfoKey.INFRACTIONS]] == [
            (i.kind, i.other_id) for i in loop[4][InfoKey.INFRACTIONS]
        ]
        for key in (InfoKey.ROUTE_COMPLETION, InfoKey.TRAFFIC_SPEED):
            assert fast[4][key] == pytest.approx(loop[4][key], abs=TOLERANCE)
        # The traffic speed kept from the last tick equals one computed afresh from the objects.
        kept = envs[0]._traffic_speed()
        envs[0]._tick_traffic = None
        assert envs[0]._traffic_speed() == kept
        if fast[2] or fast[3]:
            assert (fast[2], fast[3]) == (loop[2], loop[3])
            break


def _vectorised_steps(family: str, seed: int, steps: int) -> Iterator[tuple[World, vector_update.WorldState]]:
    """The vectorised world of ``family``'s scenario ``seed`` and its current state columns after each step."""
    world = build_scenario(load_families()[family], seed).world
    world.vectorised = True
    for _ in range(steps):
        world.step()
        state = vector_update.current_state(world)
        assert state is not None
        yield world, state


@pytest.mark.parametrize(("family", "seed"), [("stop_and_go", 2), ("cut_in", 1), ("pedestrian_crossing", 2)])
def test_state_columns_and_the_road_users_agree_after_each_step(family: str, seed: int) -> None:
    """A vectorised world's state columns hold exactly what its road users (the recorder's objects) hold, each step.

    Busy scenes with schedules, a scripted cut-in (a lateral manoeuvre), people crossing and background life.
    """
    manoeuvres = 0
    for world, state in _vectorised_steps(family, seed, 60):
        assert state.time == world.time
        objects = vector_update.state_columns(world.road_users_and_ego)
        assert np.array_equal(state.cols, objects)  # bit for bit, every road user and column
        table = vector_update.user_table(world)
        from_objects = vector_update._poses_of(world.road_users_and_ego, table, table.mover_rows)
        assert np.array_equal(vector_update.poses(world)[table.mover_rows], from_objects)
        manoeuvres += int(state.cols[:, vector_update.Column.MANOEUVRING].sum())
    assert manoeuvres > 0 or family != "cut_in"  # the cut-in's lane change ran through the columns


def test_changed_road_users_are_reread_after_invalidate() -> None:
    """A road user changed between steps (outside ``World.step``) is read again once the columns are dropped."""
    family = load_families()["lead_vehicle"]
    loop, batch = build_scenario(family, 0).world, build_scenario(family, 0).world
    batch.vectorised = True
    for world in (loop, batch):
        for _ in range(5):
            world.step()
    lead = next(k for k, u in enumerate(batch.road_users) if u.reactive and not u.background and u.speed > 1.0)
    for world in (loop, batch):
        world.road_users[lead].speed = 0.0
    vector_update.invalidate(batch)
    assert vector_update.current_state(batch) is None
    for world in (loop, batch):
        world.step()
    assert batch.road_users[lead].s == loop.road_users[lead].s  # moved from the changed speed
    assert np.allclose(batch.poses(), loop.poses(), atol=1e-9)


@pytest.mark.parametrize(("family", "seed"), [("merge", 0), ("unsignalised_intersection", 1), ("stop_and_go", 2)])
def test_stop_gaps_from_the_columns_equal_the_worlds(family: str, seed: int) -> None:
    """The stop-line gaps told plainly infinite from the columns equal ``World._stop_gap`` of every decided user."""
    finite = told = 0
    for world, state in _vectorised_steps(family, seed, 50):
        table = state.table
        idx, stop, asked = decided_users(
            table.interacting_index, state.cols, world.time, False, table.steady, table.home_lateral
        )
        assert asked == int(np.isnan(stop).sum())
        plain = ~np.isnan(stop)
        users = [table.users[i] for i in idx]
        assert [i for i in table.interacting_index if table.users[i].reactive and not table.users[i].is_static and
                world.time >= table.users[i].start_time] == idx.tolist()  # fmt: skip
        gaps = vector_update._stop_gaps(world, table, idx, stop)
        assert np.array_equal(gaps, [world._stop_gap(u) for u in users])
        finite += int(np.isfinite(gaps).sum())
        told += int(plain.sum())
    assert finite > 0 and told > 0  # stop lines, hold points or lane ends were met; plain gaps told without a call


def test_the_expert_plans_fork_leaves_the_world_and_its_columns_alone() -> None:
    """``expert_plan`` steps a copy of the world: the env's road users, columns and next steps are unchanged."""
    from irl_vla.envs.env import ResetOption
    from sim_bridges.embedded.closed_loop_bench import route_follower
    from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig

    envs = [EmbeddedEnv(EmbeddedEnvConfig(replan_interval=0.1)) for _ in range(2)]
    for env in envs:
        env.reset(options={ResetOption.ROUTE: "cut_in/1"})
    for step in range(25):
        plan = route_follower(envs[0], 0.5 * envs[0].speed_limit)
        for env in envs:
            env.step(plan)
        before = vector_update.current_state(envs[0].world)
        assert before is not None
        cols = before.cols.copy()
        if step % 5 == 0:
            envs[0].expert_plan()  # forks the world and steps the fork 4 s
        state = vector_update.current_state(envs[0].world)
        assert state is before and np.array_equal(state.cols, cols)
        assert np.array_equal(
            vector_update.state_columns(envs[0].world.road_users_and_ego),
            vector_update.state_columns(envs[1].world.road_users_and_ego),
        )
        assert np.array_equal(state.cols, vector_update.current_state(envs[1].world).cols)  # type: ignore[union-attr]


def test_batched_poses_are_the_paths_own_bit_for_bit() -> None:
    """``PathTable.pose_batch`` equals ``Path.pose_at`` of one arc length exactly: on and off every path, beyond its
    ends, at vertices, with and without a lateral offset (zero offsets take the short way)."""
    world = build_scenario(load_families()["unsignalised_intersection"], 1).world
    table = vector_update.user_table(world).paths
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(table.paths), 4000)
    s = np.array([rng.uniform(-30.0, table.paths[k].length + 30.0) for k in rows])
    s[::7] = [table.paths[k].s[rng.integers(len(table.paths[k].s))] for k in rows[::7]]  # at vertices
    lateral = np.where(rng.random(len(rows)) < 0.5, 0.0, rng.normal(0.0, 3.0, len(rows)))
    batch = table.pose_batch(rows, s, lateral)
    own = np.stack([table.paths[k].pose_at(float(a), float(b)) for k, a, b in zip(rows, s, lateral, strict=True)])
    assert np.array_equal(batch, own)
