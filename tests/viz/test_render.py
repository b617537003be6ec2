"""The viewer's frame is a pure function of the step: what it shows, where."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from irl_vla.data.enums import SE2Index
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.viz import palette
from irl_vla.viz.bev import render_bev
from irl_vla.viz.cameras import render_cameras
from irl_vla.viz.controls import ViewerState
from irl_vla.viz.projection import BevConfig
from irl_vla.viz.render import ViewConfig, render_view
from tests.viz.views import CANDIDATE_REWARDS, CANDIDATE_Y, CAR, EGO, junction_view

CONFIG = BevConfig()


def near(image: np.ndarray, x: float, y: float, colour, radius: int = 1) -> bool:
    """Whether a pixel within ``radius`` of ego-frame point (x, y) [m] has exactly ``colour``."""
    row, col = CONFIG.pixel_of(x, y)
    patch = image[row - radius : row + radius + 1, col - radius : col + radius + 1]
    return bool(np.any(np.all(patch == np.asarray(colour, dtype=np.uint8), axis=-1)))


def count(image: np.ndarray, colour) -> int:
    return int(np.all(image == np.asarray(colour, dtype=np.uint8), axis=-1).sum())


def test_plan_is_drawn_in_its_colour_where_it_projects() -> None:
    view = junction_view()
    image = render_bev(view, CONFIG)
    for x, y, _ in view.plan.poses:
        assert near(image, x, y, palette.PLAN), (x, y)
    assert not near(image, 10.0, -10.0, palette.PLAN, radius=3)  # and not elsewhere
    without = render_bev(replace(view, plan=None), CONFIG)
    assert count(without, palette.PLAN) == 0


def test_candidates_take_the_colour_of_their_learned_reward() -> None:
    view = junction_view()
    image = render_bev(view, CONFIG)
    colours = palette.reward_colours(CANDIDATE_REWARDS)
    for k, y in enumerate(CANDIDATE_Y):
        x = float(view.candidates.poses[k, 5, SE2Index.X])
        assert near(image, x, y, colours[k]), (k, colours[k])
        for other in set(range(len(CANDIDATE_Y))) - {k}:
            assert not near(image, x, y, colours[other], radius=0)
    hidden = render_bev(view, CONFIG, show_candidates=False)
    for k, y in enumerate(CANDIDATE_Y):
        assert not near(hidden, float(view.candidates.poses[k, 5, SE2Index.X]), y, colours[k], radius=2)


def test_rewards_not_one_per_candidate_are_refused() -> None:
    with pytest.raises(ValueError, match=r"candidate_rewards: expected one per candidate \(3,\), got shape \(2,\)"):
        render_bev(junction_view(candidate_rewards=np.array([0.1, 0.2])), CONFIG)


def test_candidates_without_a_reward_model_are_ranked_by_the_agents_score() -> None:
    view = junction_view(candidate_rewards=None)
    view.candidates.scores[:] = [3.0, -1.0, 1.0]  # best, worst, middle
    image = render_bev(view, CONFIG)
    for k, rank in enumerate((1.0, 0.0, 0.5)):
        x = float(view.candidates.poses[k, 5, SE2Index.X])
        assert near(image, x, CANDIDATE_Y[k], palette.reward_colours(rank))


def test_red_light_shows_red_at_its_stop_line_and_green_light_green() -> None:
    view = junction_view()
    image = render_bev(view, CONFIG)
    # c_w_e_0 starts on stop line stop_w at (-10, -1.75): 20 m ahead of the ego on its own lane.
    assert near(image, -10.0 - EGO[0], 0.0, palette.LIGHT_RED)
    # c_s_e (green) starts on stop_s at (1.75, -10): 31.75 m ahead, 8.25 m to the right.
    assert near(image, 1.75 - EGO[0], -10.0 - EGO[1], palette.LIGHT_GREEN)
    flipped = replace(view, frame=replace(view.frame, traffic_lights=[("c_w_e_0", False)]))
    image = render_bev(flipped, CONFIG)
    assert near(image, -10.0 - EGO[0], 0.0, palette.LIGHT_GREEN)
    assert count(image, palette.LIGHT_RED) == 0


@pytest.mark.parametrize(
    ("lights", "bar"),
    [
        # c_w_e_1 (straight, on the route) and c_w_s (right, off it) both leave lane w_in_1 at (-10, -5.25)
        ([("c_w_e_1", True), ("c_w_s", False)], palette.LIGHT_RED),
        ([("c_w_s", True), ("c_w_e_1", False)], palette.LIGHT_GREEN),  # the route's way is green
        ([("c_w_s", True)], palette.LIGHT_RED),  # no route connector among the lights: red if any is red
        ([("c_w_s", False), ("c_w_e_1", False)], palette.LIGHT_GREEN),
    ],
)
def test_the_stop_line_bar_shows_the_routes_connector(lights, bar) -> None:
    view = junction_view()
    image = render_bev(replace(view, frame=replace(view.frame, traffic_lights=lights)), CONFIG)
    row, col = CONFIG.pixel_of(-10.0 - EGO[0], -5.25 - 1.2 - EGO[1])  # on the bar, beside the stubs' start
    assert tuple(image[row, col]) == bar
    for connector, red in lights:  # each stub keeps its own colour 4 m along its connector
        line = view.map_api.get_lane(connector).centerline
        k = int(np.searchsorted(np.cumsum(np.r_[0, np.hypot(*np.diff(line[:, :2], axis=0).T)]), 4.0))
        x, y = line[k, :2] - EGO[:2]
        assert near(image, x, y, palette.LIGHT_RED if red else palette.LIGHT_GREEN)


def test_projection_puts_x_forward_up_and_y_left_left() -> None:
    config = BevConfig(width=200, height=300, pixels_per_meter=10.0, behind=5.0)
    assert config.ahead == 25.0
    np.testing.assert_allclose(config.to_pixels([0.0, 0.0]), [100.0, 250.0])  # rear axle: centre, 5 m up
    np.testing.assert_allclose(config.to_pixels([[25.0, 10.0], [-5.0, -10.0]]), [[0.0, 0.0], [200.0, 300.0]])
    assert config.pixel_of(1.0, 2.0) == (240, 80)
    image = render_bev(junction_view(), CONFIG)
    car_row, car_col = CONFIG.pixel_of(CAR[0, 0] - 1.0, CAR[0, 1])  # behind the centre's heading tick
    assert car_col > CONFIG.width / 2 and car_row < CONFIG.pixel_of(0.0, 0.0)[0]  # ahead, on the right
    assert tuple(image[car_row, car_col]) == palette.AGENT_COLOURS["vehicle"]


def test_agents_ego_and_map_are_drawn() -> None:
    image = render_bev(junction_view(), CONFIG)
    assert near(image, CAR[0, 0], CAR[0, 1], palette.AGENT_COLOURS["vehicle"])
    assert near(image, 2.0, 0.0, palette.EGO)  # the ego's box ahead of its rear axle
    assert near(image, 5.0, -0.8, palette.ROUTE_AREA)  # its lane, on the route
    assert near(image, 5.0, 3.5, palette.DRIVABLE)  # the oncoming lane, drivable but off the route
    assert near(image, 5.0, 20.0, palette.BACKGROUND)  # off the road
    assert near(image, 42.0, -1.75 - EGO[1], palette.CROSSWALK)  # crosswalk cw_e at x in [10.5, 13.5]


def test_infractions_are_marked_where_they_happened() -> None:
    view = junction_view()  # one red-light infraction at the ego's position 1.2 s into the episode
    event = view.infractions[0]
    moved = replace(view.frame.ego_status, ego_pose=EGO + np.array([-15.0, 0.0, 0.0]))  # the ego 15 m further back
    image = render_bev(replace(view, frame=replace(view.frame, ego_status=moved)), CONFIG)
    x, y = event.position - moved.ego_pose[:2]
    assert tuple(image[CONFIG.pixel_of(x, y)]) == palette.INFRACTION
    assert count(render_bev(replace(view, infractions=[]), CONFIG), palette.INFRACTION) == 0


def test_frame_composes_bev_colour_bar_cameras_and_hud() -> None:
    config = ViewConfig()
    view = junction_view()
    frame = render_view(view, config, ViewerState())
    width, height = config.size
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[:, : config.bev.width], render_bev(view, config.bev))
    bar = frame[:, config.bev.width : config.bev.width + config.bar_width]
    assert count(bar, palette.reward_colours(1.0)) > 0 and count(bar, palette.reward_colours(0.0)) > 0
    assert count(bar, palette.PLAN) > 0  # the executed plan's learned reward is ticked
    cams = frame[: config.camera_height, config.bev.width + config.bar_width :]
    for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200)):
        assert count(cams, colour) > 1000
    hud = frame[config.camera_height :, config.bev.width + config.bar_width :]
    assert count(hud, palette.TEXT_ALERT) > 0  # the new red-light infraction
    # one camera alone fills more of the panel than in the tiled view, and the others are gone
    alone = render_view(view, config, ViewerState(camera=1))[
        : config.camera_height, config.bev.width + config.bar_width :
    ]
    assert count(alone, (0, 200, 0)) > count(cams, (0, 200, 0))
    assert count(alone, (200, 0, 0)) == 0


def test_frame_without_map_cameras_or_plans_still_renders() -> None:
    view = junction_view(map_api=None, cameras={}, plan=None, candidates=None, candidate_rewards=None,
                         learned_reward=None, sub_scores=None, infractions=[])  # fmt: skip
    frame = render_view(view)
    assert frame.shape == (*ViewConfig().size[::-1], 3)
    assert count(frame, palette.PLAN) == 0


def test_hud_shows_the_simulators_epdms_of_the_window() -> None:
    from irl_vla.scoring.aggregation import aggregate
    from irl_vla.viz.timeline import window_score

    scores = np.ones(len(SubScore))
    scores[SubScore.EP] = 0.5
    assert window_score(scores) == pytest.approx(float(aggregate(scores)))
    assert window_score(None) is None
    assert window_score(np.full(len(SubScore), np.nan)) is None  # before the first full window
    scores[SubScore.NC] = 0.0
    assert window_score(scores) == 0.0


def test_rendering_is_deterministic() -> None:
    np.testing.assert_array_equal(render_view(junction_view()), render_view(junction_view()))


def test_reward_colour_map() -> None:
    colours = palette.reward_colours([0.0, 0.5, 1.0, 2.0, -1.0, np.nan])
    assert tuple(colours[0]) == (68, 1, 84) and tuple(colours[2]) == (253, 231, 37)
    assert tuple(colours[3]) == tuple(colours[2]) and tuple(colours[4]) == tuple(colours[0])  # clipped
    assert tuple(colours[5]) == (128, 128, 128)
    assert palette.reward_colours(5.0, (0.0, 10.0)).tolist() == colours[1].tolist()
    ramp = palette.reward_colours(np.linspace(0, 1, 50)).astype(int)
    assert len({tuple(c) for c in ramp}) == 50  # every step has its own colour
    for special in (palette.PLAN, palette.LIGHT_RED, palette.LIGHT_GREEN):
        assert np.abs(ramp - special).sum(axis=1).min() > 60  # never mistaken for the plan or a light
    with pytest.raises(ValueError, match="value_range"):
        palette.reward_colours(0.5, (1.0, 1.0))


def test_camera_panel_tiles_the_rig_and_centres_a_short_last_row() -> None:
    cams = junction_view().cameras  # three 64x36 cameras: red, green, blue
    panel = render_cameras(cams, 200, 100)
    columns = {}
    for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200)):
        rows, cols = np.nonzero(np.all(panel == colour, axis=-1))
        columns[colour] = ((rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2)  # the tile's centre
    (r0, c0), (r1, c1), (r2, c2) = columns.values()
    assert r0 == pytest.approx(r1, abs=1) and c0 < c1  # first row: cam_l0, cam_f0
    assert r2 > r0 + 20 and c2 == pytest.approx(100, abs=3)  # cam_r0 alone below, centred


def test_camera_panel_refuses_an_unknown_camera() -> None:
    with pytest.raises(KeyError, match="cam_b0"):
        render_cameras(junction_view().cameras, 200, 100, "cam_b0")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"pixels_per_meter": 0.0}, "pixels_per_meter"), ({"behind": 100.0}, "behind"), ({"width": 0}, "width")],
)
def test_bev_config_is_validated(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        BevConfig(**kwargs)


def test_view_config_is_validated() -> None:
    with pytest.raises(ValueError, match="camera_height"):
        ViewConfig(camera_height=2000)
    with pytest.raises(ValueError, match="reward_range"):
        ViewConfig(reward_range=(1.0, 0.0))
