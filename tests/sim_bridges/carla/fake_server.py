"""A fake CARLA server for env tests: real ``carla`` value types and an offline ``carla.Map``, a kinematic ego.

Only what ``CarlaEnv`` calls exists. The ego moves as a kinematic bicycle under its last ``VehicleControl`` (full
throttle 3 m/s^2, full brake 8 m/s^2, full steer 1.22 rad, CARLA's clockwise yaw); sensors deliver data of the
frame each tick produced, from this thread (the real callbacks come from LibCarla's threads).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

import carla
import numpy as np


class Blueprint:
    def __init__(self, bp_id: str) -> None:
        self.id = bp_id
        self.attrs: dict[str, str] = {"number_of_wheels": "4"}

    def set_attribute(self, key: str, value: str) -> None:
        self.attrs[key] = str(value)

    def get_attribute(self, key: str) -> str:
        return self.attrs[key]

    def has_attribute(self, key: str) -> bool:
        return key == "role_name" or key in self.attrs


class Library:
    def find(self, bp_id: str) -> Blueprint:
        return Blueprint(bp_id)

    def filter(self, pattern: str) -> list[Blueprint]:
        return [Blueprint("vehicle.audi.a2")]


class Actor:
    def __init__(self, world: FakeServerWorld, actor_id: int, bp: Blueprint, transform: Any, parent: Any) -> None:
        self.world, self.id, self.type_id = world, actor_id, bp.id
        self.attributes = dict(bp.attrs)
        self.parent = parent
        self.x, self.y, self.yaw = transform.location.x, transform.location.y, transform.rotation.yaw
        self.z = transform.location.z
        self.speed = 0.0
        self.control = carla.VehicleControl()
        self.callback: Any = None
        self.bounding_box = carla.BoundingBox(carla.Location(x=0.0, y=0.0, z=0.8), carla.Vector3D(2.45, 1.06, 0.75))
        self.destroyed = False
        self.listening = False

    # vehicles
    def get_transform(self) -> Any:
        return carla.Transform(carla.Location(x=self.x, y=self.y, z=self.z), carla.Rotation(yaw=self.yaw))

    def get_velocity(self) -> Any:
        r = math.radians(self.yaw)
        return carla.Vector3D(self.speed * math.cos(r), self.speed * math.sin(r), 0.0)

    def get_acceleration(self) -> Any:
        return carla.Vector3D(0.0, 0.0, 0.0)

    def get_angular_velocity(self) -> Any:
        return carla.Vector3D(0.0, 0.0, 0.0)

    def get_speed_limit(self) -> float:
        return 50.0  # [km/h]

    def apply_control(self, control: Any) -> None:
        self.control = control

    def set_autopilot(self, on: bool, port: int) -> None:
        self.autopilot = on

    def advance(self, dt: float) -> None:
        c = self.control
        accel = c.throttle * 3.0 - c.brake * 8.0
        self.speed = max(0.0, self.speed + accel * dt)
        steer = c.steer * 1.22  # positive turns right: clockwise, the yaw grows
        self.yaw += math.degrees(self.speed * math.tan(steer) / 3.0 * dt)
        r = math.radians(self.yaw)
        self.x += self.speed * math.cos(r) * dt
        self.y += self.speed * math.sin(r) * dt

    # sensors
    def listen(self, callback: Any) -> None:
        self.callback, self.listening = callback, True

    def stop(self) -> None:
        self.listening = False

    def destroy(self) -> bool:
        self.destroyed = True
        self.world.actors.pop(self.id, None)
        return True


class Image:
    def __init__(self, frame: int, w: int, h: int) -> None:
        self.frame, self.raw_data = frame, np.full((h, w, 4), 90, dtype=np.uint8).tobytes()


class Cloud:
    def __init__(self, frame: int, channels: int) -> None:
        self.frame, self.channels = frame, channels
        self.raw_data = np.tile(np.array([5.0, 1.0, -1.0, 0.5], dtype=np.float32), (channels * 3, 1)).tobytes()

    def get_point_count(self, channel: int) -> int:
        return 3


class Light:
    """A traffic light actor, red all the time."""

    def __init__(self, world: FakeServerWorld, actor_id: int, signal_id: str) -> None:
        self.world, self.id, self.signal_id = world, actor_id, signal_id
        self.type_id, self.attributes, self.listening = "traffic.traffic_light", {}, False

    def get_opendrive_id(self) -> str:
        return self.signal_id

    def get_state(self) -> Any:
        return carla.TrafficLightState.Red

    def get_stop_waypoints(self) -> list[Any]:
        return []

    def destroy(self) -> bool:
        return True


class ActorList(list):
    def filter(self, pattern: str) -> ActorList:
        return ActorList(a for a in self if fnmatch.fnmatch(a.type_id, pattern))


@dataclass
class FakeServerWorld:
    cmap: Any
    settings: carla.WorldSettings = field(default_factory=carla.WorldSettings)
    frame: int = 1000
    actors: dict[int, Actor] = field(default_factory=dict)
    next_id: int = 100
    weather: Any = None

    def get_map(self) -> Any:
        return self.cmap

    def get_settings(self) -> Any:
        s = carla.WorldSettings()
        s.synchronous_mode, s.fixed_delta_seconds = self.settings.synchronous_mode, self.settings.fixed_delta_seconds
        return s

    def apply_settings(self, s: Any) -> int:
        self.settings = s
        return self.frame

    def get_blueprint_library(self) -> Library:
        return Library()

    def spawn_actor(self, bp: Blueprint, transform: Any, attach_to: Any = None) -> Actor:
        actor = Actor(self, self.next_id, bp, transform, attach_to)
        self.actors[actor.id] = actor
        self.next_id += 1
        return actor

    def try_spawn_actor(self, bp: Blueprint, transform: Any) -> Actor:
        return self.spawn_actor(bp, transform)

    def get_actors(self) -> ActorList:
        return ActorList(self.actors.values())

    def set_weather(self, weather: Any) -> None:
        self.weather = weather

    def tick(self, seconds: float = 10.0) -> int:
        assert self.settings.synchronous_mode, "ticked outside synchronous mode"
        dt = self.settings.fixed_delta_seconds
        self.frame += 1
        for actor in list(self.actors.values()):
            if actor.type_id.startswith("vehicle."):
                actor.advance(dt)
        for actor in list(self.actors.values()):
            if not actor.listening:
                continue
            if actor.type_id == "sensor.camera.rgb":
                actor.callback(
                    Image(self.frame, int(actor.attributes["image_size_x"]), int(actor.attributes["image_size_y"]))
                )
            elif actor.type_id == "sensor.lidar.ray_cast":
                actor.callback(Cloud(self.frame, int(actor.attributes["channels"])))
        return self.frame


class TrafficManager:
    def set_synchronous_mode(self, on: bool) -> None:
        self.sync = on

    def set_random_device_seed(self, seed: int) -> None:
        self.seed = seed

    def get_port(self) -> int:
        return 8000

    def set_desired_speed(self, actor: Any, speed_kmh: float) -> None:
        actor.desired_speed = speed_kmh


class FakeServer:
    """A ``carla.Client`` stand-in whose worlds are generated from OpenDRIVE offline."""

    def __init__(self) -> None:
        self.world: FakeServerWorld | None = None
        self.tm = TrafficManager()
        self.generated: list[str] = []

    def set_timeout(self, seconds: float) -> None:
        pass

    def get_world(self) -> FakeServerWorld:
        if self.world is None:
            self.world = FakeServerWorld(None)
        return self.world

    def get_trafficmanager(self, port: int) -> TrafficManager:
        return self.tm

    def generate_opendrive_world(self, xodr: str, params: Any) -> FakeServerWorld:
        self.generated.append(xodr)
        self.world = FakeServerWorld(carla.Map("generated", xodr))
        for landmark in self.world.cmap.get_all_landmarks():  # the server makes a light actor per light signal
            if landmark.type == "1000001":
                light = Light(self.world, self.world.next_id, landmark.id)
                self.world.actors[light.id] = light
                self.world.next_id += 1
        return self.world
