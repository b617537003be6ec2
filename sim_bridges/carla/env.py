"""``CarlaEnv``: the closed-loop ``ClosedLoopEnv`` over a CARLA server (``irl-vla rollout sim=carla``).

Routes are either ids of a leaderboard 2.x route file (``routes_file``; the town is loaded and the keypoints are
densified with ``planner.RoutePlanner`` over the server's map) or ``<family>/<seed>`` of the embedded scenario
families, whose map the ``scenario_provider`` (wired in ``configs/sim/carla.yaml``; this package never imports
another bridge) exports as OpenDRIVE; the server then generates that world (``generate_opendrive_world``) and the
ego drives the same route as in the embedded world, with the same suite ``Map`` for the runner and the viewer.

Each ``step`` runs ``replan_interval / fixed_delta_seconds`` synchronous ticks. A ``Trajectory`` action is tracked
by the scorer's LQR tracker (reference resampled at 0.1 s, commands refreshed every 0.1 s of simulated time, the
steering rate integrated into an angle) and mapped to throttle, brake and steer (``control``); ``Controls`` are
applied as they are. After the last tick the env waits for every sensor's data of that frame (``sensors``), builds
the suite ``Frame`` (rear-axle ego pose, velocities in the ego frame, other actors' boxes in the ego frame, driving
command from the route, cameras and LiDAR) and the ``AgentInput`` of the last ``num_history_frames`` frames.

The env reports the kinds in ``infraction_kinds`` (collisions from the collision sensor, red lights, stop signs,
off-road and wrong way from the map); the runner's own detectors handle route deviation, blocked, route timeout
and minimum speed from the ego trace, exactly as for the embedded world.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from irl_vla.data.driving_command import compute_driving_command
from irl_vla.data.enums import AgentClass, BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.scene import LOG_INTERVAL, Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory
from irl_vla.data.vehicle import PACIFICA, VehicleParameters
from irl_vla.envs.env import ActionKind, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.route import Route, RouteProgress
from irl_vla.envs.trace import TraceIndex
from irl_vla.scoring.lqr import BatchLQRTracker
from irl_vla.scoring.simulation import SimulationConfig, check_plans, plans_to_reference
from irl_vla.scoring.states import StateIndex
from sim_bridges.carla import coordinates as co
from sim_bridges.carla.control import ControlLimits, to_vehicle_control
from sim_bridges.carla.infractions import CollisionFilter, LaneRule, StopLine, StopLineCrossing, StopSignRule
from sim_bridges.carla.planner import RoutePlanner
from sim_bridges.carla.routes import RouteSpec, read_routes
from sim_bridges.carla.sensors import CameraMount, LidarSettings, RigSettings, SensorRig
from sim_bridges.carla.world import CarlaError, ConnectionConfig, ServerConfig, SyncWorld, connect

log = logging.getLogger(__name__)

#: The kinds this env detects itself (the runner detects the rest from the ego trace and the route).
REPORTED_KINDS = (
    InfractionKind.COLLISION_VEHICLE,
    InfractionKind.COLLISION_PEDESTRIAN,
    InfractionKind.COLLISION_STATIC,
    InfractionKind.RED_LIGHT,
    InfractionKind.STOP_SIGN,
    InfractionKind.OFF_ROAD,
    InfractionKind.WRONG_WAY,
)
#: Other actors farther than this from the ego are left out of a frame's annotations [m].
ANNOTATION_RADIUS = 80.0


class CarlaScenario(Protocol):
    """What a scenario provider returns for ``<family>/<seed>``: the OpenDRIVE map, the route and the suite map."""

    xodr: str
    route_poses: npt.NDArray[np.float64]  # (N, 3) suite frame
    roadblock_ids: list[str]
    map_api: Any
    map_name: str
    light_connectors: dict[str, list[str]]  # signal (stop-line) id -> lane connectors it governs
    road_users: list[Any]  # token, agent_class, pose (centre, suite), speed, target_speed, length, width, height


#: Blueprints of a scenario's road users by class (``actor_blueprints`` overrides them).
DEFAULT_BLUEPRINTS: dict[str, str] = {
    AgentClass.VEHICLE.value: "vehicle.audi.a2",
    AgentClass.BICYCLE.value: "vehicle.bh.crossbike",
    AgentClass.PEDESTRIAN.value: "walker.pedestrian.0001",
    AgentClass.TRAFFIC_CONE.value: "static.prop.trafficcone01",
    AgentClass.BARRIER.value: "static.prop.streetbarrier",
    AgentClass.CZONE_SIGN.value: "static.prop.constructioncone",
    AgentClass.GENERIC_OBJECT.value: "static.prop.box01",
}


@dataclass
class CarlaEnvConfig(ServerConfig):
    """Settings of ``sim=carla`` (``configs/sim/carla.yaml``; every key is a field here).

    The connection's keys (``host``, ``port``, the timeouts, ``traffic_manager_port``, ``fixed_delta_seconds``,
    ``check_version``) are ``world.ServerConfig``'s, checked with it.

    Attributes:
        routes_file: a leaderboard 2.x route file whose ids are routes; None: only scenario routes.
        scenario_provider: ``<family>/<seed>`` -> ``CarlaScenario`` (the embedded export), None: none.
        scenario_ids: ``seeds -> route ids`` of the provider (the default routes), None: none.
        action: ``trajectory`` or ``controls``.
        replan_interval: simulated time per step [s] (a multiple of ``fixed_delta_seconds``).
        time_limit: episode length [s] (then the episode is truncated).
        num_history_frames: frames in the observation (every ``LOG_INTERVAL``).
        ego_blueprint: the ego's vehicle.
        background_vehicles: Traffic Manager vehicles spawned at the map's spawn points.
        sensor_timeout: longest wait for one frame's sensor data [s].
        warmup_ticks: ticks after spawning whose data is discarded (early ticks may miss sensor data).
        terminate_on_collision: end the episode at the first counted collision (the leaderboard drives on).
        rig: camera mounts (``name``, ``yaw_deg``, ``pitch_deg``, ``x``, ``y``, ``z``), image size, fov, LiDAR.
        control: ``ControlLimits`` fields.
        red_light_lateral_factor: half-width of a stop line as a fraction of its lane width.
        stop_zone_scale: a stop sign's zone is its trigger volume's radius times this.
        actor_blueprints: blueprint per ``AgentClass`` value for a scenario's road users (over the defaults).
    """

    routes_file: str | None = None
    scenario_provider: Callable[[str], CarlaScenario] | None = None
    scenario_ids: Callable[[range], list[str]] | None = None
    action: str = "trajectory"
    replan_interval: float = 0.5
    time_limit: float = 300.0
    num_history_frames: int = 4
    ego_blueprint: str = "vehicle.lincoln.mkz_2020"
    background_vehicles: int = 0
    sensor_timeout: float = 10.0
    warmup_ticks: int = 10
    terminate_on_collision: bool = False
    rig: dict[str, Any] = field(default_factory=dict)
    control: dict[str, float] = field(default_factory=dict)
    red_light_lateral_factor: float = 0.6
    stop_zone_scale: float = 1.2
    actor_blueprints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        ActionKind(self.action)
        ticks = self.replan_interval / self.fixed_delta_seconds
        if abs(ticks - round(ticks)) > 1e-6 or round(ticks) < 1:
            raise ValueError(
                f"CarlaEnvConfig.replan_interval {self.replan_interval} s is not a multiple of fixed_delta_seconds "
                f"{self.fixed_delta_seconds} s"
            )

    def connection(self, seed: int = 0) -> ConnectionConfig:
        """The connection to the server, with the Traffic Manager's ``seed``."""
        return ConnectionConfig.of(self, seed)

    def rig_settings(self) -> RigSettings:
        """The ``RigSettings`` of ``rig`` (defaults: the embedded renderer's rig)."""
        rig = dict(self.rig)
        if "cameras" in rig:
            rig["cameras"] = tuple(CameraMount(**c) for c in rig["cameras"])
        if "lidar" in rig:
            lidar = dict(rig["lidar"])
            if "origin" in lidar:
                lidar["origin"] = tuple(lidar["origin"])
            rig["lidar"] = LidarSettings(**lidar)
        return RigSettings(**rig)


