"""Fake CARLA client/world/actors: record what the bridge does, and fail on demand (no server needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeSettings:
    synchronous_mode: bool = False
    fixed_delta_seconds: float | None = None
    substepping: bool = True
    max_substep_delta_time: float = 0.01
    max_substeps: int = 10


class FakeActor:
    def __init__(self, log: list[str], actor_id: int, type_id: str) -> None:
        self.log, self.id, self.type_id = log, actor_id, type_id
        self.callback: Any = None

    def listen(self, callback: Any) -> None:
        self.callback = callback

    def stop(self) -> None:
        self.log.append(f"stop {self.id}")

    def destroy(self) -> bool:
        self.log.append(f"destroy {self.id}")
        return True


@dataclass
class FakeTrafficManager:
    log: list[str]
    sync: bool = False

    def set_synchronous_mode(self, on: bool) -> None:
        self.sync = on
        self.log.append(f"tm sync {on}")

    def set_random_device_seed(self, seed: int) -> None:
        self.log.append(f"tm seed {seed}")


@dataclass
class FakeWorld:
    log: list[str]
    settings: FakeSettings = field(default_factory=FakeSettings)
    frame: int = 100
    lost: bool = False  # every call raises RuntimeError, as with a server that went away
    fail_tick_at: int | None = None
    next_id: int = 1

    def _check(self) -> None:
        if self.lost:
            raise RuntimeError("time-out of 1000ms while waiting for the simulator")

    def get_settings(self) -> FakeSettings:
        self._check()
        return FakeSettings(**vars(self.settings))

    def apply_settings(self, settings: FakeSettings) -> int:
        self._check()
        self.settings = FakeSettings(**vars(settings))
        self.log.append(f"settings sync={settings.synchronous_mode} dt={settings.fixed_delta_seconds}")
        return self.frame

    def spawn_actor(self, blueprint: Any, transform: Any, attach_to: Any = None) -> FakeActor:
        self._check()
        actor = FakeActor(self.log, self.next_id, str(blueprint))
        self.next_id += 1
        self.log.append(f"spawn {actor.id} {blueprint}")
        return actor

    def tick(self, seconds: float = 10.0) -> int:
        self._check()
        self.frame += 1
        if self.fail_tick_at is not None and self.frame >= self.fail_tick_at:
            self.lost = True
            self._check()
        return self.frame


@dataclass
class FakeClient:
    log: list[str] = field(default_factory=list)
    server_version: str | None = "0.9.16"
    client_version: str = "0.9.16"
    world: FakeWorld | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        self.world = self.world or FakeWorld(self.log)
        self.tm = FakeTrafficManager(self.log)

    def set_timeout(self, seconds: float) -> None:
        self.timeout = seconds

    def get_server_version(self) -> str:
        if self.server_version is None:
            raise RuntimeError("time-out of 1000ms while waiting for the simulator, make sure it is ready")
        return self.server_version

    def get_client_version(self) -> str:
        return self.client_version

    def get_world(self) -> FakeWorld:
        assert self.world is not None
        self.world._check()
        return self.world

    def get_trafficmanager(self, port: int) -> FakeTrafficManager:
        return self.tm
