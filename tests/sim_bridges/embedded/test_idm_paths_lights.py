"""IDM closed forms, path geometry and traffic-light programmes."""

from __future__ import annotations

import numpy as np
import pytest

from sim_bridges.embedded.idm import IDMParams, equilibrium_gap, idm_acceleration
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.traffic_lights import LightState, SignalTiming, TrafficLightProgramme


def test_idm_free_road_and_standstill() -> None:
    p = IDMParams()
    assert idm_acceleration(0.0, 10.0, np.inf, 0.0, p) == pytest.approx(p.accel_max)
    assert idm_acceleration(10.0, 10.0, np.inf, 0.0, p) == pytest.approx(0.0)
    assert idm_acceleration(5.0, 10.0, 1.0, 0.0, p) == -p.decel_max  # too close: hard braking


def test_idm_reaches_closed_form_equilibrium_gap_behind_steady_leader() -> None:
    p = IDMParams(min_gap=2.0, headway=1.5, accel_max=1.5, decel_comfort=2.0)
    v_lead, v0, dt = 8.0, 14.0, 0.1
    x_f, v_f, x_l = 0.0, 0.0, 60.0
    for _ in range(3000):  # 300 s with explicit Euler at 10 Hz
        a = float(idm_acceleration(v_f, v0, x_l - x_f, v_lead, p))
        v_f = max(0.0, v_f + a * dt)
        x_f += v_f * dt
        x_l += v_lead * dt
    assert v_f == pytest.approx(v_lead, abs=1e-3)
    assert x_l - x_f == pytest.approx(equilibrium_gap(v_lead, v0, p), abs=0.05)
    with pytest.raises(ValueError, match="speed < target_speed"):
        equilibrium_gap(15.0, 14.0, p)


def test_path_pose_and_projection_round_trip() -> None:
    t = np.linspace(0, np.pi / 2, 60)
    path = Path(np.stack([20 * np.sin(t), 20 - 20 * np.cos(t)], axis=1))  # quarter circle, left turn
    assert path.length == pytest.approx(np.pi * 10, rel=1e-3)
    s = np.array([0.0, 10.0, 25.0])
    poses = path.pose_at(s, lateral=np.array([0.0, 1.0, -1.0]))
    s_back, lat = path.project(poses[:, :2])
    np.testing.assert_allclose(s_back, s, atol=0.05)
    np.testing.assert_allclose(lat, [0.0, 1.0, -1.0], atol=0.02)
    assert poses[0, 2] == pytest.approx(0.0, abs=0.03) and path.pose_at(path.length)[2] == pytest.approx(
        np.pi / 2, abs=0.03
    )
    assert path.curvature_at(15.0) == pytest.approx(1 / 20, rel=0.05)
    ahead = path.pose_at(path.length + 5.0)  # extended straight along the last chord beyond the end
    np.testing.assert_allclose(ahead[:2], [20.0, 25.0], atol=0.1)
    with pytest.raises(ValueError, match="two distinct"):
        Path(np.zeros((3, 2)))


def test_traffic_light_cycle() -> None:
    prog = TrafficLightProgramme([["a"], ["b"]], SignalTiming(green=10, amber=3, all_red=2))
    assert prog.cycle == 30
    assert prog.state("a", 0) is LightState.GREEN and prog.state("b", 0) is LightState.RED
    assert prog.state("a", 11) is LightState.AMBER and prog.state("a", 14) is LightState.RED
    assert prog.state("b", 15) is LightState.GREEN and prog.state("a", 31) is LightState.GREEN
    assert prog.time_to_change("a", 4.0) == pytest.approx(6.0)
    # At no time are both green or amber together.
    for t in np.arange(0, 60, 0.1):
        assert LightState.RED in (prog.state("a", t), prog.state("b", t))
