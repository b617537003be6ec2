"""Connection and the synchronous world: version check, sync settings, cleanup on every way out."""

from __future__ import annotations

import socket
import time

import pytest

from sim_bridges.carla.world import CarlaError, ConnectionConfig, SyncWorld, connect
from tests.sim_bridges.carla.fakes import FakeClient, FakeSettings, FakeWorld

CONFIG = ConnectionConfig(host="sim.example", port=2345, fixed_delta_seconds=0.05, seed=7)


def test_connect_checks_the_server_version() -> None:
    client = FakeClient()
    assert connect(CONFIG, lambda host, port: client) is client and client.timeout == CONFIG.timeout
    assert connect(CONFIG, lambda h, p: FakeClient(server_version="0.9.16-dirty")) is not None
    with pytest.raises(CarlaError, match=r"sim.example:2345 runs 0.9.15.*pip install carla==0.9.15"):
        connect(CONFIG, lambda h, p: FakeClient(server_version="0.9.15"))
    with pytest.raises(CarlaError, match=r"no CARLA server answered at sim.example:2345"):
        connect(CONFIG, lambda h, p: FakeClient(server_version=None))


def test_connect_without_a_server_fails_after_the_timeout_naming_host_and_port() -> None:
    pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(CarlaError, match=f"127.0.0.1:{port}"):
        connect(ConnectionConfig(host="127.0.0.1", port=port, timeout=0.3))
    assert time.monotonic() - start < 5.0


def test_sync_mode_on_entry_and_everything_undone_on_exit() -> None:
    client = FakeClient()
    with SyncWorld(client, CONFIG) as world:
        assert client.world.settings.synchronous_mode and client.world.settings.fixed_delta_seconds == 0.05
        assert client.tm.sync
        ego = world.spawn("vehicle.lincoln.mkz_2020", None)
        world.spawn("walker.pedestrian.0001", None)
        camera = world.spawn("sensor.camera.rgb", None, attach_to=ego, sensor=True)
        assert world.tick() == 101
    log = client.log
    assert "tm seed 7" in log
    # Sensors stop and go first, then the other actors newest first; then settings and Traffic Manager.
    tail = log[log.index(f"stop {camera.id}") :]
    assert tail == [
        f"stop {camera.id}",
        f"destroy {camera.id}",
        "destroy 2",
        "destroy 1",
        "settings sync=False dt=None",
        "tm sync False",
    ]
    assert client.world.settings == FakeSettings()


def test_a_lost_server_still_destroys_what_was_spawned_and_names_the_server(caplog) -> None:
    client = FakeClient()
    client.world.fail_tick_at = 103
    with pytest.raises(CarlaError, match=r"sim.example:2345 did not tick"), SyncWorld(client, CONFIG) as world:
        world.spawn("vehicle.a", None)
        world.spawn("sensor.lidar.ray_cast", None, sensor=True)
        for _ in range(5):
            world.tick()
    # The fake refuses every call once lost; the actors' own destroy calls were still made.
    assert "destroy 1" in client.log and "stop 2" in client.log and "destroy 2" in client.log
    assert "restore the world settings" in caplog.text and "sim.example:2345" in caplog.text
    assert not client.tm.sync


def test_ctrl_c_runs_the_cleanup_and_propagates() -> None:
    client = FakeClient()
    with pytest.raises(KeyboardInterrupt), SyncWorld(client, CONFIG) as world:
        world.spawn("vehicle.a", None)
        raise KeyboardInterrupt
    assert client.log[-3:] == ["destroy 1", "settings sync=False dt=None", "tm sync False"]


def test_a_failing_cleanup_step_is_raised_after_the_others_ran() -> None:
    client = FakeClient()

    class Stuck:
        id, type_id = 9, "vehicle.stuck"

        def destroy(self) -> None:
            raise RuntimeError("actor not found")

    failed = pytest.raises(CarlaError, match=r"sim.example:2345: cleanup failed .*vehicle.stuck #9")
    with failed, SyncWorld(client, CONFIG) as world:
        world.actors.append(Stuck())
        world.spawn("vehicle.a", None)
    assert "destroy 1" in client.log and client.log[-1] == "tm sync False"


def test_entry_failure_restores_and_names_the_server() -> None:
    client = FakeClient(world=FakeWorld([], lost=True))
    with pytest.raises(RuntimeError), SyncWorld(client, CONFIG):
        pass


def test_bad_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="fixed_delta_seconds"):
        ConnectionConfig(fixed_delta_seconds=0.2)
    client = FakeClient()
    client.world.settings = FakeSettings(max_substeps=2)  # 0.02 s of substeps cannot cover 0.05 s
    with pytest.raises(CarlaError, match="exceeds max_substep_delta_time"), SyncWorld(client, CONFIG):
        pass
    assert client.world.settings.synchronous_mode is False  # restored
