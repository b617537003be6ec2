"""SE(2) utilities: round trips and interpolation, property-based."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import (
    absolute_to_relative,
    compose,
    headings_from_path,
    interpolate_poses,
    inverse,
    points_to_local,
    relative_to_absolute,
    transform_points,
    wrap_angle,
)

coord = st.floats(-1e3, 1e3, allow_nan=False)
angle = st.floats(-4 * np.pi, 4 * np.pi, allow_nan=False)
pose = st.tuples(coord, coord, angle).map(lambda t: np.array(t))
poses = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(3)), elements=st.floats(-1e3, 1e3))


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(wrap_angle(np.asarray(a) - np.asarray(b)))


@given(angle)
def test_wrap_angle_range_and_equivalence(a: float) -> None:
    w = wrap_angle(a)
    assert -np.pi <= w < np.pi
    assert abs(np.sin(w) - np.sin(a)) < 1e-9 and abs(np.cos(w) - np.cos(a)) < 1e-9


@given(poses, pose)
def test_relative_absolute_round_trip(p: np.ndarray, origin: np.ndarray) -> None:
    back = relative_to_absolute(absolute_to_relative(p, origin), origin)
    np.testing.assert_allclose(back[:, :2], p[:, :2], atol=1e-6)
    assert np.all(angle_diff(back[:, SE2Index.HEADING], p[:, SE2Index.HEADING]) < 1e-9)


@given(pose)
def test_inverse_composes_to_identity(a: np.ndarray) -> None:
    ident = compose(a, inverse(a))
    np.testing.assert_allclose(ident[:2], 0.0, atol=1e-9)
    assert angle_diff(ident[2], 0.0) < 1e-9


@given(pose, pose, pose)
def test_compose_is_associative(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    left, right = compose(compose(a, b), c), compose(a, compose(b, c))
    np.testing.assert_allclose(left[:2], right[:2], atol=1e-6)
    assert angle_diff(left[2], right[2]) < 1e-9


@given(arrays(np.float64, (5, 2), elements=st.floats(-100, 100)), pose)
def test_point_transforms_round_trip(pts: np.ndarray, origin: np.ndarray) -> None:
    np.testing.assert_allclose(transform_points(points_to_local(pts, origin), origin), pts, atol=1e-6)


def test_relative_pose_known_value() -> None:
    origin = np.array([10.0, 5.0, np.pi / 2])  # facing north
    rel = absolute_to_relative(np.array([10.0, 8.0, np.pi / 2]), origin)
    np.testing.assert_allclose(rel, [3.0, 0.0, 0.0], atol=1e-12)  # 3 m straight ahead
    rel = absolute_to_relative(np.array([7.0, 5.0, np.pi]), origin)
    np.testing.assert_allclose(rel, [0.0, 3.0, np.pi / 2], atol=1e-12)  # 3 m to the left


def test_interpolation_is_exact_at_samples_and_linear_between() -> None:
    t = np.array([0.0, 1.0, 2.0])
    p = np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 0.5], [4.0, 4.0, 1.0]])
    np.testing.assert_allclose(interpolate_poses(t, p, t), p, atol=1e-12)
    np.testing.assert_allclose(interpolate_poses(t, p, np.array([0.5, 1.5])), [[1, 2, 0.25], [3, 4, 0.75]], atol=1e-12)


def test_heading_interpolates_along_the_short_arc_across_pi() -> None:
    t = np.array([0.0, 1.0])
    p = np.array([[0.0, 0.0, np.pi - 0.1], [0.0, 0.0, -np.pi + 0.1]])
    mid = interpolate_poses(t, p, np.array([0.5]))[0]
    assert angle_diff(mid[2], np.pi) < 1e-9  # through pi, not through 0


@settings(max_examples=50)
@given(st.floats(-np.pi, np.pi), st.floats(-0.99 * np.pi, 0.99 * np.pi), st.floats(0.0, 1.0))
def test_heading_interpolation_stays_on_arc(h0: float, dh: float, alpha: float) -> None:
    t = np.array([0.0, 1.0])
    p = np.array([[0.0, 0.0, h0], [0.0, 0.0, h0 + dh]])
    got = interpolate_poses(t, p, np.array([alpha]))[0, 2]
    assert angle_diff(got, h0 + alpha * dh) < 1e-9


def test_interpolation_batched_and_clipped() -> None:
    t = np.array([0.0, 1.0])
    p = np.stack([np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([[0.0, 0, 0], [0.0, 2.0, 0]])])  # (2, 2, 3)
    out = interpolate_poses(t, p, np.array([-1.0, 0.5, 3.0]))
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out[0, :, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(out[1, :, 1], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="clip=False"):
        interpolate_poses(t, p, np.array([3.0]), clip=False)
    with pytest.raises(ValueError, match="strictly increasing"):
        interpolate_poses(np.array([0.0, 0.0]), p, np.array([0.0]))


def test_headings_from_path() -> None:
    h = headings_from_path(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(h, [0.0, np.pi / 2, np.pi / 2])


def test_box_corners_order_and_broadcasting() -> None:
    from irl_vla.data.geometry import box_corners

    corners = box_corners(np.array([1.0, 2.0, np.pi / 2]), 4.0, 2.0)  # facing +y: front is +y, left is -x
    assert np.allclose(corners, [[0.0, 4.0], [0.0, 0.0], [2.0, 0.0], [2.0, 4.0]])
    many = box_corners(np.zeros((5, 3)), np.arange(1.0, 6.0), 1.0)  # (N, 4, 2)
    assert many.shape == (5, 4, 2) and np.allclose(many[:, 0, 0], np.arange(1.0, 6.0) / 2)
