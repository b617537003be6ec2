"""The audit's comfort checks: jerk is measured over NAVSIM's smoothing window and reported when too large."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.registry import load_families
from sim_bridges.embedded.audit import JERK_WINDOW, MAX_JERK, Auditor, footprint, window_jerk
from sim_bridges.embedded.scenario_world import build_scenario
from sim_bridges.embedded.world import DT


def test_window_jerk_is_the_slope_of_the_acceleration() -> None:
    t = np.arange(JERK_WINDOW) * DT
    assert window_jerk(1.0 - 3.0 * t) == pytest.approx(-3.0)
    assert window_jerk(np.full(JERK_WINDOW, 2.0)) == pytest.approx(0.0)


@pytest.mark.parametrize(("rate", "flagged"), [(0.8 * MAX_JERK, False), (1.5 * MAX_JERK, True)])
def test_auditor_reports_jerk_beyond_the_bound(rate: float, flagged: bool) -> None:
    world = build_scenario(load_families()["lead_vehicle"], 0).world
    auditor = Auditor(world)
    for k in range(2 * JERK_WINDOW):  # the ego's braking ramps up at ``rate`` [m/s^3]; nothing else moves
        world.ego.accel = -rate * k * DT
        auditor.check()
    jerks = [value for _, quantity, value in auditor.report.comfort if quantity == "jerk"]
    assert bool(jerks) is flagged
    assert all(v < -MAX_JERK for v in jerks)


def test_footprint_is_the_box_around_the_pose() -> None:
    world = build_scenario(load_families()["lead_vehicle"], 0).world
    ego = world.ego
    poly = footprint(ego)
    assert poly.area == pytest.approx(ego.length * ego.width)
    assert np.allclose(poly.centroid.coords[0], ego.pose[:2])
