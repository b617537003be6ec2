"""Against a live CARLA 0.9.16 server: run when ``CARLA_HOST`` (and optionally ``CARLA_PORT``) name a reachable
server, skipped with that reason otherwise (pytest's summary counts the skips)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

carla = pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")

HOST = os.environ.get("CARLA_HOST", "")
PORT = int(os.environ.get("CARLA_PORT", "2000"))


def _reachable() -> bool:
    if not HOST:
        return False
    try:
        with socket.create_connection((HOST, PORT), timeout=2.0):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _reachable(), reason=f"no CARLA server: set CARLA_HOST (now {HOST!r}) to a reachable server (port {PORT})"
)


def test_sync_world_ticks_and_restores_the_settings() -> None:
    from sim_bridges.carla.world import ConnectionConfig, SyncWorld, connect

    config = ConnectionConfig(host=HOST, port=PORT, timeout=20.0)
    client = connect(config)
    before = client.get_world().get_settings().synchronous_mode
    with SyncWorld(client, config) as world:
        first = world.tick()
        assert world.tick() == first + 1
    assert client.get_world().get_settings().synchronous_mode == before


def test_an_embedded_scenario_rolls_out_on_the_server(tmp_path) -> None:
    from irl_vla.agents.constant_velocity import ConstantVelocityAgent
    from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner
    from sim_bridges.carla.env import CarlaEnv, CarlaEnvConfig
    from sim_bridges.embedded.opendrive import carla_scenario

    env = CarlaEnv(CarlaEnvConfig(host=HOST, port=PORT, scenario_provider=carla_scenario, time_limit=5.0))
    try:
        runner = ClosedLoopRunner(env, ConstantVelocityAgent(), ClosedLoopConfig(max_steps=10), output_dir=tmp_path)
        outputs = runner.run(["lead_vehicle/0"])
    finally:
        env.close()
    assert len(outputs.results) == 1 and outputs.statistics is not None
    waypoints = env.client.get_world().get_map().generate_waypoints(5.0)
    assert waypoints and np.isfinite([w.transform.location.x for w in waypoints]).all()