def make_env(**kwargs: Any) -> CarlaEnv:
    """``CarlaEnv`` from config keys (``hydra.utils.instantiate`` of ``configs/sim/carla.yaml``)."""
    return CarlaEnv(CarlaEnvConfig(**kwargs))


@dataclass
class _Episode:
    """One episode's state."""

    route: Route
    map_api: Any
    cmap: Any
    ego: Any
    sensors: SensorRig
    progress: RouteProgress
    collisions: CollisionFilter
    red_lights: StopLineCrossing
    stops: StopSignRule
    lanes: LaneRule
    light_connectors: dict[str, list[str]] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    collision_events: list[tuple[int, str]] = field(default_factory=list)
    lane_invasions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    time: float = 0.0
    step_index: int = 0
    steering_angle: float = 0.0
    previous_velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))


class CarlaEnv:
    """The closed-loop env over a CARLA server (see the module docstring).

    Raises:
        CarlaError: naming host and port when the server cannot be reached (at construction).
    """

    infraction_kinds = tuple(k.value for k in REPORTED_KINDS)

    def __init__(
        self, config: CarlaEnvConfig, vehicle: VehicleParameters = PACIFICA, client: Any | None = None
    ) -> None:
        self.config = config
        self.action_kind = ActionKind(config.action)
        self.step_interval = config.replan_interval
        self.vehicle = vehicle
        self.limits = ControlLimits(**config.control)
        self.rig = config.rig_settings()
        self.simulation = SimulationConfig()
        self.ticks_per_step = round(config.replan_interval / config.fixed_delta_seconds)
        self.routes: dict[str, RouteSpec] = {}
        if config.routes_file is not None:
            self.routes = {r.route_id: r for r in read_routes(config.routes_file)}
        self.client = client if client is not None else connect(config.connection())
        self.world: SyncWorld | None = None
        self.episode: _Episode | None = None

    # ------------------------------------------------------------------ routes
    def route_ids(self, seeds: range) -> list[str]:
        """The route file's ids, or the scenario provider's ``<family>/<seed>`` routes."""
        if self.routes:
            return list(self.routes)
        if self.config.scenario_ids is None:
            raise ValueError("sim=carla: no routes_file and no scenario_ids; give routes=[...]")
        return list(self.config.scenario_ids(seeds))

    def _load_route(self, route_id: str, world: SyncWorld) -> tuple[Route, Any, Any, CarlaScenario | None]:
        """Load the route's world: (suite ``Route``, suite map or None, ``carla.Map``, the scenario if any)."""
        import carla

        if route_id in self.routes:
            spec = self.routes[route_id]
            world.load_town(spec.town)
            if spec.weathers:
                world.world.set_weather(carla.WeatherParameters(**dict(spec.weathers[0].parameters)))
            cmap = world.world.get_map()
            keypoints = [carla.Location(x=x, y=y, z=z) for x, y, z in spec.waypoints]
            planned = RoutePlanner(cmap).trace(keypoints)
            return Route(route_id, planned.poses, [], spec.town), None, cmap, None
        if self.config.scenario_provider is not None and "/" in route_id:
            scenario = self.config.scenario_provider(route_id)
            world.load_opendrive(scenario.xodr)
            route = Route(route_id, np.asarray(scenario.route_poses), list(scenario.roadblock_ids), scenario.map_name)
            return route, scenario.map_api, world.world.get_map(), scenario
        known = sorted(self.routes) or ["<family>/<seed>"]
        raise ValueError(f"sim=carla: no route {route_id!r} (routes: {known})")

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Inherited, see ``ClosedLoopEnv.reset``."""
        import carla

        options = options or {}
        route_id = str(options.get(ResetOption.ROUTE, ""))
        sensor_config = options.get(ResetOption.SENSOR_CONFIG) or SensorConfig.build_no_sensors()
        self._end_episode()
        world = self.world = SyncWorld(self.client, self.config.connection(seed or 0)).__enter__()
        try:
            route, map_api, cmap, scenario = self._load_route(route_id, world)
            ego = self._spawn_ego(world, cmap, route)
            if scenario is not None:
                self._spawn_road_users(world, cmap, scenario.road_users)
            collisions: list[tuple[int, str]] = []
            invasions: list[str] = []
            lock = threading.Lock()
            library = world.world.get_blueprint_library()
            collision_sensor = world.spawn(
                library.find("sensor.other.collision"), carla.Transform(), attach_to=ego, sensor=True
            )
            collision_sensor.listen(lambda e: _append(lock, collisions, (int(e.other_actor.id), e.other_actor.type_id)))
            invasion_sensor = world.spawn(
                library.find("sensor.other.lane_invasion"), carla.Transform(), attach_to=ego, sensor=True
            )
            invasion_sensor.listen(
                lambda e: _append(lock, invasions, ",".join(str(m.type) for m in e.crossed_lane_markings))
            )
            rear_to_origin = self.vehicle.rear_axle_to_center - float(ego.bounding_box.location.x)
            sensors = SensorRig(world, ego, self.rig, sensor_config, rear_to_origin, self.config.sensor_timeout)
            self._spawn_background(world)
            episode = self.episode = _Episode(
                route=route,
                map_api=map_api,
                cmap=cmap,
                ego=ego,
                sensors=sensors,
                progress=RouteProgress(route),
                collisions=CollisionFilter(),
                red_lights=StopLineCrossing(self._stop_lines(world, cmap)),
                stops=StopSignRule(self._stop_zones(world)),
                lanes=LaneRule(self._lane_query(cmap)),
                light_connectors=dict(scenario.light_connectors) if scenario is not None else {},
                collision_events=collisions,
                lane_invasions=invasions,
                lock=lock,
            )
            frame_id = 0
            for _ in range(self.config.warmup_ticks):
                frame_id = world.tick()
            # History: the ego stands at the start; one frame every LOG_INTERVAL of simulated time.
            per_frame = round(LOG_INTERVAL / self.config.fixed_delta_seconds)
            n = self.config.num_history_frames
            for k in range(n):
                episode.time = -(n - 1 - k) * LOG_INTERVAL  # the current frame is at time 0
                if k:
                    for _ in range(per_frame):
                        frame_id = world.tick()
                episode.frames.append(self._frame(frame_id))
            with lock:
                collisions.clear()
                invasions.clear()
        except BaseException:
            self._end_episode()
            raise
        frame = episode.frames[-1]
        info = {InfoKey.ROUTE: route, InfoKey.MAP: map_api, InfoKey.FRAME: frame, InfoKey.TIME: 0.0}
        return self._observation(), info

    def _spawn_ego(self, world: SyncWorld, cmap: Any, route: Route) -> Any:
        library = world.world.get_blueprint_library()
        blueprint = library.find(self.config.ego_blueprint)
        blueprint.set_attribute("role_name", "hero")
        start = co.actor_from_rear_axle(route.poses[0], self.vehicle)
        ground = cmap.get_waypoint(co.suite_to_location(start[:2]))
        z = (ground.transform.location.z if ground is not None else 0.0) + 0.5
        ego = world.spawn(blueprint, co.se2_to_transform(start, z=z))
        world.tick()
        return ego

    def _spawn_road_users(self, world: SyncWorld, cmap: Any, users: list[Any]) -> None:
        """A scenario's road users where they start.

        Movers drive under the Traffic Manager at their target speed, standing ones (parked cars, obstacles,
        people) have no controller. A user whose place is taken (or whose class has no blueprint) is left out
        with a warning.
        """
        blueprints = {**DEFAULT_BLUEPRINTS, **self.config.actor_blueprints}
        library = world.world.get_blueprint_library()
        port = world.traffic_manager.get_port()
        skipped = []
        for user in users:
            if user.agent_class not in blueprints:
                skipped.append(user.token)
                continue
            bp = library.find(blueprints[user.agent_class])
            if bp.has_attribute("role_name"):
                bp.set_attribute("role_name", "background")
            ground = cmap.get_waypoint(co.suite_to_location(user.pose[:2]))
            z = (ground.transform.location.z if ground is not None else 0.0) + 0.3
            actor = world.world.try_spawn_actor(bp, co.se2_to_transform(user.pose, z=z))
            if actor is None:
                skipped.append(user.token)
                continue
            world.actors.append(actor)
            if user.target_speed > 0 and blueprints[user.agent_class].startswith("vehicle."):
                actor.set_autopilot(True, port)
                world.traffic_manager.set_desired_speed(actor, 3.6 * user.target_speed)
        if skipped:
            log.warning("sim=carla: %d road users not spawned (place taken or no blueprint): %s", len(skipped), skipped)

    def _spawn_background(self, world: SyncWorld) -> None:
        if self.config.background_vehicles <= 0:
            return
        points = world.world.get_map().get_spawn_points()
        if not points:
            log.warning("sim=carla: the map has no spawn points; no background vehicles")
            return
        library = world.world.get_blueprint_library()
        blueprints = [b for b in library.filter("vehicle.*") if int(b.get_attribute("number_of_wheels")) == 4]
        rng = np.random.default_rng(world.config.seed)
        port = world.traffic_manager.get_port()
        for index in rng.permutation(len(points))[: self.config.background_vehicles]:
            bp = blueprints[int(rng.integers(len(blueprints)))]
            bp.set_attribute("role_name", "background")
            actor = world.world.try_spawn_actor(bp, points[int(index)])
            if actor is not None:
                world.actors.append(actor)
                actor.set_autopilot(True, port)

    def _stop_lines(self, world: SyncWorld, cmap: Any) -> list[StopLine]:
        lines = []
        for light in world.world.get_actors().filter("traffic.traffic_light*"):
            for wp in light.get_stop_waypoints():
                pose = co.transform_to_se2(wp.transform)
                half = self.config.red_light_lateral_factor * wp.lane_width
                lines.append(StopLine(str(light.id), (float(pose[0]), float(pose[1])), float(pose[2]), half))
        return lines

    def _stop_zones(self, world: SyncWorld) -> dict[str, tuple[tuple[float, float], float]]:
        zones = {}
        for stop in world.world.get_actors().filter("traffic.stop"):
            volume = stop.trigger_volume
            center = co.location_to_suite(co.local_to_world(stop.get_transform(), volume.location))
            radius = self.config.stop_zone_scale * math.hypot(volume.extent.x, volume.extent.y)
            zones[str(stop.id)] = ((float(center[0]), float(center[1])), radius)
        return zones

    @staticmethod
    def _lane_query(cmap: Any) -> Callable[[np.ndarray], tuple[float, float, float] | None]:
        def lane_at(xy: np.ndarray) -> tuple[float, float, float] | None:
            wp = cmap.get_waypoint(co.suite_to_location(xy), project_to_road=True)
            if wp is None:
                return None
            centre = co.location_to_suite(wp.transform.location)
            heading = float(co.yaw_to_heading(wp.transform.rotation.yaw))
            return heading, float(np.hypot(*(centre[:2] - xy))), float(wp.lane_width)

        return lane_at

    # ------------------------------------------------------------------ step
    def step(self, action: Trajectory | Controls) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Inherited, see ``ClosedLoopEnv.step``."""
        episode, world = self.episode, self.world
        if episode is None or world is None:
            raise RuntimeError("CarlaEnv.step before reset")
        tracker = self._tracker(action) if isinstance(action, Trajectory) else None
        control_every = max(1, round(self.simulation.dt / self.config.fixed_delta_seconds))
        controls = action if isinstance(action, Controls) else None
        trace, events = [], []
        termination: TerminationReason | None = None
        frame_id = 0
        for k in range(self.ticks_per_step):
            if tracker is not None and k % control_every == 0:
                controls = self._track(tracker, k // control_every)
            assert controls is not None
            episode.ego.apply_control(to_vehicle_control(controls, self.limits))
            frame_id = world.tick()
            episode.time += self.config.fixed_delta_seconds
            row = self._trace_row()
            trace.append(row)
            pose = row[[TraceIndex.X, TraceIndex.Y, TraceIndex.HEADING]]
            speed = float(row[TraceIndex.VELOCITY_X])
            with episode.lock:
                hits = list(episode.collision_events)
                episode.collision_events.clear()
            events += episode.collisions.update(episode.time, pose[:2], speed, hits)
            events += episode.red_lights.update(episode.time, pose, self._red_lights(world))
            events += episode.stops.update(episode.time, pose[:2], speed)
            events += episode.lanes.update(episode.time, pose)
            episode.progress.update(pose[:2])
            if episode.progress.completed:
                termination = TerminationReason.ROUTE_COMPLETED
            elif self.config.terminate_on_collision and any(e.kind.is_collision for e in events):
                termination = TerminationReason.COLLISION
            if termination is not None:
                break
        truncated = termination is None and episode.time >= self.config.time_limit - 1e-9
        if truncated:
            termination = TerminationReason.TIME_LIMIT
        if termination is not None:
            events += episode.lanes.finish()
        episode.step_index += 1
        frame = self._frame(frame_id)
        episode.frames = [*episode.frames[-(self.config.num_history_frames - 1) :], frame]
        limit = float(episode.ego.get_speed_limit()) / 3.6
        info: dict[str, Any] = {
            InfoKey.FRAME: frame,
            InfoKey.TIME: episode.time,
            InfoKey.EGO_TRACE: np.array(trace),
            InfoKey.INFRACTIONS: events,
            InfoKey.ROUTE_COMPLETION: episode.progress.completion,
            InfoKey.SPEED_LIMIT: limit if limit > 0 else None,
            InfoKey.TRAFFIC_SPEED: self._traffic_speed(world),
        }
        with episode.lock:
            info[InfoKey.LANE_INVASIONS] = list(episode.lane_invasions)
            episode.lane_invasions.clear()
        if isinstance(action, Trajectory):
            info[InfoKey.PLAN] = action
        if termination is not None:
            info[InfoKey.TERMINATION] = termination
        terminated = termination is not None and not truncated
        return self._observation(), 0.0, terminated, truncated, info

    def _tracker(self, plan: Trajectory) -> BatchLQRTracker:
        assert self.episode is not None
        where = f"sim=carla route {self.episode.route.route_id} t={self.episode.time:.2f} s"
        poses = check_plans(np.asarray(plan.poses, dtype=np.float64)[None], plan.trajectory_sampling, where)
        origin = self._ego_pose()
        reference = plans_to_reference(poses, plan.trajectory_sampling, origin, self.simulation)
        return BatchLQRTracker(reference, self.simulation.tracker, self.vehicle)

    def _track(self, tracker: BatchLQRTracker, iteration: int) -> Controls:
        assert self.episode is not None
        state = np.zeros(len(StateIndex))
        state[[StateIndex.X, StateIndex.Y, StateIndex.HEADING]] = self._ego_pose()
        velocity = self._ego_velocity()
        state[StateIndex.VELOCITY_X], state[StateIndex.VELOCITY_Y] = velocity
        state[StateIndex.STEERING_ANGLE] = self.episode.steering_angle
        last = tracker.reference.shape[1] - 1
        accel, rate = tracker(min(iteration, last - 1), state[None])
        angle = float(np.clip(self.episode.steering_angle + rate[0] * self.simulation.dt, -1.2, 1.2))
        self.episode.steering_angle = angle
        return Controls(acceleration=float(accel[0]), steering_angle=angle)

    # ------------------------------------------------------------------ reading the world
    def _ego_pose(self) -> npt.NDArray[np.float64]:
        """The ego's rear-axle pose in the suite frame ``(3,)``."""
        assert self.episode is not None
        ego = self.episode.ego
        actor = co.transform_to_se2(ego.get_transform())
        return co.rear_axle_from_actor(actor, self.vehicle, float(ego.bounding_box.location.x))

    def _ego_velocity(self) -> npt.NDArray[np.float64]:
        """The ego's velocity in its own frame (vx, vy) [m/s]."""
        assert self.episode is not None
        v = self.episode.ego.get_velocity()
        heading = self._ego_pose()[SE2Index.HEADING]
        return co.velocity_in_ego_frame(co.velocity_to_suite([v.x, v.y]), heading)

    def _trace_row(self) -> npt.NDArray[np.float64]:
        assert self.episode is not None
        ego = self.episode.ego
        row = np.zeros(len(TraceIndex))
        row[TraceIndex.TIME] = self.episode.time
        pose = self._ego_pose()
        row[[TraceIndex.X, TraceIndex.Y, TraceIndex.HEADING]] = pose
        row[[TraceIndex.VELOCITY_X, TraceIndex.VELOCITY_Y]] = self._ego_velocity()
        a = ego.get_acceleration()
        row[[TraceIndex.ACCELERATION_X, TraceIndex.ACCELERATION_Y]] = co.velocity_in_ego_frame(
            co.velocity_to_suite([a.x, a.y]), pose[SE2Index.HEADING]
        )
        row[TraceIndex.YAW_RATE] = co.yaw_rate_to_suite(ego.get_angular_velocity().z)
        return row

    def _light_states(self) -> list[tuple[str, bool]]:
        """``(lane connector id, is red)`` of the exported scenario's lights (CARLA's light states now)."""
        import carla

        episode, world = self.episode, self.world
        if episode is None or world is None or not episode.light_connectors:
            return []
        states = []
        for light in world.world.get_actors().filter("traffic.traffic_light*"):
            for connector in episode.light_connectors.get(str(light.get_opendrive_id()), []):
                states.append((connector, light.get_state() == carla.TrafficLightState.Red))
        return sorted(states)

    @staticmethod
    def _red_lights(world: SyncWorld) -> set[str]:
        import carla

        lights = world.world.get_actors().filter("traffic.traffic_light*")
        return {str(light.id) for light in lights if light.get_state() == carla.TrafficLightState.Red}

    def _others(self, world: SyncWorld) -> list[Any]:
        assert self.episode is not None
        ego_id = self.episode.ego.id
        actors = [*world.world.get_actors().filter("vehicle.*"), *world.world.get_actors().filter("walker.*")]
        return [a for a in actors if a.id != ego_id]

    def _traffic_speed(self, world: SyncWorld) -> float | None:
        speeds = [
            float(np.hypot(v.x, v.y))
            for a in world.world.get_actors().filter("vehicle.*")
            if a.attributes.get("role_name") == "background"
            for v in [a.get_velocity()]
        ]
        return float(np.mean(speeds)) if speeds else None

    def _annotations(self, ego_pose: npt.NDArray[np.float64]) -> Annotations:
        assert self.world is not None
        boxes, names, velocities, tokens = [], [], [], []
        for actor in self._others(self.world):
            box = co.bounding_box_to_suite(actor.bounding_box, actor.get_transform())
            if np.hypot(*(box[[BoundingBoxIndex.X, BoundingBoxIndex.Y]] - ego_pose[:2])) > ANNOTATION_RADIUS:
                continue
            pose = absolute_to_relative(
                box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]], ego_pose
            )
            box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]] = pose
            v = actor.get_velocity()
            v_suite = co.velocity_to_suite([v.x, v.y, v.z])
            c, s = math.cos(ego_pose[2]), math.sin(ego_pose[2])
            velocities.append([c * v_suite[0] + s * v_suite[1], -s * v_suite[0] + c * v_suite[1], v_suite[2]])
            boxes.append(box)
            is_bike = actor.type_id.startswith("vehicle.") and actor.attributes.get("number_of_wheels") == "2"
            names.append(
                AgentClass.PEDESTRIAN.value
                if actor.type_id.startswith("walker.")
                else (AgentClass.BICYCLE.value if is_bike else AgentClass.VEHICLE.value)
            )
            tokens.append(f"carla_{actor.id}")
        n = len(boxes)
        return Annotations(
            boxes=np.array(boxes).reshape(n, len(BoundingBoxIndex)),
            names=names,
            velocity_3d=np.array(velocities).reshape(n, 3),
            instance_tokens=list(tokens),
            track_tokens=tokens,
        )

    def _frame(self, frame_id: int) -> Frame:
        """The suite ``Frame`` now, with the sensor data of ``frame_id``."""
        episode = self.episode
        assert episode is not None
        pose = self._ego_pose()
        velocity = self._ego_velocity()
        dt = self.step_interval if episode.frames else 1.0
        acceleration = (velocity - episode.previous_velocity) / dt if episode.frames else np.zeros(2)
        episode.previous_velocity = velocity
        command = compute_driving_command(episode.route.poses, pose[:2])
        status = EgoStatus(pose, velocity, acceleration, one_hot_command(command), in_global_frame=True)
        cameras, lidar = episode.sensors.read(frame_id) if episode.sensors.names else ({}, None)
        token = f"{episode.route.route_id.replace('/', '_')}_{episode.step_index:05d}_{len(episode.frames):02d}"
        return Frame(
            token=token,
            timestamp=round((episode.time + self.config.num_history_frames * LOG_INTERVAL) * 1e6),  # > 0 [us]
            roadblock_ids=list(episode.route.roadblock_ids),
            traffic_lights=self._light_states(),
            annotations=self._annotations(pose),
            ego_status=status,
            lidar=lidar,
            cameras=cameras,
        )

    def _observation(self) -> Any:
        episode = self.episode
        assert episode is not None
        frames = episode.frames[-self.config.num_history_frames :]
        current = frames[-1]
        meta = SceneMetadata(
            episode.route.route_id, current.token, episode.route.map_name, current.token, len(frames), 0
        )
        return Scene(meta, frames, episode.map_api).get_agent_input()

    # ------------------------------------------------------------------ cleanup
    def _end_episode(self) -> None:
        world, self.world, self.episode = self.world, None, None
        if world is not None:
            try:
                world.close(raising=False)
            except CarlaError as err:  # pragma: no cover - close(raising=False) only logs
                log.warning("%s", err)

    def close(self) -> None:
        """Inherited, see ``ClosedLoopEnv.close``: destroys every actor, restores the server's settings."""
        self._end_episode()


def _append(lock: threading.Lock, items: list[Any], item: Any) -> None:
    with lock:
        items.append(item)
