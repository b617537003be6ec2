"""``EmbeddedGymEnv``: ``EmbeddedEnv`` as a ``gymnasium.Env`` with spaces, and its vectorised form.

``EmbeddedEnv``'s native observation is an ``AgentInput`` and its action a ``Trajectory`` (or ``Controls``);
gymnasium's tooling (``check_env``, ``gymnasium.vector``, RL libraries) needs arrays in declared spaces:

* observation ``Dict``: ``ego_status`` ``(T, D)`` float32 (``irl_vla.data.features.ego.EgoStatusBuilder``: poses
  relative to the current rear axle, velocity, acceleration per 2 Hz history frame), ``driving_command``
  ``(C,)`` one-hot, and, when the sensor config asks for cameras at the current frame, ``cameras`` (name ->
  ``(H, W, 3)`` uint8 image of the current frame);
* action ``Box``: a plan ``(T, 3)`` (x [m], y [m], heading [rad]) in the current ego frame at the default
  sampling (8 poses every 0.5 s), or ``(2,)`` controls (acceleration [m/s^2], steering angle [rad]).

``info`` holds the native info's plain values under ``InfoKey`` names (time, route completion, ego trace,
speed limit, traffic speed, termination as its name, infractions as ``Infraction.to_dict`` records); the native
objects (frame, route, map, plan) stay on ``env.unwrapped.env`` (the ``EmbeddedEnv``) and its last info,
``last_info``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.features.ego import DrivingCommandBuilder, EgoStatusBuilder, EgoStatusIndex
from irl_vla.data.scene import AgentInput
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.envs.env import ActionKind, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from sim_bridges.embedded.render.rig import RigConfig

#: Bounds of a plan's positions [m] in the action space (a 4 s plan at 50 m/s stays within).
PLAN_REACH = 200.0
#: Bound of the ego-status columns (history poses [m], speeds [m/s], accelerations [m/s^2]).
STATUS_BOUND = 1e4
#: Bounds of the acceleration control [m/s^2].
ACCEL_RANGE = (-8.0, 4.0)


class EmbeddedGymEnv(gymnasium.Env):
    """``EmbeddedEnv`` with gymnasium spaces.

    Args:
        config: the env's settings.
        sensor_config: the sensors every observation carries (cameras: the current frame's go into ``cameras``).
        route: drive this route (``<family>/<seed>``) at every reset instead of drawing one.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        config: EmbeddedEnvConfig | None = None,
        sensor_config: SensorConfig | None = None,
        route: str | None = None,
    ) -> None:
        self.env = EmbeddedEnv(config)
        self.sensor_config = sensor_config or SensorConfig.build_no_sensors()
        self.route = route
        n = self.env.config.num_history_frames
        self._ego = EgoStatusBuilder(num_history_frames=n)
        self._command = DrivingCommandBuilder()
        obs: dict[str, spaces.Space] = {
            "ego_status": spaces.Box(-STATUS_BOUND, STATUS_BOUND, (n, len(EgoStatusIndex)), np.float32),
            "driving_command": spaces.Box(0.0, 1.0, (len(DrivingCommand),), np.float32),
        }
        self.cameras = self.sensor_config.cameras_at(n - 1)
        if self.cameras:
            rig = self.env.renderer.rig if self.env.renderer is not None else RigConfig()
            shape = (rig.height, rig.width, 3)
            obs["cameras"] = spaces.Dict({name: spaces.Box(0, 255, shape, np.uint8) for name in self.cameras})
        self.observation_space = spaces.Dict(obs)
        if self.env.action_kind is ActionKind.TRAJECTORY:
            assert DEFAULT_SAMPLING.num_poses is not None
            reach = np.array([-PLAN_REACH, -PLAN_REACH, -np.pi], dtype=np.float32)
            low = np.tile(reach, (DEFAULT_SAMPLING.num_poses, 1))
            self.action_space: spaces.Box = spaces.Box(low, -low, dtype=np.float32)
        else:
            steer = self.env.config.simulation.bicycle.max_steering_angle
            self.action_space = spaces.Box(
                np.array([ACCEL_RANGE[0], -steer], dtype=np.float32),
                np.array([ACCEL_RANGE[1], steer], dtype=np.float32),
                dtype=np.float32,
            )

    def observation(self, agent_input: AgentInput) -> dict[str, Any]:
        """The arrays of an ``AgentInput`` in ``observation_space``."""
        out: dict[str, Any] = {
            "ego_status": self._ego.compute(agent_input)["ego_status"].numpy(),
            "driving_command": self._command.compute(agent_input)["driving_command"].numpy().astype(np.float32),
        }
        if self.cameras:
            current = agent_input.cameras[-1]
            out["cameras"] = {name: current[name].image for name in self.cameras}
        return out

    def action(self, action: np.ndarray) -> Trajectory | Controls:
        """The native action of an array in ``action_space``."""
        a = np.asarray(action, dtype=np.float32)
        if self.env.action_kind is ActionKind.TRAJECTORY:
            return Trajectory(a.reshape(-1, len(SE2Index)), DEFAULT_SAMPLING)
        return Controls(float(a[0]), float(a[1]))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode: the route from ``options``, the constructor, or drawn from ``seed``'s stream."""
        super().reset(seed=seed)
        options = dict(options or {})
        if self.route is not None:
            options.setdefault(ResetOption.ROUTE, self.route)
        options.setdefault(ResetOption.SENSOR_CONFIG, self.sensor_config)
        inner_seed = int(self.np_random.integers(2**31 - 1))
        obs, info = self.env.reset(seed=inner_seed, options=options)
        self.last_info = info
        return self.observation(obs), plain_info(info)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """One replanning step with an action array."""
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        self.last_info = info
        return self.observation(obs), float(reward), terminated, truncated, plain_info(info)

    def close(self) -> None:
        """Close the native env."""
        self.env.close()


#: Native info keys whose values are plain (numbers, arrays, None) and pass into the gymnasium info as they are.
PLAIN_KEYS = (InfoKey.TIME, InfoKey.ROUTE_COMPLETION, InfoKey.EGO_TRACE, InfoKey.SPEED_LIMIT, InfoKey.TRAFFIC_SPEED)


def plain_info(info: dict[str, Any]) -> dict[str, Any]:
    """The plain values of a native ``info`` by ``InfoKey`` name (see the module docstring)."""
    out = {key.value: info[key] for key in PLAIN_KEYS if key in info}
    if InfoKey.INFRACTIONS in info:
        out[InfoKey.INFRACTIONS.value] = [i.to_dict() for i in info[InfoKey.INFRACTIONS]]
    if InfoKey.TERMINATION in info:
        out[InfoKey.TERMINATION.value] = TerminationReason(info[InfoKey.TERMINATION]).value
    return out


def make_vector_env(
    num_envs: int,
    config: EmbeddedEnvConfig | None = None,
    sensor_config: SensorConfig | None = None,
    *,
    asynchronous: bool = False,
) -> gymnasium.vector.VectorEnv:
    """``num_envs`` embedded envs stepped together (``SyncVectorEnv``, or ``AsyncVectorEnv`` in processes).

    Finished episodes reset automatically (gymnasium's next-step autoreset), so one loop runs many episodes.
    """
    if num_envs < 1:
        raise ValueError(f"make_vector_env: num_envs must be >= 1, got {num_envs}")
    factories = [partial(EmbeddedGymEnv, config, sensor_config) for _ in range(num_envs)]
    if asynchronous:
        return gymnasium.vector.AsyncVectorEnv(factories)
    return gymnasium.vector.SyncVectorEnv(factories)
