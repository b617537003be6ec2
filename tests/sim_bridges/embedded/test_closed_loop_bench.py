"""``irl-vla bench closed_loop`` on a tiny size: records, the busy route's road users, refusal of a quiet route."""

from __future__ import annotations

import pytest

from sim_bridges.embedded.closed_loop_bench import ClosedLoopBenchConfig, run


def test_records_of_a_tiny_run() -> None:
    cfg = ClosedLoopBenchConfig(replan_intervals=[0.5], steps=2, rig_steps=1)
    records = list(run(cfg, repeats=1))
    assert [r["name"] for r in records] == ["env_steps_no_sensors_0.5s", "env_steps_default_rig"]
    first = records[0]
    assert first["reactive_road_users"] >= 30 and first["env_steps_per_s"] > 0 and first["loop_env_steps_per_s"] > 0
    assert first["obs_read_env_steps_per_s"] > 0 and first["obs_read_cpu_env_steps_per_s"] > 0
    assert first["sim_steps_per_s"] == pytest.approx(5 * first["env_steps_per_s"], rel=0.01)
    assert records[1]["cameras"] == 3


def test_a_route_with_too_few_road_users_is_refused() -> None:
    with pytest.raises(ValueError, match="min_reactive"):
        list(run(ClosedLoopBenchConfig(route="merge/0", min_reactive=500), repeats=1))


def test_the_rig_row_renders_the_cameras_of_every_timed_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env renders cameras when the observation is read: the rig row must read it, or it times no rendering."""
    from sim_bridges.embedded.render.sensors import SensorRenderer

    rendered = []
    original = SensorRenderer.render_cameras

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        rendered.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SensorRenderer, "render_cameras", counting)
    records = list(run(ClosedLoopBenchConfig(replan_intervals=[0.5], steps=1, rig_steps=2), repeats=1))
    assert records[-1]["name"] == "env_steps_default_rig"
    assert len(rendered) >= 2  # one rendering per timed rig step at least
