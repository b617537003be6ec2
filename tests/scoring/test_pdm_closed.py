"""PDM-Closed on hand-made scenes: navsim's leading-object rule, its IDM, forecast and start pose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely

from irl_vla.data.geometry import relative_to_absolute
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, forecast_tracks, plan_scene
from irl_vla.scoring.pdm_proposals import (
    PROPOSAL_IDM,
    LeaderSearch,
    LeaderWorld,
    LeadIndex,
    PlanPath,
    proposal_acceleration,
    unroll,
)
from irl_vla.scoring.scene_cache import Tracks, build_scene_cache
from irl_vla.scoring.scorer import PDM_SAMPLING
from irl_vla.scoring.simulation import plans_to_reference
from irl_vla.scoring.states import POSE
from tests.scoring.scenes import SIZES, Obj, make_scene

PLANNER = PDMClosedPlanner(FastScorer())
HALF_W = PACIFICA.width / 2
CAR_LEN, CAR_W = SIZES["vehicle"]
RIGHT_LANE = -5.25  # w_in_1; the kerb is at y = -7


def _plan(**kwargs: object):
    return PLANNER.plan(build_scene_cache(make_scene(**kwargs)))  # type: ignore[arg-type]


def _front_x(plan_poses: np.ndarray, ego_x: float) -> np.ndarray:
    """Front-bumper x [m] of relative poses of an ego heading east from ``ego_x``."""
    return ego_x + plan_poses[:, 0] + PACIFICA.front_length


# ------------------------------------------------------------------------------------ corridor and candidates
def test_car_parked_at_the_kerb_beside_the_path_does_not_stop_it() -> None:
    # box y in [-8.35, -6.45]: 0.55 m onto the road, clear of the centerline corridor (y >= -6.3985); its centre
    # is 2.15 m from the path, within half the ego width + half its diagonal (3.59 m), the old rule's reach
    parked = Obj("vehicle", -25.0, -7.4)
    assert abs(parked.y - RIGHT_LANE) < HALF_W + np.hypot(CAR_LEN, CAR_W) / 2
    free = _plan(ego_y=RIGHT_LANE)
    with_car = _plan(ego_y=RIGHT_LANE, objects=(parked,))
    assert with_car.proposal == free.proposal
    np.testing.assert_allclose(with_car.poses, free.poses, atol=1e-9)
    assert with_car.poses[40, 0] > 40.0  # drives on at speed


@pytest.mark.parametrize(("inside", "stops"), [(0.05, True), (-0.05, False)])
def test_a_box_that_enters_the_corridor_stops_the_proposals_of_that_path(inside: float, stops: bool) -> None:
    # a stopped car 30 m ahead whose left edge reaches `inside` [m] into the centerline corridor
    y = RIGHT_LANE - HALF_W - CAR_W / 2 + inside
    cache = build_scene_cache(make_scene(ego_y=RIGHT_LANE, objects=(Obj("vehicle", -10.0, y),)))
    tracks, red = PLANNER.forecast(cache)
    world = LeaderWorld.build(tracks, cache.red_light_polygons, red, cache.initial_state[POSE])
    _, progress, speed = PLANNER.unroll(cache, world)
    center = slice(0, len(PLANNER.config.speed_fractions))  # the centerline's proposals come first
    ego_x0 = cache.initial_state[0]
    front = ego_x0 + progress[center, -1] - float(PLANNER.paths(cache)[0].project(cache.initial_state[:2]))
    front += PACIFICA.front_length
    if stops:
        assert np.all(front < -10.0 - CAR_LEN / 2)  # every speed stays behind the car, creeping up to it
        assert np.all(speed[center, -1] < 1.5)
    else:
        assert front.max() > 0.0  # the fastest drives past


def test_car_in_the_lane_stops_pdm_closed_before_it() -> None:
    # blocks all three paths (centerline and +-1 m): PDM-Closed stops behind it
    plan = _plan(ego_x=-55.0, objects=(Obj("vehicle", -15.0, -1.75),))
    front = _front_x(plan.poses, -55.0)
    assert front.max() < -15.0 - CAR_LEN / 2
    assert front[-1] > -15.0 - CAR_LEN / 2 - 6.0  # closed up to it


def test_car_overlapping_the_ego_at_start_is_ignored() -> None:
    free = _plan()
    overlapping = _plan(objects=(Obj("vehicle", -40.0 + 3.0, -1.75),))
    np.testing.assert_allclose(overlapping.poses, free.poses, atol=1e-9)


def test_red_light_ahead_stops_it_at_the_line() -> None:
    # the red connector c_w_e_0 starts at x = -10; IDM keeps its 1 m minimum gap to the polygon
    plan = _plan(ego_x=-45.0, red=("c_w_e_0",))
    front = _front_x(plan.poses, -45.0)
    assert front.max() < -10.0
    assert front[-1] > -13.0
    green = _front_x(_plan(ego_x=-45.0).poses, -45.0)
    assert green[-1] > 0.0


# ------------------------------------------------------------------------------------ the leader
def _straight_world(objects: Tracks, num_steps: int = 3) -> tuple[PlanPath, LeaderSearch]:
    xs = np.arange(0.0, 111.0)
    path = PlanPath(np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], axis=1))
    world = LeaderWorld.build(objects, [], np.zeros((num_steps, 0), dtype=bool), np.zeros(3))
    return path, LeaderSearch(world, path, path.corridor(10.0, 80.0, HALF_W), PACIFICA)


def _tracks(poses: list[tuple[float, float, float]], velocities: list[tuple[float, float]], num_steps: int = 3):
    n = len(poses)
    p = np.repeat(np.array(poses, dtype=float)[None], num_steps, axis=0)
    v = np.repeat(np.array(velocities, dtype=float)[None], num_steps, axis=0)
    sizes = np.tile([CAR_LEN, CAR_W], (n, 1))
    return Tracks(p, v, sizes, np.ones((num_steps, n), dtype=bool), ["vehicle"] * n, [f"o{i}" for i in range(n)])


def test_leader_distance_is_polygon_to_polygon_and_speed_is_projected_on_the_ego_heading() -> None:
    # a car crossing 20 m ahead of the rear axle (rotated 90 deg: its near face is 0.95 m before its centre, not 2.25 m)
    # ego rear axle at x = 5 (progress 5 on a path along the x axis from 0)
    _, search = _straight_world(_tracks([(25.0, 0.0, np.pi / 2)], [(0.0, 8.0)]))
    lead = search.leaders(2, np.array([5.0]))
    np.testing.assert_allclose(lead[0, LeadIndex.PROGRESS], 25.0 - CAR_W / 2 - PACIFICA.front_length, atol=1e-9)
    assert abs(lead[0, LeadIndex.SPEED]) < 1e-9  # crossing: no speed along the ego heading
    assert lead[0, LeadIndex.REAR_LENGTH] == 0.0
    # a car ahead heading 60 deg off the ego heading at 8 m/s leads with 8 cos(60 deg)
    _, search = _straight_world(_tracks([(25.0, 0.5, np.pi / 3)], [(4.0, 4.0 * np.sqrt(3))]))
    np.testing.assert_allclose(search.leaders(2, np.array([5.0]))[0, LeadIndex.SPEED], 4.0, atol=1e-9)


def test_nearest_polygon_leads_and_objects_behind_the_ego_do_not() -> None:
    # ego at progress 15 (rear axle x = 15): the car at x = 3 projects behind it; of the two ahead the nearer leads
    objects = _tracks([(3.0, 0.0, 0.0), (40.0, 0.0, 0.0), (30.0, 0.3, 0.0)], [(5.0, 0.0), (1.0, 0.0), (2.0, 0.0)])
    _, search = _straight_world(objects)
    lead = search.leaders(2, np.array([15.0]))[0]
    np.testing.assert_allclose(lead[LeadIndex.PROGRESS], 15.0 + (30.0 - CAR_LEN / 2) - (15.0 + PACIFICA.front_length))
    np.testing.assert_allclose(lead[LeadIndex.SPEED], 2.0)
    # nothing ahead: the path's end, less half the ego length
    lead = search.leaders(2, np.array([60.0]))[0]
    assert lead[LeadIndex.PROGRESS] == pytest.approx(110.0) and lead[LeadIndex.REAR_LENGTH] == PACIFICA.length / 2


def test_leader_is_searched_every_second_step_and_zero_before() -> None:
    path, search = _straight_world(_tracks([(60.0, 0.0, 0.0)], [(0.0, 0.0)], num_steps=9), num_steps=9)
    calls: list[int] = []
    original = search.leaders

    def counting(step: int, ego_progress: np.ndarray) -> np.ndarray:
        calls.append(step)
        return original(step, ego_progress)

    search.leaders = counting  # type: ignore[method-assign]
    progress, speed = unroll(path, 10.0, 10.0, np.array([12.0]), search, PROPOSAL_IDM, 8, 0.1)
    assert calls == [2, 4, 6, 8]
    # step 1 sees navsim's zero leader (progress 0 < ego): braking at the limit, position by the old speed
    assert progress[0, 1] == pytest.approx(11.0) and speed[0, 1] == pytest.approx(10.0 - 0.1 * PROPOSAL_IDM.decel_max)


def test_proposal_idm_hand_computed() -> None:
    def accel(progress: float, speed: float, target: float, lead: list[float]) -> float:
        return float(
            proposal_acceleration(np.array([progress]), np.array([speed]), np.array([target]), np.array([lead]))[0]
        )

    # v = 10, v0 = 15, gap 30: s* = 1 + 15 + 50 / (2 sqrt(4.5)) = 27.7851
    # a = 1.5 (1 - (2/3)^10 - (s*/30)^2) = 1.5 (1 - 0.017342 - 0.857791) = 0.18730
    assert accel(10.0, 10.0, 15.0, [40.0, 5.0, 0.0]) == pytest.approx(0.18730, abs=1e-5)
    # a gap below the minimum is floored at s0; the result is clipped at the braking limit
    assert accel(10.0, 10.0, 15.0, [10.5, 0.0, 0.0]) == -PROPOSAL_IDM.decel_max
    # a much faster leader 10 m ahead: s* = 1 + 3 + 2 (2 - 20) / 4.2426 = -4.4853 stays negative (unclamped), so
    # a = 1.5 (1 - (2/15)^10 - 0.44853^2) = 1.1982, where a desired gap clamped at s0 would give 1.485
    assert accel(0.0, 2.0, 15.0, [10.0, 20.0, 0.0]) == pytest.approx(1.1982, abs=1e-4)


# ------------------------------------------------------------------------------------ forecast and interface
def test_forecast_moves_road_users_along_their_heading_and_holds_every_other_step() -> None:
    # a car whose velocity points 30 deg off its heading, a car reversing, a cone
    poses = [(10.0, 0.0, 0.0), (20.0, 5.0, 0.0), (5.0, 5.0, 1.0)]
    tracks = _tracks(poses, [(8.0 * np.cos(0.5), 8.0 * np.sin(0.5)), (-3.0, 0.0), (1.0, 0.0)], num_steps=1)
    tracks.names[2] = "traffic_cone"
    out = forecast_tracks(tracks, np.zeros(2), 5)
    assert out.names == ["traffic_cone", "vehicle", "vehicle"]  # static first, then by class and distance
    np.testing.assert_allclose(out.poses[:, 0, :2], np.tile([5.0, 5.0], (5, 1)))  # static stays
    np.testing.assert_allclose(out.poses[:, 1, 0], 10.0 + 8.0 * np.array([0, 0, 0.2, 0.2, 0.4]))
    np.testing.assert_allclose(out.poses[:, 1, 1], 0.0)
    np.testing.assert_allclose(out.poses[:, 2, 0], 20.0 - 3.0 * np.array([0, 0, 0.2, 0.2, 0.4]))


def test_forecast_keeps_the_nearest_within_range() -> None:
    poses = [(10.0 + 1.5 * i, 50.0, 0.0) for i in range(60)] + [(150.0, 0.0, 0.0)]
    tracks = _tracks(poses, [(0.0, 0.0)] * len(poses), num_steps=1)
    out = forecast_tracks(tracks, np.zeros(2), 2)
    assert out.tokens == [f"o{i}" for i in range(50)]  # 50 nearest vehicles, the one 150 m away unseen


def test_plan_against_given_tracks() -> None:
    cache = build_scene_cache(make_scene(ego_x=-55.0))
    free = PLANNER.plan(cache)
    # a car appearing in the lane 25 m ahead at 2 s, not in the current detections
    steps = PDM_SAMPLING.num_poses + 1
    tracks = _tracks([(-30.0, -1.75, 0.0)], [(0.0, 0.0)], num_steps=steps)
    tracks.valid[:20] = False
    red = np.zeros((steps, len(cache.red_light_polygons)), dtype=bool)
    blocked = PLANNER.plan(cache, tracks, red)
    assert _front_x(blocked.poses, -55.0).max() < -30.0 - CAR_LEN / 2 < _front_x(free.poses, -55.0).max()
    with pytest.raises(ValueError, match="scene .*PDM-Closed needs tracks over 51 steps"):
        PLANNER.plan(cache, _tracks([(0.0, 0.0, 0.0)], [(0.0, 0.0)], num_steps=41), red)


def test_plan_starts_at_the_ego_projected_on_its_path_and_the_scorer_tracks_from_there() -> None:
    cache = plan_scene(build_scene_cache(make_scene(ego_y=-1.75 + 0.3)), PLANNER)
    assert cache.pdm_start is not None and cache.pdm_plan is not None and cache.pdm_plan.shape == (50, 3)
    np.testing.assert_allclose(cache.pdm_start, [0.0, -0.3, 0.0], atol=1e-9)  # on the centerline
    origin = cache.initial_state[POSE]
    ref = plans_to_reference(cache.pdm_plan[None], PDM_SAMPLING, origin, start=cache.pdm_start)
    np.testing.assert_allclose(ref[0, 0], relative_to_absolute(cache.pdm_start, origin))
    np.testing.assert_allclose(ref[0, 1:], relative_to_absolute(cache.pdm_plan[:40], origin), atol=1e-9)
    scorer = FastScorer()
    own = scorer.reference_metrics(cache)
    without = scorer.reference_metrics(dataclasses.replace(cache, pdm_start=None, _derived={}))
    assert own.shape == without.shape == (1, 7)


def test_corridor_is_the_path_vertices_in_range_with_square_caps() -> None:
    xs = np.arange(0.0, 50.0)
    path = PlanPath(np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], axis=1))
    corridor = path.corridor(10.4, 30.6, 1.0)
    # vertices 11..30, buffered 1 m with square ends
    np.testing.assert_allclose(corridor.bounds, (10.0, -1.0, 31.0, 1.0))
    assert shapely.equals(corridor, shapely.box(10.0, -1.0, 31.0, 1.0))
