"""The CARLA env's connection keys are the world's ``ServerConfig``: one set of fields, checked when configured."""

from __future__ import annotations

import dataclasses

import pytest

from sim_bridges.carla.env import CarlaEnvConfig
from sim_bridges.carla.world import ConnectionConfig, ServerConfig


def test_the_env_config_checks_its_connection_when_built() -> None:
    """A bad timeout used to pass the env config and fail only when an episode connected."""
    with pytest.raises(ValueError, match=r"^CarlaEnvConfig\.tick_timeout: expected > 0"):
        CarlaEnvConfig(tick_timeout=0.0)
    with pytest.raises(ValueError, match=r"^CarlaEnvConfig\.fixed_delta_seconds"):
        CarlaEnvConfig(fixed_delta_seconds=0.5, replan_interval=0.5)


def test_the_connection_carries_every_server_key_and_the_seed() -> None:
    env = CarlaEnvConfig(host="sim", port=3000, timeout=3.0, traffic_manager_port=8100, check_version=False)
    connection = env.connection(seed=9)
    assert isinstance(connection, ConnectionConfig) and connection.seed == 9
    for f in dataclasses.fields(ServerConfig):
        assert getattr(connection, f.name) == getattr(env, f.name), f.name
    assert connection.address == "sim:3000"
