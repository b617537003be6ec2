"""Connection to a CARLA server and the synchronous world every bridge run drives.

``connect`` makes a client with a timeout and checks the server's version against the client's (a mismatch is
an error, as the two must be pinned together). ``SyncWorld`` is a context manager: on entry it keeps the world's
settings, switches to synchronous mode with a fixed step and puts the Traffic Manager in synchronous mode too;
``spawn`` records every actor it creates; on exit (normal, an exception, Ctrl-C or a lost server) it stops and
destroys every sensor, then every other actor, restores the previous settings and the Traffic Manager's
asynchronous mode, all in ``finally``. Cleanup failures are logged and the first one is raised after the rest of
the cleanup has run, unless an exception is already on its way out; every error names the host and port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

#: The client version the bridge is built and tested against (``pip install carla==0.9.16``).
SUPPORTED_VERSION = "0.9.16"


class CarlaError(RuntimeError):
    """A failure talking to the CARLA server (the message names host and port)."""


@dataclass
class ServerConfig:
    """How to reach the server and drive its world (the connection keys of ``configs/sim/carla.yaml``).

    Attributes:
        host: server host.
        port: server RPC port (the streaming port is ``port + 1``).
        timeout: client timeout for ordinary RPCs [s].
        load_timeout: client timeout while a map loads or an OpenDRIVE world is generated [s].
        tick_timeout: longest wait for one synchronous tick [s] (a longer wait means the server is lost).
        traffic_manager_port: the Traffic Manager's port (pick a free one per run).
        fixed_delta_seconds: simulation step [s] (0.05 = 20 Hz, the leaderboard's).
        check_version: refuse a server whose version differs from the client's.
    """

    host: str = "127.0.0.1"
    port: int = 2000
    timeout: float = 10.0
    load_timeout: float = 120.0
    tick_timeout: float = 10.0
    traffic_manager_port: int = 8000
    fixed_delta_seconds: float = 0.05
    check_version: bool = True

    def __post_init__(self) -> None:
        where = type(self).__name__
        if not 0.0 < self.fixed_delta_seconds <= 0.1:
            raise ValueError(
                f"{where}.fixed_delta_seconds: expected 0 < step <= 0.1 s (physics breaks above), "
                f"got {self.fixed_delta_seconds}"
            )
        for name in ("timeout", "load_timeout", "tick_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{where}.{name}: expected > 0 [s], got {getattr(self, name)}")

    @property
    def address(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"


@dataclass
class ConnectionConfig(ServerConfig):
    """A server (``ServerConfig``) and the seed of one episode's Traffic Manager.

    Attributes:
        seed: the Traffic Manager's random seed.
    """

    seed: int = 0

    @classmethod
    def of(cls, server: ServerConfig, seed: int = 0) -> ConnectionConfig:
        """The connection to ``server``'s server (its keys only, e.g. of the env's settings) with ``seed``."""
        return cls(**{f.name: getattr(server, f.name) for f in fields(ServerConfig)}, seed=seed)


def _default_client(host: str, port: int) -> Any:
    import carla

    return carla.Client(host, port)


def connect(config: ConnectionConfig, client_factory: Callable[[str, int], Any] | None = None) -> Any:
    """A connected ``carla.Client`` whose server answered within ``config.timeout`` with a matching version.

    Raises:
        CarlaError: naming host and port when no server answers, or when the versions differ.
    """
    client = (client_factory or _default_client)(config.host, config.port)
    client.set_timeout(config.timeout)
    try:
        server = client.get_server_version()
    except RuntimeError as err:
        raise CarlaError(
            f"no CARLA server answered at {config.address} within {config.timeout:g} s "
            f"(is CarlaUE4.sh running with -carla-rpc-port={config.port}?): {err}"
        ) from err
    mine = client.get_client_version()
    if config.check_version and _release(server) != _release(mine):
        raise CarlaError(
            f"CARLA server {config.address} runs {server}, the client is {mine}: install the matching client "
            f"(pip install carla=={_release(server)}) or a {SUPPORTED_VERSION} server"
        )
    return client


def _release(version: str) -> str:
    """``0.9.16`` of ``0.9.16``, ``0.9.16-dirty`` or ``0.9.16-12-gabc``."""
    return str(version).split("-")[0].strip()


class SyncWorld:
    """The server's world in synchronous mode for the length of a ``with`` block.

    Args:
        client: a connected client (``connect``).
        config: the connection settings (step, Traffic Manager port and seed, timeouts).
    """

    def __init__(self, client: Any, config: ConnectionConfig) -> None:
        self.client = client
        self.config = config
        self.world: Any = None
        self.traffic_manager: Any = None
        self._previous_settings: Any = None
        self.sensors: list[Any] = []
        self.actors: list[Any] = []

    # ------------------------------------------------------------------ context
    def __enter__(self) -> SyncWorld:
        try:
            self.world = self.client.get_world()
            self._enter_sync()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close(raising=error is None)

    def _enter_sync(self) -> None:
        self._previous_settings = self._call(self.world.get_settings, "read the world settings")
        settings = self._call(self.world.get_settings, "read the world settings")
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = self.config.fixed_delta_seconds
        substeps = getattr(settings, "max_substep_delta_time", 0.01) * getattr(settings, "max_substeps", 10)
        if getattr(settings, "substepping", False) and self.config.fixed_delta_seconds > substeps + 1e-9:
            raise CarlaError(
                f"{self.config.address}: fixed_delta_seconds {self.config.fixed_delta_seconds} exceeds "
                f"max_substep_delta_time x max_substeps = {substeps:g} s (physics would cover less time)"
            )
        self._call(lambda: self.world.apply_settings(settings), "switch to synchronous mode")
        self.traffic_manager = self._call(
            lambda: self.client.get_trafficmanager(self.config.traffic_manager_port),
            f"start the Traffic Manager on port {self.config.traffic_manager_port}",
        )
        self.traffic_manager.set_synchronous_mode(True)
        self.traffic_manager.set_random_device_seed(self.config.seed)

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return fn()
        except RuntimeError as err:
            raise CarlaError(f"CARLA server {self.config.address}: could not {what}: {err}") from err

    # ------------------------------------------------------------------ world changes
    def load_opendrive(self, xodr: str, *, vertex_distance: float = 2.0, wall_height: float = 0.0) -> None:
        """Replace the world with one generated from an OpenDRIVE document (``generate_opendrive_world``).

        Loading destroys every actor; the synchronous settings are applied again.
        """
        import carla

        self.destroy_actors()
        params = carla.OpendriveGenerationParameters(
            vertex_distance=vertex_distance,
            max_road_length=50.0,
            wall_height=wall_height,
            additional_width=0.6,
            smooth_junctions=True,
            enable_mesh_visibility=True,
        )
        self.client.set_timeout(self.config.load_timeout)
        try:
            self.world = self._call(lambda: self.client.generate_opendrive_world(xodr, params), "generate the world")
        finally:
            self.client.set_timeout(self.config.timeout)
        self._enter_sync()

    def load_town(self, town: str) -> None:
        """Load ``town`` unless it is loaded already (keeping the synchronous settings)."""
        current = self._call(lambda: self.world.get_map().name, "read the map name").split("/")[-1]
        if current == town:
            return
        self.destroy_actors()
        self.client.set_timeout(self.config.load_timeout)
        try:
            self.world = self._call(lambda: self.client.load_world(town, reset_settings=False), f"load {town}")
        finally:
            self.client.set_timeout(self.config.timeout)
        self._enter_sync()

    def spawn(self, blueprint: Any, transform: Any, *, attach_to: Any = None, sensor: bool = False) -> Any:
        """Spawn an actor (recorded for cleanup; ``sensor=True`` for sensors, destroyed first)."""
        what = f"spawn {getattr(blueprint, 'id', blueprint)}"
        if attach_to is None:
            actor = self._call(lambda: self.world.spawn_actor(blueprint, transform), what)
        else:
            actor = self._call(lambda: self.world.spawn_actor(blueprint, transform, attach_to=attach_to), what)
        (self.sensors if sensor else self.actors).append(actor)
        return actor

    def tick(self) -> int:
        """Advance one fixed step; the new frame id.

        Raises:
            CarlaError: when the server does not answer within ``tick_timeout`` (treated as lost).
        """
        try:
            return int(self.world.tick(self.config.tick_timeout))
        except RuntimeError as err:
            raise CarlaError(
                f"CARLA server {self.config.address} did not tick within {self.config.tick_timeout:g} s "
                f"(lost or frozen; restart it): {err}"
            ) from err

    # ------------------------------------------------------------------ cleanup
    def destroy_actors(self) -> list[str]:
        """Stop and destroy every sensor, then every other actor (newest first); the failures, as messages."""
        failures: list[str] = []
        for sensor in reversed(self.sensors):
            failures += _try(lambda s=sensor: s.stop(), f"stop sensor {_name(sensor)}")
            failures += _try(lambda s=sensor: s.destroy(), f"destroy sensor {_name(sensor)}")
        self.sensors.clear()
        for actor in reversed(self.actors):
            failures += _try(lambda a=actor: a.destroy(), f"destroy actor {_name(actor)}")
        self.actors.clear()
        return failures

    def close(self, raising: bool = False) -> None:
        """Destroy what was spawned and restore the previous settings (idempotent).

        Args:
            raising: raise a ``CarlaError`` for a failed cleanup step (after trying every step).
        """
        failures: list[str] = []
        try:
            failures += self.destroy_actors()
        finally:
            if self._previous_settings is not None and self.world is not None:
                previous = self._previous_settings
                failures += _try(lambda: self.world.apply_settings(previous), "restore the world settings")
                self._previous_settings = None
            if self.traffic_manager is not None:
                tm = self.traffic_manager
                failures += _try(lambda: tm.set_synchronous_mode(False), "put the Traffic Manager back to async")
                self.traffic_manager = None
        for failure in failures:
            log.warning("CARLA server %s: cleanup could not %s", self.config.address, failure)
        if failures and raising:
            raise CarlaError(
                f"CARLA server {self.config.address}: cleanup failed ({len(failures)} steps): {failures[0]}"
            )


def _name(actor: Any) -> str:
    return f"{getattr(actor, 'type_id', type(actor).__name__)} #{getattr(actor, 'id', '?')}"


def _try(fn: Callable[[], Any], what: str) -> list[str]:
    try:
        fn()
    except Exception as err:
        return [f"{what} ({type(err).__name__}: {err})"]
    return []
