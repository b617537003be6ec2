"""``EmbeddedEnv``: the embedded world as a closed-loop simulator (``irl_vla.envs.ClosedLoopEnv``).

An episode is one scenario of a family (route ``<family>/<seed>``, built as ``irl-vla generate`` builds its logs):
the expert drives the first ``warmup`` seconds (the observation's history), then a ``FreeEgo`` takes over, a
kinematic bicycle whose LQR controller tracks the agent's plan at 10 Hz while the agent replans every
``replan_interval`` seconds. Traffic, people and lights react to the free ego as they react to the expert.

* observation: the agent's ``AgentInput`` (ego history relative to the current pose at 2 Hz, the sensors its
  ``SensorConfig`` asks for, rendered by the embedded renderer, the navigation instruction);
* action: a ``Trajectory`` in the current ego frame, or ``Controls`` (``EmbeddedEnvConfig.action``);
* infractions and the end of an episode: the suite's ``irl_vla.envs.InfractionMonitor`` (leaderboard 2.x rules)
  reads every 10 Hz tick (the ego's rear-axle pose and speed, every road user's box, the lights): collisions,
  red lights, off-road and wrong-way stretches, route deviation, blocked, route timeout, minimum speed; the
  episode ends at route completion, a collision (``terminate_on_collision``), a route-ending infraction, or at
  ``time_limit`` (truncation);
* reward: the route completion gained in the step [fraction of the route], minus 1 at a collision.

Frames are built as the recorder builds its logs (``recorder.capture`` and ``frame_of``, which ``recorder.observe``
also calls): each simulation step captures a ``recorder.Snapshot`` (plain values: the ego, the others' poses and
speeds, the lights, the instruction), which also makes the monitor's tick; the frames and the observation a step
returns are built from their snapshots at their first read (``deferred``), so an agent that does not read them
(or replans less often) does not pay for them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irl_vla.common.config import require_at_least
from irl_vla.data.driving_command import prepare_centerline
from irl_vla.data.enums import AgentClass, BoundingBoxIndex
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.scene import AgentInput, Scene, SceneMetadata
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.data.vehicle import PACIFICA
from irl_vla.envs.env import ActionKind, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import Infraction
from irl_vla.envs.monitor import InfractionMonitor, MonitorConfig
from irl_vla.envs.route import Route
from irl_vla.envs.tick import Tick
from irl_vla.envs.trace import TraceIndex
from irl_vla.scoring.simulation import SimulationConfig
from irl_vla.scoring.states import StateIndex
from scenarios.registry import FAMILIES_DIR, ScenarioFamily, load_families
from sim_bridges.embedded.deferred import DeferredAgentInput, DeferredFrame
from sim_bridges.embedded.ego_control import FreeEgo, plan_steps
from sim_bridges.embedded.recorder import (
    RECORD_EVERY,
    Snapshot,
    capture,
    frame_of,
    frame_token,
    observe,
    user_constants,
)
from sim_bridges.embedded.render.sensors import SensorRenderer
from sim_bridges.embedded.road_users import RoadUser, road_user_fields
from sim_bridges.embedded.scenario_world import ScenarioInstance, build_scenario
from sim_bridges.embedded.vector_update import Column, current_state
from sim_bridges.embedded.world import DT, World

#: Spacing of a route's dense poses [m] (``RouteProgress`` looks two points ahead per 10 Hz tick).
ROUTE_SPACING = 2.0
#: The route ends this far before the end of the ego's path [m].
ROUTE_END_MARGIN = 10.0
#: Traffic within this distance [m] makes ``InfoKey.TRAFFIC_SPEED``.
TRAFFIC_RANGE = 50.0
#: Slack [m] of the tick's pre-filter (boxes farther than they can reach to touch the ego are left out of the tick).
REACH_SLACK = 0.01
#: A box's pose columns.
_POSE_COLUMNS = np.array([BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING])
#: The trace columns copied from the ego's state, and their state columns; the time, the speed and the lateral
#: acceleration's column (plain ints: an enum member indexes an array through a Python call).
_TRACE_COLUMNS = np.array(
    [TraceIndex.X, TraceIndex.Y, TraceIndex.HEADING, TraceIndex.VELOCITY_X, TraceIndex.ACCELERATION_X,
     TraceIndex.YAW_RATE]
)  # fmt: skip
_STATE_COLUMNS = np.array(
    [StateIndex.X, StateIndex.Y, StateIndex.HEADING, StateIndex.VELOCITY_X, StateIndex.ACCELERATION_X,
     StateIndex.ANGULAR_VELOCITY]
)  # fmt: skip
_TIME, _SPEED, _LATERAL_ACCEL = int(TraceIndex.TIME), int(StateIndex.VELOCITY_X), int(TraceIndex.ACCELERATION_Y)


@dataclass
class EmbeddedEnvConfig:
    """Settings of the embedded closed-loop env (``configs/sim/embedded.yaml``, ``sim.<key>=...``).

    Attributes:
        families: scenario families episodes are drawn from (``None``: all), unless the reset names a route.
        families_dir: the folder of the families' yaml files (``None``: ``scenarios/families``).
        action: ``trajectory`` (a plan tracked by the LQR controller) or ``controls``.
        replan_interval: simulated time per ``step`` [s]: the agent replans this often (0.5 s: 2 Hz); a multiple
            of 0.5 s, or 0.1 s or 0.5 s's divisors at the 10 Hz simulation step, and at most a plan's 4 s.
        route_length: route length from the take-over point [m] (shorter where the ego's path ends).
        time_limit: episode length [s] after which it is truncated.
        warmup: the expert drives this long before the agent takes over [s] (the first observation's history).
        num_history_frames: 2 Hz frames in an observation, the current one included.
        terminate_on_collision: end the episode at the first collision.
        describe: write scene descriptions into the frames (a supervision target; off saves time).
        vectorised: decide the road users' accelerations and poses in one compiled call each (``vector_update``,
            equal to the recorder's per-user loop within float tolerance and many times faster), and track the
            plan with the compiled tracker (``ego_kernels``, equal to the scorer's numpy tracker likewise).
    """

    families: list[str] | None = None
    families_dir: str | None = None
    action: str = ActionKind.TRAJECTORY.value
    replan_interval: float = 0.5
    route_length: float = 150.0
    time_limit: float = 60.0
    warmup: float = 1.5
    num_history_frames: int = 4
    terminate_on_collision: bool = True
    describe: bool = False
    vectorised: bool = True
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        if self.families is not None:
            self.families = [str(name) for name in self.families]
        ActionKind(self.action)
        require_at_least(self, ("num_history_frames",), 1)
        steps = self.replan_steps
        fits = RECORD_EVERY % steps == 0 or steps % RECORD_EVERY == 0
        if abs(steps * DT - self.replan_interval) > 1e-9 or not fits:
            raise ValueError(
                f"EmbeddedEnvConfig.replan_interval: {self.replan_interval} s is not a multiple of 0.5 s nor one of "
                f"0.1 s and 0.5 s at the {DT} s simulation step"
            )
        if not 1 <= steps <= plan_steps(self.simulation):
            raise ValueError(
                f"EmbeddedEnvConfig.replan_interval: {self.replan_interval} s is outside 0.1 .. "
                f"{plan_steps(self.simulation) * DT:g} s (a plan covers 4 s)"
            )
        warm = round(self.warmup / DT)
        if warm % RECORD_EVERY or warm < (self.num_history_frames - 1) * RECORD_EVERY:
            raise ValueError(
                f"EmbeddedEnvConfig.warmup: {self.warmup} s must be a multiple of 0.5 s covering the "
                f"{self.num_history_frames} history frames"
            )
        for name in ("route_length", "time_limit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EmbeddedEnvConfig.{name}: expected > 0, got {getattr(self, name)}")

    @property
    def replan_steps(self) -> int:
        """Simulation steps per ``step``."""
        return max(1, round(self.replan_interval / DT))


def route_of(instance: ScenarioInstance, route_id: str, length: float) -> Route:
    """The route ahead of the ego: its path from the rear axle, ``length`` [m] long, every ``ROUTE_SPACING``."""
    ego = instance.world.ego
    start = ego.s - PACIFICA.rear_axle_to_center
    end = min(start + length, ego.path.length - ROUTE_END_MARGIN)
    if end - start < 2 * ROUTE_SPACING:
        raise ValueError(f"route {route_id}: the ego's path ends {end - start:.1f} m after the take-over point")
    s = np.linspace(start, end, max(2, int(np.ceil((end - start) / ROUTE_SPACING)) + 1))
    return Route(route_id, ego.path.pose_at(s, ego.home_lateral), list(instance.route_ids), instance.world.map.name)


def fork_expert(world: World) -> World:
    """A copy of ``world`` (sharing the map and the paths) whose ego is the expert again, where the free ego is.

    The expert starts at the free ego's arc length, lateral offset and speed on the route path; in or past a
    junction (where the expert never steers on its own) it first steers back to its lane's centre.
    """
    memo: dict[int, Any] = {id(world.map): world.map}
    table = getattr(world, "_user_table", None)
    if table is not None:
        memo[id(table)] = table  # never changes: shared (a copy of the users rebuilds it for the copy)
    for user in world.road_users_and_ego:
        memo[id(user.path)] = user.path
    fork = copy.deepcopy(world, memo)
    free = fork.ego
    expert = RoadUser(**{**road_user_fields(free), "expert": True, "manoeuvre": None})  # type: ignore[arg-type]
    if expert.s + expert.length / 2 >= expert.lane_change_before and abs(expert.lateral - expert.home_lateral) > 0.05:
        # In or past the junction the expert's own lateral logic never acts (its lateral offset is its route's):
        # steer back to the lane centre from where the free ego drifted.
        expert.start_manoeuvre(expert.home_lateral)
    fork.ego = expert
    fork.ego_controller = None
    return fork


class EmbeddedEnv:
    """The embedded world as a ``ClosedLoopEnv``.

    Args:
        config: the env's settings.
        families: the scenario families by name (default: loaded from ``config.families_dir``).
        renderer: the sensor renderer (default: the embedded rig and LiDAR, made when a sensor is first asked for).
    """

    def __init__(
        self,
        config: EmbeddedEnvConfig | None = None,
        families: dict[str, ScenarioFamily] | None = None,
        renderer: SensorRenderer | None = None,
    ) -> None:
        self.config = config or EmbeddedEnvConfig()
        all_families = families if families is not None else load_families(self.config.families_dir or FAMILIES_DIR)
        names = self.config.families if self.config.families is not None else sorted(all_families)
        unknown = sorted(set(names) - set(all_families))
        if unknown or not names:
            raise ValueError(f"EmbeddedEnvConfig.families: unknown {unknown or names}; known: {sorted(all_families)}")
        self.families = {name: all_families[name] for name in names}
        self.all_families = all_families
        self.action_kind = ActionKind(self.config.action)
        self.step_interval = self.config.replan_steps * DT
        self.renderer = renderer
        self.sensor_config = SensorConfig.build_no_sensors()
        self._rng = np.random.default_rng()
        self._world: World | None = None

    # ------------------------------------------------------------------ episode state
    @property
    def world(self) -> World:
        """The world of the current episode.

        Raises:
            RuntimeError: before the first ``reset``.
        """
        if self._world is None:
            raise RuntimeError("EmbeddedEnv: call reset() before stepping or reading the world")
        return self._world

    @property
    def ego(self) -> FreeEgo:
        """The free ego of the current episode."""
        ego = self.world.ego
        assert isinstance(ego, FreeEgo)
        return ego

    @property
    def time(self) -> float:
        """Simulated time since the reset [s]."""
        return round(self.world.time - self._t0, 9)

    def route_ids(self, seeds: range | list[int]) -> list[str]:
        """Route ids ``<family>/<seed>`` of every drawn family for ``seeds``."""
        return [f"{name}/{seed}" for name in self.families for seed in seeds]

    def _parse_route(self, route_id: str) -> tuple[ScenarioFamily, int]:
        family, _, seed = route_id.rpartition("/")
        if family not in self.all_families or not seed.lstrip("-").isdigit():
            raise ValueError(
                f"EmbeddedEnv: no route {route_id!r}; routes are <family>/<seed> with a family of "
                f"{sorted(self.all_families)}"
            )
        return self.all_families[family], int(seed)

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[AgentInput, dict[str, Any]]:
        """Build the route's scenario, let the expert drive ``warmup`` seconds, hand the ego to the agent.

        Without ``options[ResetOption.ROUTE]`` the family and the scenario seed are drawn from ``seed``'s stream.

        Raises:
            ValueError: naming the route when it is not ``<family>/<seed>`` of a known family.
        """
        options = dict(options or {})
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        route_id = options.get(ResetOption.ROUTE, options.get(ResetOption.ROUTE.value))
        if route_id is None:
            names = list(self.families)
            route_id = f"{names[int(self._rng.integers(len(names)))]}/{int(self._rng.integers(2**31 - 1))}"
        family, scenario_seed = self._parse_route(str(route_id))
        sensor_config = options.get(ResetOption.SENSOR_CONFIG, options.get(ResetOption.SENSOR_CONFIG.value))
        self.sensor_config = sensor_config if sensor_config is not None else SensorConfig.build_no_sensors()
        if self.sensor_config.needs_any and self.renderer is None:
            self.renderer = SensorRenderer()

        instance = build_scenario(family, scenario_seed)
        self.instance, self.route_id = instance, str(route_id)
        self._centerline = prepare_centerline(instance.route_centerline)  # every frame's driving command reads it
        world = instance.world
        world.vectorised = self.config.vectorised
        self._world, self._step_index, self._frames = world, 0, {}
        self._constants = user_constants(world)
        self._boxes: np.ndarray | None = None
        self._traffic: np.ndarray | None = None
        self._tick_traffic: tuple[float, float | None] | None = None
        self._lights: tuple[list[tuple[str, bool]], frozenset[str], frozenset[str]] | None = None
        self._add_frame()
        for _ in range(round(self.config.warmup / DT)):
            world.step()
            self._step_index += 1
            if self._step_index % RECORD_EVERY == 0:
                self._add_frame()
        ego = FreeEgo.take_over(world.ego, self.config.simulation)
        ego.compiled = self.config.vectorised
        world.ego, world.ego_controller = ego, ego.advance
        self._t0 = world.time
        self.route = route_of(instance, self.route_id, self.config.route_length)
        self.monitor = InfractionMonitor(
            self.route, world.map, MonitorConfig(terminate_on_collision=self.config.terminate_on_collision)
        )
        self._plan: Trajectory | None = None
        self._done = False
        self.speed_limit = float(instance.params["road"]["speed_limit"])
        info = {
            InfoKey.ROUTE: self.route,
            InfoKey.MAP: world.map,
            InfoKey.FRAME: self._frames[self._step_index],
            InfoKey.TIME: 0.0,
        }
        return self._agent_input(), info

    def step(self, action: Trajectory | Controls) -> tuple[AgentInput, float, bool, bool, dict[str, Any]]:
        """Track ``action`` for ``step_interval`` seconds at 10 Hz; ``(obs, reward, terminated, truncated, info)``.

        Raises:
            RuntimeError: before ``reset`` or after the episode ended.
            TypeError: on an action of the other kind.
            ValueError: on a plan with non-finite or implausible poses (naming the route and time).
        """
        world, ego = self.world, self.ego
        if self._done:
            raise RuntimeError(f"EmbeddedEnv ({self.route_id}): the episode has ended; call reset()")
        where = f"route {self.route_id} at t={self.time:.1f} s"
        if self.action_kind is ActionKind.TRAJECTORY:
            if not isinstance(action, Trajectory):
                raise TypeError(f"EmbeddedEnv ({where}): expected a Trajectory, got {type(action).__name__}")
            ego.follow(action, where)
            self._plan = action
        else:
            if not isinstance(action, Controls):
                raise TypeError(f"EmbeddedEnv ({where}): expected Controls, got {type(action).__name__}")
            ego.hold(action.acceleration, action.steering_angle)
        completion_before = self.monitor.completion
        steps = self.config.replan_steps
        trace = np.zeros((steps, len(TraceIndex)))
        infractions: list[Infraction] = []
        reason: TerminationReason | None = None
        for k in range(steps):
            world.step()
            self._step_index += 1
            self._trace_row(trace[k])
            snapshot = self._snapshot()
            events, reason = self.monitor.update(self._tick(snapshot))
            infractions += events
            if reason is not None:
                trace = trace[: k + 1]
                break
            if self._step_index % RECORD_EVERY == 0 and k < steps - 1:
                self._add_frame(snapshot)  # on the 2 Hz grid of the observation's history
        truncated = reason is None and self.time >= self.config.time_limit - 1e-9
        if truncated:
            reason = TerminationReason.TIME_LIMIT
            infractions += self.monitor.finish(reason)
        self._add_frame(snapshot)
        collided = any(i.kind.is_collision for i in infractions)
        reward = (self.monitor.completion - completion_before) / 100.0 - float(collided)
        info: dict[str, Any] = {
            InfoKey.FRAME: self._frames[self._step_index],
            InfoKey.TIME: self.time,
            InfoKey.EGO_TRACE: trace,
            InfoKey.INFRACTIONS: infractions,
            InfoKey.ROUTE_COMPLETION: self.monitor.completion,
            InfoKey.SPEED_LIMIT: self.speed_limit,
            InfoKey.TRAFFIC_SPEED: self._traffic_speed(),
            InfoKey.PLAN: self._plan,
        }
        terminated = reason is not None and not truncated
        if reason is not None:
            info[InfoKey.TERMINATION] = reason
        self._done = terminated or truncated
        return self._agent_input(), reward, terminated, truncated, info

    def close(self) -> None:
        """Drop the episode (nothing else is held)."""
        self._world = None

    # ------------------------------------------------------------------ privileged
    def expert_plan(self) -> Trajectory:
        """The expert's plan from the free ego's state now (privileged): a copy of the world, the expert driving it.

        The copy's expert starts where the free ego is (its arc length, lateral offset and speed on the route path)
        and drives 4 s; its rear-axle poses every 0.5 s, relative to the free ego's, make the plan.
        """
        fork = fork_expert(self.world)
        sampling = DEFAULT_SAMPLING
        assert sampling.num_poses is not None and sampling.interval_length is not None
        every = round(sampling.interval_length / DT)
        poses = []
        for _ in range(sampling.num_poses):
            for _ in range(every):
                fork.step()
            poses.append(PACIFICA.rear_axle_from_center(fork.ego.pose))
        rel = absolute_to_relative(np.stack(poses), self.ego.rear_axle)
        return Trajectory(rel.astype(np.float32), sampling)

    # ------------------------------------------------------------------ internals
    def _snapshot(self) -> Snapshot:
        """What a frame and a tick read of the world now (``recorder.capture``), with the others' poses and speeds."""
        world = self.world
        users = world.road_users
        if len(self._constants[0]) != len(users):  # road users added or removed since the reset
            self._constants = user_constants(world)
        state = current_state(world) if world.vectorised else None
        if state is not None:  # the world's state columns (``vector_update.WorldState``), the ego's row first
            speeds, targets = state.cols[1:, Column.SPEED].copy(), state.cols[1:, Column.TARGET_SPEED].copy()
        else:
            speeds = np.array([u.speed for u in users], dtype=np.float64)
            targets = np.array([u.target_speed for u in users], dtype=np.float64)
        self._targets = targets
        ego = world.ego
        rear = ego.rear_axle if isinstance(ego, FreeEgo) else None
        return capture(world, poses=world.poses()[1:], speeds=speeds, constants=self._constants, ego_pose=rear)

    def _add_frame(self, snapshot: Snapshot | None = None) -> None:
        """Record the frame of the current simulation step (the observation's history keeps the last ones).

        The frame is built from ``snapshot`` (default: taken now) when it is first read (``DeferredFrame``); with
        ``describe`` it is built now (the scene description reads the world itself).
        """
        world = self.world
        token = frame_token(self.route_id, self._step_index)
        if self.config.describe:
            self._frames[self._step_index] = observe(world, self.instance.route_ids, self._centerline, token)
        else:
            snap = self._snapshot() if snapshot is None else snapshot
            route_ids, centerline = self.instance.route_ids, self._centerline
            self._frames[self._step_index] = DeferredFrame(build=lambda: frame_of(snap, route_ids, centerline, token))
        keep = self._step_index - self.config.num_history_frames * RECORD_EVERY
        for index in [i for i in self._frames if i < keep]:
            del self._frames[index]

    def _agent_input(self) -> AgentInput:
        """The observation: the history frames (2 Hz) with the sensors the agent asked for, built at its first read."""
        n = self.config.num_history_frames
        # Every 0.5 s back from now; an episode cut short by a collision reaches back to the last frame on the grid.
        # (Frames are recorded in step order: the last one at or before a step is the first found from the end.)
        indices = [
            next(i for i in reversed(self._frames) if i <= self._step_index - k * RECORD_EVERY) for k in range(n)
        ]
        frames = [self._frames[i] for i in reversed(indices)]
        world_map, route_id = self.world.map, self.route_id
        sensors, renderer = self.sensor_config, self.renderer

        def build() -> AgentInput:
            current = frames[-1]
            meta = SceneMetadata(route_id, current.token, world_map.name, current.token, n, 0)
            scene = Scene(meta, frames, world_map)
            if sensors.needs_any:
                assert renderer is not None
                for index, frame in enumerate(frames):
                    names = [c for c in sensors.cameras_at(index) if c not in frame.cameras]
                    if names:
                        frame.cameras = {**frame.cameras, **renderer.render_cameras(frame, world_map, names)}
                    if sensors.lidar_at(index) and frame.lidar is None:
                        frame.lidar = renderer.render_lidar(frame, world_map)
            return scene.get_agent_input()

        return DeferredAgentInput(build=build)

    def _trace_row(self, row: np.ndarray) -> None:
        """Fill ``row`` ``(len(TraceIndex),)`` with the ego's trace now."""
        ego = self.ego
        state = ego.state
        row[_TIME] = self.time
        row[_TRACE_COLUMNS] = state[_STATE_COLUMNS]
        row[_LATERAL_ACCEL] = state[_SPEED] ** 2 * ego.curvature()

    def _tick(self, snapshot: Snapshot) -> Tick:
        """The world now as the infraction monitor reads it: the other objects' boxes in the global frame.

        Only boxes near enough to touch the ego's are passed (the collision test's own distance bound, with a
        slack): the monitor's collision test finds the same boxes in fewer.
        """
        ego = self.ego
        poses, speeds = snapshot.poses, snapshot.speeds  # (N, 3), (N,)
        if self._boxes is None or len(self._boxes) != len(poses):
            dims = snapshot.dims
            self._boxes = np.zeros((len(poses), len(BoundingBoxIndex)))
            cols = [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]
            self._boxes[:, cols] = dims
            self._boxes[:, BoundingBoxIndex.Z] = dims[:, 2] / 2
            # How far [m] each box's centre may be from the ego's and still touch it (the collision test's bound).
            reach = np.hypot(PACIFICA.length / 2, PACIFICA.width / 2) + np.hypot(dims[:, 0] / 2, dims[:, 1] / 2)
            self._reach = reach + REACH_SLACK
        cx, cy, _ = ego.pose.tolist()
        distance = np.hypot(poses[:, 0] - cx, poses[:, 1] - cy)  # (N,)
        near = np.flatnonzero(distance <= self._reach)
        boxes = self._boxes[near]
        boxes[:, _POSE_COLUMNS] = poses[near]
        moving = ~(self._targets <= 0.0)
        self._tick_traffic = (snapshot.time, self._traffic_speed_of(poses, speeds, moving, distance))
        lights = snapshot.lights
        if self._lights is None or self._lights[0] != lights:  # light states change a few times a minute
            self._lights = (lights, frozenset(c for c, red in lights if red), frozenset(c for c, _ in lights))
        names, tokens, rows = snapshot.names, snapshot.tokens, near.tolist()
        return Tick(
            time=self.time,
            ego_pose=ego.rear_axle,
            ego_speed=ego.speed,
            boxes=boxes,
            names=[names[k] for k in rows],
            ids=[tokens[k] for k in rows],
            speeds=speeds[near],
            red_connectors=self._lights[1],
            lit_connectors=self._lights[2],
            speed_limit=self.speed_limit,
            traffic_speed=self._tick_traffic[1],
        )

    def _traffic_speed(self) -> float | None:
        """Mean speed [m/s] of the moving-traffic vehicles within ``TRAFFIC_RANGE`` of the ego, None with none.

        The last tick's value while the world has not stepped since.
        """
        last = self._tick_traffic
        if last is not None and last[0] == self.world.time:
            return last[1]
        users = self.world.road_users
        speeds = np.array([u.speed for u in users])
        return self._traffic_speed_of(self.world.poses()[1:], speeds, np.array([not u.is_static for u in users]))

    def _traffic_speed_of(
        self, poses: np.ndarray, speeds: np.ndarray, moving: np.ndarray, distance: np.ndarray | None = None
    ) -> float | None:
        """``_traffic_speed`` from the others' poses ``(N, 3)``, speeds ``(N,)`` and whether each moves ``(N,)``.

        ``distance``: the others' distances [m] from the ego's box centre ``(N,)``, if the caller has them.
        """
        users = self.world.road_users
        if self._traffic is None or len(self._traffic) != len(users):
            self._traffic = np.array([u.agent_class is AgentClass.VEHICLE and not u.background for u in users])
        if distance is None:
            distance = np.hypot(*(poses[:, :2] - self.ego.pose[:2]).T)
        near = distance < TRAFFIC_RANGE
        chosen = speeds[self._traffic & near & moving] if len(users) else speeds
        return float(np.add.reduce(chosen)) / len(chosen) if len(chosen) else None  # ``mean``'s arithmetic


def make_env(name: str = "embedded", **settings: Any) -> EmbeddedEnv:
    """The env of ``configs/sim/embedded.yaml`` (hydra's ``_target_``): ``EmbeddedEnvConfig`` keys as keywords.

    Raises:
        ValueError: when ``name`` is not ``embedded`` or on an unknown key (naming it).
    """
    if name != "embedded":
        raise ValueError(f"make_env: sim {name!r} is not the embedded world")
    unknown = sorted(set(settings) - set(EmbeddedEnvConfig.__dataclass_fields__) - {"simulation"})
    if unknown:
        known = sorted(EmbeddedEnvConfig.__dataclass_fields__)
        raise ValueError(f"sim=embedded: unknown keys {unknown}; known: {known}")
    return EmbeddedEnv(EmbeddedEnvConfig(**settings))
