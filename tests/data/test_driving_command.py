"""Driving command labels computed the OpenScene way."""

from __future__ import annotations

import numpy as np

from irl_vla.data.driving_command import compute_driving_command
from irl_vla.data.enums import DrivingCommand
from tests.fixtures import build_t_junction


def test_left_turn_route_gives_left_then_straight() -> None:
    m = build_t_junction()
    route = ["s_in", "rbc_s_w", "w_out"]
    line = m.route_centerline(route, np.array([1.75, -40.0, np.pi / 2]))
    assert compute_driving_command(line, (1.75, -18.0)) is DrivingCommand.LEFT  # well into the turn 20 m ahead
    assert compute_driving_command(line, (1.75, -55.0)) is DrivingCommand.STRAIGHT  # turn still far away
    assert compute_driving_command(line, (-35.0, 1.75)) is DrivingCommand.STRAIGHT  # after the turn


def test_right_turn_and_unknown() -> None:
    m = build_t_junction()
    line = m.route_centerline(["w_in", "rbc_w_s", "s_out"], np.array([-40.0, -5.25, 0.0]))
    assert compute_driving_command(line, (-20.0, -5.25)) is DrivingCommand.RIGHT
    assert compute_driving_command(None, (0.0, 0.0)) is DrivingCommand.UNKNOWN
    assert compute_driving_command(np.zeros((1, 3)), (0.0, 0.0)) is DrivingCommand.UNKNOWN


def test_a_prepared_centerline_gives_the_same_commands() -> None:
    from irl_vla.data.driving_command import prepare_centerline

    m = build_t_junction()
    line = m.route_centerline(["s_in", "rbc_s_w", "w_out"], np.array([1.75, -40.0, np.pi / 2]))
    line = np.insert(line, 5, line[5], axis=0)  # a repeated point is dropped by both
    prepared = prepare_centerline(line)
    assert prepared is not None and prepare_centerline(line[:1]) is None and prepare_centerline(None) is None
    rng = np.random.default_rng(0)
    points = line[rng.integers(0, len(line), 60), :2] + rng.normal(0.0, 3.0, (60, 2))
    # Many thresholds: equal commands at each pins the lateral offset the commands are cut from.
    for threshold in np.linspace(0.0, 8.0, 33):
        for xy in points:
            plain = compute_driving_command(line, xy, threshold=threshold)
            assert compute_driving_command(prepared, xy, threshold=threshold) is plain


def test_the_compiled_projection_and_interpolation_equal_numpys_bit_for_bit() -> None:
    from irl_vla.data.driving_command import prepare_centerline, project_arc_length
    from irl_vla.data.geometry import interpolate_poses
    from irl_vla.data.route_kernels import interpolate_at

    m = build_t_junction()
    rng = np.random.default_rng(1)
    for roadblocks, start in (
        (["s_in", "rbc_s_w", "w_out"], [1.75, -40.0, np.pi / 2]),
        (["w_in", "rbc_w_s", "s_out"], [-40.0, -5.25, 0.0]),
    ):
        route = prepare_centerline(m.route_centerline(roadblocks, np.array(start)))
        assert route is not None
        line = route.line[:, :2]
        # Near the line, far from it, beyond both ends, and exactly on vertices (where two segments tie at 0 m).
        points = np.concatenate(
            [
                line[rng.integers(0, len(line), 300)] + rng.normal(0.0, 2.0, (300, 2)),
                rng.uniform(line.min(axis=0) - 30.0, line.max(axis=0) + 30.0, (300, 2)),
                line,
            ]
        )
        for xy in points:
            assert project_arc_length(route, xy, compiled=True) == project_arc_length(route, xy), xy
        # The compiled interpolation: inside, at vertices, beyond both ends.
        at = np.concatenate([rng.uniform(-5.0, route.s[-1] + 5.0, 300), route.s])
        compiled = np.stack([interpolate_at(route.s, route.line, a) for a in at])
        assert np.array_equal(compiled, interpolate_poses(route.s, route.line, at))
