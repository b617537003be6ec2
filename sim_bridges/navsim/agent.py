"""Any suite agent as a navsim agent (``AbstractAgent``, ``reference/navsim.md`` §3.1).

``navsim_agent(agent="constant_velocity", ...)`` returns an instance of a subclass of navsim's
``AbstractAgent`` that converts navsim's ``AgentInput`` to the suite's, asks the suite agent for its plan and
returns navsim's ``Trajectory``. navsim is imported when the function is called, never when this module is, so
the suite imports without navsim. navsim's scripts select it with the agent config
``configs/navsim/agent/irl_vla_agent.yaml`` (copy it into navsim's ``agent`` config group).

Conversion: navsim's ``EgoStatus`` fields match the suite's (poses relative to the current frame); its
``Cameras`` object has one attribute per camera, each with ``image`` (``None`` when not loaded) and the
calibration; ``Lidar.lidar_pc`` is the ``(6, N)`` cloud. navsim gives no instruction text, so the suite agent
reads one made from the driving command (``irl_vla.data.instruction.command_instruction``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from irl_vla.agents.agent import Agent
from irl_vla.agents.registry import agent_yaml, submittable_agent
from irl_vla.data.instruction import command_instruction
from irl_vla.data.scene import AgentInput, EgoStatus
from irl_vla.data.sensors import NAVSIM_CAMERA_NAMES, Camera, CameraCalibration, Lidar, SensorConfig


def _float(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(shape)


def agent_input_from_navsim(navsim_input: Any) -> AgentInput:
    """The suite's ``AgentInput`` of a navsim ``AgentInput`` (duck-typed: navsim need not be importable)."""
    statuses = [
        EgoStatus(
            ego_pose=_float(s.ego_pose, (3,)),
            ego_velocity=_float(s.ego_velocity, (2,)),
            ego_acceleration=_float(s.ego_acceleration, (2,)),
            driving_command=np.asarray(s.driving_command, dtype=np.int64).reshape(-1),
            in_global_frame=False,
        )
        for s in navsim_input.ego_statuses
    ]
    cameras = []
    for frame_cameras in navsim_input.cameras:
        frame: dict[str, Camera] = {}
        for name in NAVSIM_CAMERA_NAMES:
            cam = getattr(frame_cameras, name, None)
            if cam is None or getattr(cam, "image", None) is None:
                continue
            calibration = CameraCalibration(
                _float(cam.sensor2lidar_rotation, (3, 3)),
                _float(cam.sensor2lidar_translation, (3,)),
                _float(cam.intrinsics, (3, 3)),
                np.zeros(5) if getattr(cam, "distortion", None) is None else _float(cam.distortion, (-1,)),
            )
            frame[name] = Camera(calibration, np.asarray(cam.image, dtype=np.uint8))
        cameras.append(frame)
    lidars = []
    for lidar in navsim_input.lidars:
        pc = getattr(lidar, "lidar_pc", None)
        lidars.append(None if pc is None else Lidar(np.asarray(pc, dtype=np.float32)))
    return AgentInput(statuses, cameras, lidars, command_instruction(statuses[-1].command))


def navsim_sensor_config(config: SensorConfig, sensor_config_cls: type) -> Any:
    """Navsim's ``SensorConfig`` (one field per camera and ``lidar_pc``) of the suite's."""
    fields = {name: config.cameras.get(name, False) for name in NAVSIM_CAMERA_NAMES}
    return sensor_config_cls(**fields, lidar_pc=config.lidar_pc)


def navsim_agent(agent: str = "constant_velocity", **agent_kwargs: Any) -> Any:
    """A navsim ``AbstractAgent`` running the suite agent ``agent``.

    The agent gets its ``configs/agent/<agent>.yaml`` settings, with ``agent_kwargs`` overriding them.

    Raises:
        ImportError: when navsim is not installed.
        ValueError: for privileged suite agents (they read the suite's ``Scene``, which navsim does not give).
    """
    from navsim.agents.abstract_agent import AbstractAgent
    from navsim.common.dataclasses import SensorConfig as NavsimSensorConfig
    from navsim.common.dataclasses import Trajectory as NavsimTrajectory
    from nuplan.planning.simulation.trajectory.trajectory_sampling import TrajectorySampling

    inner = submittable_agent({**agent_yaml(agent), **agent_kwargs})

    class IrlVlaAgent(AbstractAgent):  # type: ignore[misc, valid-type]
        """A suite agent behind navsim's agent interface."""

        def __init__(self, suite_agent: Agent) -> None:
            s = suite_agent.trajectory_sampling
            self.sampling = TrajectorySampling(num_poses=s.num_poses, interval_length=s.interval_length)
            super().__init__(trajectory_sampling=self.sampling, requires_scene=False)
            self.suite_agent = suite_agent

        def name(self) -> str:
            return f"irl_vla_{self.suite_agent.name()}"

        def initialize(self) -> None:
            self.suite_agent.initialize()

        def get_sensor_config(self) -> Any:
            return navsim_sensor_config(self.suite_agent.get_sensor_config(), NavsimSensorConfig)

        def compute_trajectory(self, agent_input: Any, scene: Any = None) -> Any:
            plan = self.suite_agent.compute_trajectory(agent_input_from_navsim(agent_input))
            return NavsimTrajectory(np.asarray(plan.poses, dtype=np.float32), self.sampling)

    return IrlVlaAgent(inner)
