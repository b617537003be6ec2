"""A small closed-loop env of the tests' own: the T-junction map, a kinematic ego, the suite's detectors.

The ego follows the plan exactly: at each 10 Hz tick it moves to the plan's pose interpolated at that time. Other
objects are parked cars (never moving). Infractions come from ``InfractionMonitor``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irl_vla.data.enums import BoundingBoxIndex, DrivingCommand
from irl_vla.data.geometry import absolute_to_relative, interpolate_poses, relative_to_absolute
from irl_vla.data.scene import AgentInput, Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory
from irl_vla.envs.env import ActionKind, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.monitor import InfractionMonitor, MonitorConfig
from irl_vla.envs.route import Route
from irl_vla.envs.tick import tick_from_frame
from irl_vla.envs.trace import TraceIndex
from tests.fixtures import build_t_junction

DT = 0.1
ROUTE_IDS = ["w_in", "rbc_w_e", "e_out"]


def controls_plan(controls: Controls, speed: float, wheel_base: float = 3.0) -> Trajectory:
    """The relative plan of holding ``controls`` from ``speed`` [m/s] (kinematic bicycle, 0.1 s Euler steps)."""
    pose, v, poses = np.zeros(3), speed, []
    for k in range(1, 41):
        v = max(0.0, v + controls.acceleration * DT)
        pose = pose + DT * np.array(
            [v * np.cos(pose[2]), v * np.sin(pose[2]), v / wheel_base * np.tan(controls.steering_angle)]
        )
        if k % 5 == 0:
            poses.append(pose.copy())
    return Trajectory(np.array(poses, dtype=np.float32))


class FakeEnv:
    """Routes ``clear`` (an empty road) and ``parked`` (a car parked in the ego's lane at x = -20 m).

    ``kinds``: the infraction kinds it detects and reports (``infraction_kinds``); None: all.
    """

    action_kind = ActionKind.TRAJECTORY
    step_interval = 0.5

    def __init__(self, speed: float = 8.0, time_limit: float = 20.0, kinds: list[str] | None = None) -> None:
        self.map = build_t_junction()
        self.speed, self.time_limit = speed, time_limit
        self.resets: list[tuple[int | None, dict[str, Any]]] = []
        self.kinds = kinds
        self.infraction_kinds = [k.value for k in InfractionKind] if kinds is None else kinds

    def _frame(self) -> Frame:
        boxes = np.array(self.parked, dtype=np.float64).reshape(-1, len(BoundingBoxIndex))
        if len(boxes):
            cols = [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]
            boxes[:, cols] = absolute_to_relative(boxes[:, cols], self.pose)
        n = len(boxes)
        annotations = Annotations(
            boxes, ["vehicle"] * n, np.zeros((n, 3)), [f"i{i}" for i in range(n)], [f"parked_{i}" for i in range(n)]
        )
        status = EgoStatus(
            self.pose.copy(),
            np.array([self.v, 0.0]),
            np.zeros(2),
            one_hot_command(DrivingCommand.STRAIGHT),
            in_global_frame=True,
        )
        token = f"{self.route_id}_{round(self.time / DT):06d}"
        return Frame(
            token,
            1_000_000 + round(self.time * 1e6),
            ROUTE_IDS,
            [("c_w_e_0", False)],
            annotations,
            status,
            instruction="go straight",
        )

    def _obs(self) -> AgentInput:
        frames = self.history[-4:]
        while len(frames) < 4:
            frames = [frames[0], *frames]
        frames = [
            Frame(
                f"{f.token}_{i}",
                f.timestamp - (3 - i) * 500_000,
                f.roadblock_ids,
                f.traffic_lights,
                f.annotations,
                f.ego_status,
            )
            for i, f in enumerate(frames)
        ]
        meta = SceneMetadata("fake", frames[-1].token, self.map.name, frames[-1].token, 4, 0)
        return Scene(meta, frames, self.map).get_agent_input()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = options or {}
        self.resets.append((seed, options))
        self.route_id = str(options[ResetOption.ROUTE])
        if self.route_id not in ("clear", "parked"):
            raise ValueError(f"FakeEnv: no route {self.route_id!r}")
        assert isinstance(options[ResetOption.SENSOR_CONFIG], SensorConfig)
        self.parked = [[-20.0, -1.75, 0.0, 4.5, 2.0, 1.5, 0.0]] if self.route_id == "parked" else []
        self.pose, self.v, self.time = np.array([-55.0, -1.75, 0.0]), self.speed, 0.0
        x = np.arange(-55.0, 41.0)
        self.route = Route(
            self.route_id, np.stack([x, np.full_like(x, -1.75), np.zeros_like(x)], 1), ROUTE_IDS, self.map.name
        )
        self.monitor = InfractionMonitor(self.route, self.map, MonitorConfig(kinds=self.kinds))
        self.history = [self._frame()]
        return self._obs(), {
            InfoKey.ROUTE: self.route,
            InfoKey.MAP: self.map,
            InfoKey.FRAME: self.history[-1],
            InfoKey.TIME: 0.0,
        }

    def step(self, action: Trajectory | Controls):
        if self.action_kind is ActionKind.CONTROLS:
            assert isinstance(action, Controls)
            action = controls_plan(action, self.v)
        assert isinstance(action, Trajectory)
        origin, start = self.pose.copy(), self.time
        times = np.concatenate([[0.0], action.trajectory_sampling.times])
        poses = np.concatenate([np.zeros((1, 3)), action.poses.astype(np.float64)])
        trace, events, reason = [], [], None
        for k in range(1, round(self.step_interval / DT) + 1):
            rel = interpolate_poses(times, poses, np.array([k * DT]))[0]
            new = relative_to_absolute(rel[None], origin)[0]
            self.v = float(np.hypot(*(new[:2] - self.pose[:2]))) / DT
            self.pose, self.time = new, round(start + k * DT, 9)
            row = np.zeros(len(TraceIndex))
            row[TraceIndex.TIME] = self.time
            row[[TraceIndex.X, TraceIndex.Y, TraceIndex.HEADING]] = self.pose
            row[TraceIndex.VELOCITY_X] = self.v
            trace.append(row)
            new_events, reason = self.monitor.update(tick_from_frame(self._frame(), self.time))
            events += new_events
            if reason is not None:
                break
        self.history.append(self._frame())
        info = {
            InfoKey.FRAME: self.history[-1],
            InfoKey.TIME: self.time,
            InfoKey.EGO_TRACE: np.array(trace),
            InfoKey.INFRACTIONS: events,
            InfoKey.ROUTE_COMPLETION: self.monitor.completion,
            InfoKey.TRAFFIC_SPEED: None,
        }
        truncated = reason is None and self.time >= self.time_limit - 1e-9
        if truncated:
            reason = TerminationReason.TIME_LIMIT
        if reason is not None:
            info[InfoKey.TERMINATION] = reason
        return self._obs(), 0.0, reason is not None and not truncated, truncated, info

    def close(self) -> None:
        pass
