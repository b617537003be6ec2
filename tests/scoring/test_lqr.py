"""The tracker's speed-profile fit: navsim's jerk-penalty matrix by default, the true difference as an option."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.scoring.lqr import TrackerConfig, fit_speed_and_curvature, jerk_matrix
from irl_vla.scoring.simulation import SimulationConfig, simulate
from irl_vla.scoring.states import initial_state


def test_jerk_matrices_by_hand() -> None:
    # unknowns (v_0, a_0, a_1, a_2, a_3): navsim penalises -a_0, -a_1 and a_3 - a_2; the difference a_{i+1} - a_i
    navsim = [[0, -1, 0, 0, 0], [0, 0, -1, 0, 0], [0, 0, 0, -1, 1]]
    difference = [[0, -1, 1, 0, 0], [0, 0, -1, 1, 0], [0, 0, 0, -1, 1]]
    np.testing.assert_array_equal(jerk_matrix(5), navsim)
    np.testing.assert_array_equal(jerk_matrix(5, "difference"), difference)
    np.testing.assert_array_equal(jerk_matrix(3), [[0, -1, 1]])  # one row: both forms are a difference
    with pytest.raises(ValueError, match="jerk_matrix: form 'nuplan'"):
        jerk_matrix(5, "nuplan")
    with pytest.raises(ValueError, match="TrackerConfig.jerk_penalty_matrix: 'nuplan'"):
        TrackerConfig(jerk_penalty_matrix="nuplan")


def _straight(speeds: np.ndarray, dt: float, heading: float = 0.3) -> np.ndarray:
    """Poses ``(1, N + 1, 3)`` driving ``speeds[k] * dt`` along a fixed heading in step k."""
    s = np.concatenate([[0.0], np.cumsum(speeds * dt)])
    return np.stack([s * np.cos(heading), s * np.sin(heading), np.full_like(s, heading)], axis=-1)[None]


def test_navsim_fit_of_a_small_case_by_hand() -> None:
    # 4 displacements of 1 s: d = (1, 2, 3, 4) m at constant acceleration 1 m/s^2 from 1 m/s, penalty 1.
    # Unknowns x = (v_0, a_0, a_1, a_2), speeds v = C x with C = [[1,0,0,0],[1,1,0,0],[1,1,1,0],[1,1,1,1]].
    # navsim's R = [[0,-1,0,0],[0,0,-1,1]]: minimise |C x - d|^2 + |R x|^2, i.e. (C^T C + R^T R) x = C^T d with
    # C^T C = [[4,3,2,1],[3,3,2,1],[2,2,2,1],[1,1,1,1]], R^T R = [[0,0,0,0],[0,1,0,0],[0,0,1,-1],[0,0,-1,1]],
    # C^T d = (10, 9, 7, 4). By elimination: a_0 = v_0 - 1, 4 a_0 + 3 a_1 = 5, a_2 = 3/2 - a_0, 3 a_0 + a_1 = 9/4,
    # so x = (1.35, 0.35, 1.2, 1.15) and the speeds are v = (1.35, 1.7, 2.9, 4.05), not the exact (1, 2, 3, 4).
    d = np.array([1.0, 2.0, 3.0, 4.0])
    config = TrackerConfig(jerk_penalty=1.0)
    speed, _ = fit_speed_and_curvature(_straight(d, 1.0), 1.0, config)
    x = np.array([1.35, 0.35, 1.2, 1.15])
    lhs = np.array([[4, 3, 2, 1], [3, 4, 2, 1], [2, 2, 3, 0], [1, 1, 0, 2]], dtype=float)  # C^T C + R^T R
    np.testing.assert_allclose(lhs @ x, [10, 9, 7, 4])  # the hand solution solves the normal equations
    np.testing.assert_allclose(speed[0], [1.35, 1.7, 2.9, 4.05], atol=1e-12)
    # the true difference does not penalise a constant acceleration: the exact speeds come back
    difference = TrackerConfig(jerk_penalty=1.0, jerk_penalty_matrix="difference")
    exact, _ = fit_speed_and_curvature(_straight(d, 1.0), 1.0, difference)
    np.testing.assert_allclose(exact[0], d, atol=1e-9)


def test_the_option_switches_the_tracked_states() -> None:
    dt = 0.1
    speeds = 8.0 + 1.5 * np.arange(40) * dt  # a plan that speeds up
    reference = _straight(speeds, dt, heading=0.0)
    start = initial_state(reference[0, 0], np.array([8.0, 0.0]), np.zeros(2))
    navsim = simulate(reference, start, SimulationConfig())
    difference = simulate(reference, start, SimulationConfig(tracker=TrackerConfig(jerk_penalty_matrix="difference")))
    gap = np.abs(navsim[0, :, :2] - difference[0, :, :2]).max()
    assert 1e-3 < gap < 0.2  # centimetres, as measured against navsim's own tracker
    # with the default (navsim's) matrix, the fitted speed at the start lags the accelerating reference
    fit_navsim, _ = fit_speed_and_curvature(reference, dt, TrackerConfig())
    fit_difference, _ = fit_speed_and_curvature(reference, dt, TrackerConfig(jerk_penalty_matrix="difference"))
    np.testing.assert_allclose(fit_difference[0], speeds, atol=1e-6)
    assert not np.allclose(fit_navsim[0], speeds, atol=1e-3)


def _fit_row_by_row(poses: np.ndarray, dt: float, config: TrackerConfig) -> tuple[np.ndarray, np.ndarray]:
    """The same fit written out as the spec states it: one row per x and y displacement, pseudo-inverses."""
    speeds, curvatures = [], []
    for p in poses:
        m = len(p) - 1
        disp, h = np.diff(p[:, :2], axis=0), p[:-1, 2]
        a = np.zeros((2 * m, m))
        for k in range(m):
            for col, trig in ((0, np.cos(h[k])), (1, np.sin(h[k]))):
                a[2 * k + col, 0] = trig * dt
                a[2 * k + col, 1 : k + 1] = trig * dt**2
        r = jerk_matrix(m, config.jerk_penalty_matrix)
        x = np.linalg.pinv(a.T @ a + config.jerk_penalty * r.T @ r) @ a.T @ disp.reshape(-1)
        v = x[0] + np.concatenate([[0.0], np.cumsum(x[1:] * dt)])
        b = np.tril(np.ones((m, m))) * (v * dt**2)[:, None]
        b[:, 0] = v * dt
        q = np.diag(np.r_[1e-10, np.full(m - 1, config.curvature_rate_penalty)])
        dh = np.angle(np.exp(1j * np.diff(p[:, 2])))
        z = np.linalg.pinv(b.T @ b + q) @ b.T @ dh
        speeds.append(v)
        curvatures.append(z[0] + np.concatenate([[0.0], np.cumsum(z[1:] * dt)]))
    return np.array(speeds), np.array(curvatures)


@pytest.mark.parametrize("form", ["navsim", "difference"])
def test_the_batched_fit_equals_the_fit_written_row_by_row(form: str) -> None:
    rng = np.random.default_rng(3)
    steps = rng.uniform(0.0, 1.5, (6, 40, 3)) * [1.0, 0.2, 0.02] + [0.2, -0.1, -0.01]
    poses = np.cumsum(np.concatenate([np.zeros((6, 1, 3)), steps], axis=1), axis=1)
    config = TrackerConfig(jerk_penalty_matrix=form)
    speed, curvature = fit_speed_and_curvature(poses, 0.1, config)
    want_speed, want_curvature = _fit_row_by_row(poses, 0.1, config)
    np.testing.assert_allclose(speed, want_speed, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(curvature, want_curvature, rtol=1e-6, atol=1e-7)


def test_the_speed_fit_gain_is_computed_once_and_equals_a_fresh_pseudo_inverse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The gain depends only on (N, dt, penalty, form): a second plan of the same sampling reuses it, bit for bit.
    from irl_vla.scoring import lqr

    lqr.speed_fit_matrices.cache_clear()
    calls = []
    pinv = np.linalg.pinv
    monkeypatch.setattr(np.linalg, "pinv", lambda a: calls.append(a.shape) or pinv(a))
    rng = np.random.default_rng(5)
    config = TrackerConfig()
    for _ in range(3):
        poses = np.cumsum(rng.uniform(0.0, 1.0, (2, 41, 3)) * [1.0, 0.1, 0.01], axis=1)
        speed, _ = fit_speed_and_curvature(poses, 0.1, config)
        c = lqr._integration_matrix(40, 0.1)
        jerk = jerk_matrix(40, config.jerk_penalty_matrix)
        fresh = pinv(0.1**2 * c.T @ c + config.jerk_penalty * jerk.T @ jerk).T
        heading = poses[:, :-1, 2]
        disp = np.diff(poses[..., :2], axis=1)
        along = np.cos(heading) * disp[..., 0] + np.sin(heading) * disp[..., 1]
        np.testing.assert_array_equal(speed, (0.1 * along @ c) @ fresh @ c.T)
    assert calls == [(40, 40)]
    lqr.speed_fit_matrices.cache_clear()
