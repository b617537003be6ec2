"""The route-centreline target follows the route's lanes ahead of the ego, in the ego frame, masked past their end."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import SE2Index
from irl_vla.data.features.route import RouteCenterlineTargetBuilder
from tests.fixtures import build_straight_scene, build_t_junction


def _scene(lane_y: float, route: list[str]):
    """The straight scene on the T-junction (current ego at global x = -40 heading east) on the lane at ``lane_y``."""
    scene = build_straight_scene()
    scene.map_api = build_t_junction()
    for frame in scene.frames:
        frame.ego_status.ego_pose[SE2Index.Y] = lane_y
        frame.roadblock_ids = list(route)
    return scene


def test_straight_route_is_straight_ahead_at_the_spacing() -> None:
    out = RouteCenterlineTargetBuilder(num_points=10, spacing=5.0).compute(_scene(-1.75, ["w_in", "rbc_w_e", "e_out"]))
    poses, mask = out["route_centerline"].numpy(), out["route_centerline_mask"].numpy()
    assert mask.all()
    np.testing.assert_allclose(poses[:, SE2Index.X], 5.0 * np.arange(1, 11), atol=1e-5)
    np.testing.assert_allclose(poses[:, [SE2Index.Y, SE2Index.HEADING]], 0.0, atol=1e-5)


def test_a_right_turn_bends_the_far_points_to_the_right() -> None:
    # ego on the outer eastbound lane (y = -5.25), route turning right into the south arm at x = -1.75
    scene = _scene(-5.25, ["w_in", "rbc_w_s", "s_out"])
    out = RouteCenterlineTargetBuilder(num_points=10, spacing=5.0).compute(scene)
    poses, mask = out["route_centerline"].numpy(), out["route_centerline_mask"].numpy()
    assert mask.all()
    # the lane runs straight for 30 m (to the junction at global x = -10), then turns
    np.testing.assert_allclose(poses[:6, SE2Index.X], 5.0 * np.arange(1, 7), atol=1e-5)
    np.testing.assert_allclose(poses[:6, SE2Index.Y], 0.0, atol=1e-5)
    assert poses[-1, SE2Index.Y] < -8.0  # well right of straight ahead
    assert poses[-1, SE2Index.HEADING] == pytest.approx(-np.pi / 2, abs=0.05)  # heading south
    assert np.all(np.diff(poses[5:, SE2Index.Y]) < 0)


def test_points_past_the_route_or_without_a_route_are_masked() -> None:
    # the inner lane (y = -1.75) has no connector into the south arm: the route's lanes end at the junction
    scene = _scene(-1.75, ["w_in", "rbc_w_s", "s_out"])
    out = RouteCenterlineTargetBuilder(num_points=10, spacing=5.0).compute(scene)
    assert out["route_centerline_mask"].tolist() == [True] * 6 + [False] * 4  # 30 m to the junction
    assert float(out["route_centerline"][6:].abs().sum()) == 0.0
    out = RouteCenterlineTargetBuilder().compute(_scene(-1.75, []))
    assert not out["route_centerline_mask"].any()


def test_the_builder_checks_its_parameters_and_output() -> None:
    with pytest.raises(ValueError, match="spacing"):
        RouteCenterlineTargetBuilder(spacing=0.0)
    builder = RouteCenterlineTargetBuilder(num_points=3)
    scene = _scene(-1.75, ["w_in", "rbc_w_e", "e_out"])
    assert builder.check(builder.compute(scene), "scene")["route_centerline"].shape == (3, 3)
