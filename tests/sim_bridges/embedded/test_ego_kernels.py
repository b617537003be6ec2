"""The closed-loop env's fast paths equal the slow ones: compiled tracker, frames read late, lane-detector shortcuts."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import shapely

from irl_vla.data.geometry import wrap_angle
from irl_vla.data.scene import AgentInput, Frame
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.envs.env import ResetOption
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.lanes import LaneDetector
from irl_vla.envs.tick import Tick
from irl_vla.scoring.simulation import SimulationConfig
from irl_vla.scoring.states import StateIndex
from sim_bridges.embedded.closed_loop_bench import route_follower
from sim_bridges.embedded.deferred import DeferredFrame
from sim_bridges.embedded.ego_control import PlanTracker
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from sim_bridges.embedded.recorder import frame_token, observe

TOLERANCE = 1e-9
ROUTES = ["lead_vehicle/0", "cut_in/1", "signalised_intersection/5", "construction_zone/0"]


def _random_plan(rng: np.random.Generator, still: bool) -> Trajectory:
    t = np.arange(1, DEFAULT_SAMPLING.num_poses + 1)
    poses = np.stack(
        [
            t * rng.uniform(0.0, 4.0) + rng.normal(0.0, 0.3, len(t)),
            t**2 * rng.normal(0.0, 0.1),
            t * rng.normal(0.0, 0.05),
        ],
        axis=1,
    )
    return Trajectory((0.0 * poses if still else poses).astype(np.float32), DEFAULT_SAMPLING)


def test_the_compiled_tracker_equals_the_scorers() -> None:
    """Reference, fitted profiles and 45 tracked steps (past the plan's end) equal the scorer's numpy tracker."""
    rng = np.random.default_rng(0)
    config = SimulationConfig()
    for trial in range(30):
        plan = _random_plan(rng, still=trial % 10 == 0)  # a standing plan: the stopping controller
        origin = rng.normal(0.0, 50.0, 3)
        slow = PlanTracker(plan, origin, config, "test", compiled=False)
        fast = PlanTracker(plan, origin, config, "test", compiled=True)
        assert slow.tracker is not None
        assert np.abs(slow.reference - fast.reference).max() < TOLERANCE
        assert np.abs(slow.tracker.speed[0] - fast.speed).max() < TOLERANCE
        assert np.abs(slow.tracker.curvature[0] - fast.curvature).max() < TOLERANCE
        a = np.zeros(len(StateIndex))
        a[[StateIndex.X, StateIndex.Y, StateIndex.HEADING]] = origin + rng.normal(0.0, 0.5, 3)
        a[StateIndex.VELOCITY_X] = rng.uniform(0.0, 10.0)
        a[StateIndex.STEERING_ANGLE] = rng.normal(0.0, 0.1)
        b = a.copy()
        for _ in range(45):
            a, b = slow.next_state(a, config.dt), fast.next_state(b, config.dt)
            assert np.abs(a - b).max() < TOLERANCE


def test_the_compiled_tracker_refuses_another_step_length() -> None:
    tracker = PlanTracker(_random_plan(np.random.default_rng(1), False), np.zeros(3), SimulationConfig(), "test")
    with pytest.raises(ValueError, match="0.2 s"):
        tracker.next_state(np.zeros(len(StateIndex)), 0.2)


def _same_frame(got: Frame, want: Frame) -> None:
    assert (got.token, got.timestamp, got.instruction, got.traffic_lights) == (
        want.token,
        want.timestamp,
        want.instruction,
        want.traffic_lights,
    )
    for name in ("ego_pose", "ego_velocity", "ego_acceleration", "driving_command"):
        assert np.abs(getattr(got.ego_status, name) - getattr(want.ego_status, name)).max() < TOLERANCE, name
    assert got.annotations.names == want.annotations.names
    assert got.annotations.track_tokens == want.annotations.track_tokens
    assert np.abs(got.annotations.boxes - want.annotations.boxes).max(initial=0.0) < TOLERANCE
    assert np.abs(got.annotations.velocity_3d - want.annotations.velocity_3d).max(initial=0.0) < TOLERANCE


@pytest.mark.parametrize("interval", [0.1, 0.5])
def test_frames_and_observations_read_late_equal_those_built_at_their_step(interval: float) -> None:
    """What a step returns unbuilt and is read only steps later equals the frame ``observe`` gives at that step."""
    env = EmbeddedEnv(EmbeddedEnvConfig(replan_interval=interval))
    for route in ROUTES:
        obs, info = env.reset(options={ResetOption.ROUTE: route})
        kept: list[tuple[AgentInput, Frame, Frame]] = []
        for _ in range(8):
            obs, _, terminated, truncated, info = env.step(route_follower(env, 0.6 * env.speed_limit))
            frame = info[InfoKey.FRAME]
            assert isinstance(frame, DeferredFrame) and not frame.built and isinstance(obs, AgentInput)
            token = frame_token(env.route_id, env._step_index)
            now = observe(env.world, env.instance.route_ids, env._centerline, token, describe=False)
            kept.append((obs, frame, now))
            if terminated or truncated:
                break
        for obs, frame, now in kept:  # read after the world moved on
            _same_frame(frame, now)
            assert frame.built
            current = obs.ego_statuses[-1]
            assert np.abs(current.ego_pose).max() < TOLERANCE  # relative to the current frame
            assert np.abs(current.ego_velocity - now.ego_status.ego_velocity).max() < TOLERANCE
            assert obs.instruction == now.instruction and len(obs.ego_statuses) == 4


def test_a_deferred_frame_builds_once_keeps_what_was_set_and_copies_built() -> None:
    env = EmbeddedEnv(EmbeddedEnvConfig())
    _, info = env.reset(options={ResetOption.ROUTE: "lead_vehicle/0"})
    frame = info[InfoKey.FRAME]
    calls = []
    build = frame.__dict__["_build"]
    frame.__dict__["_build"] = lambda: calls.append(1) or build()
    frame.cameras = {"marker": None}  # type: ignore[dict-item]
    twin = copy.deepcopy(frame)  # copying builds: the copy carries values, not the function
    assert calls == [1] and frame.built and twin.built and "_build" not in twin.__dict__
    assert frame.cameras == {"marker": None} and frame.token == twin.token
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = frame.nothing  # type: ignore[attr-defined]
    assert calls == [1]


def _lane_state_in_full(detector: LaneDetector, tick: Tick) -> InfractionKind | None:
    """``LaneDetector.state`` as written before its shortcuts: the road test, the junction test, every lane."""
    x, y = float(tick.ego_center[0]), float(tick.ego_center[1])
    if not shapely.contains_xy(detector._road, x, y):
        return InfractionKind.OFF_ROAD
    if shapely.contains_xy(detector._junction, x, y):
        return None
    inside = np.flatnonzero(shapely.contains_xy(detector._polygons, x, y))
    if len(inside) == 0:
        return None
    heading = float(tick.ego_center[2])
    if any(_agrees_in_full(detector, i, tick.ego_center[:2], heading) for i in inside):
        return None
    point = shapely.Point(x, y)
    for i in set(range(len(detector._polygons))) - set(inside.tolist()):
        if _agrees_in_full(detector, i, tick.ego_center[:2], heading) and detector._polygons[i].distance(point) <= 0.5:
            return None
    return InfractionKind.WRONG_WAY


def _agrees_in_full(detector: LaneDetector, index: int, xy: np.ndarray, heading: float) -> bool:
    """``LaneDetector._agrees`` as written before: the thinned centerline's nearest pose, numpy's ``wrap_angle``."""
    centerline = detector._lanes[index].centerline  # type: ignore[attr-defined]
    line = centerline[:: max(1, len(centerline) // 50)]
    d = line[:, :2] - xy
    i = int(np.argmin(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]))
    return abs(float(wrap_angle(line[i, 2] - heading))) <= detector.wrong_way_angle


@pytest.mark.parametrize("route", ["signalised_intersection/5", "unsignalised_intersection/1", "merge/0"])
def test_the_lane_detectors_shortcuts_change_no_verdict(route: str) -> None:
    """Lanes first (inside a lane is on the road), junction areas' bounds before the junction test: same states."""
    from scenarios.registry import load_families
    from sim_bridges.embedded.scenario_world import build_scenario

    family, seed = route.split("/")
    world_map = build_scenario(load_families()[family], int(seed)).world.map
    detector = LaneDetector(world_map)
    rng = np.random.default_rng(0)
    lo, hi = detector._bounds[:, :2].min(axis=0) - 5.0, detector._bounds[:, 2:].max(axis=0) + 5.0
    # Random poses, and box centres exactly on the corners of the lanes' and junctions' bounds grown by 0 and by
    # the wrong-way margin (the edges of the grid pre-filter's boxes).
    centres = [rng.uniform(lo, hi) for _ in range(1500)]
    for bounds in (detector._bounds, detector._junction_bounds):
        for x0, y0, x1, y1 in bounds:
            for m in (0.0, detector.wrong_way_margin):
                centres += [np.array(c) for c in ((x0 - m, y0 - m), (x1 + m, y1 + m), (x0 - m, y1 + m))]
    seen = set()
    for centre in centres:
        pose = np.array([*centre, rng.uniform(-np.pi, np.pi)])
        tick = Tick(time=0.0, ego_pose=pose, ego_speed=5.0)
        tick.__dict__["ego_center"] = pose  # the box centre exactly there (the detector reads the centre)
        got = detector.state(tick)
        assert got == _lane_state_in_full(detector, tick), pose
        seen.add(got)
    assert seen == {None, InfractionKind.OFF_ROAD, InfractionKind.WRONG_WAY}  # every verdict was exercised


def test_the_curvature_fit_reads_only_a_cumulative_integration_matrix() -> None:
    """``fit_profiles`` builds its normal equations from the matrix's structure: the scorer's has it, others not."""
    from irl_vla.scoring.lqr import speed_fit_matrices
    from sim_bridges.embedded.ego_kernels import integration_matrix_is_cumulative

    config = SimulationConfig()
    tracker = config.tracker
    c, _ = speed_fit_matrices(config.num_states - 1, config.dt, tracker.jerk_penalty, tracker.jerk_penalty_matrix)
    assert integration_matrix_is_cumulative(c)
    for row, col in ((5, 2), (2, 5), (7, 0)):  # below the diagonal, above it, the initial-value column
        other = c.copy()
        other[row, col] += 1e-9
        assert not integration_matrix_is_cumulative(other)
