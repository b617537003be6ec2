"""The scene model: ego status, annotations, frames, scenes and the agent's view of a scene.

It mirrors NAVSIM's data classes (``reference/navsim.md`` §2.2) so the NAVSIM bridge is a thin conversion.
Every class validates shapes and finiteness on construction and names the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AGENT_CLASS_NAMES, BoundingBoxIndex, DrivingCommand, MetaAction, SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.sensors import Cameras, Lidar
from irl_vla.data.trajectory import Trajectory, TrajectorySampling
from irl_vla.data.validation import check_array, check_length

if TYPE_CHECKING:
    from irl_vla.data.map.map_api import Map

#: Time between logged frames [s] (2 Hz logs).
LOG_INTERVAL = 0.5


@dataclass
class EgoStatus:
    """Ego state of one frame (pose of the rear axle).

    Attributes:
        ego_pose: (x [m], y [m], heading [rad]) ``(3,)``; global in a ``Frame``, relative to the current
            frame in an ``AgentInput``.
        ego_velocity: (vx, vy) in the ego frame [m/s] ``(2,)``.
        ego_acceleration: (ax, ay) in the ego frame [m/s^2] ``(2,)``.
        driving_command: one-hot (left, straight, right, unknown) ``(4,)`` int.
        in_global_frame: whether ``ego_pose`` is global.
    """

    ego_pose: npt.NDArray[np.float64]
    ego_velocity: npt.NDArray[np.float64]
    ego_acceleration: npt.NDArray[np.float64]
    driving_command: npt.NDArray[np.int64]
    in_global_frame: bool = False

    def __post_init__(self) -> None:
        check_array(self.ego_pose, "EgoStatus.ego_pose", (len(SE2Index),))
        check_array(self.ego_velocity, "EgoStatus.ego_velocity", (2,))
        check_array(self.ego_acceleration, "EgoStatus.ego_acceleration", (2,))
        check_array(self.driving_command, "EgoStatus.driving_command", (len(DrivingCommand),), dtype_kind="iub")
        command = self.driving_command
        if int(np.sum(command)) != 1 or not np.all((command == 0) | (command == 1)):  # one-hot (isin: 10x slower)
            raise ValueError(f"EgoStatus.driving_command: expected one-hot, got {self.driving_command.tolist()}")

    @property
    def command(self) -> DrivingCommand:
        """The driving command as an enum member."""
        return DrivingCommand(int(np.argmax(self.driving_command)))


def one_hot_command(command: DrivingCommand) -> npt.NDArray[np.int64]:
    """One-hot driving command ``(4,)``."""
    out = np.zeros(len(DrivingCommand), dtype=np.int64)
    out[command] = 1
    return out


@dataclass
class Annotations:
    """Boxes of the other objects in one frame, in that frame's ego frame.

    Attributes:
        boxes: ``(N, 7)`` columns by ``BoundingBoxIndex`` [m], [rad].
        names: class name per box (``AgentClass`` values).
        velocity_3d: ``(N, 3)`` [m/s] in the ego frame.
        instance_tokens: per-box instance token.
        track_tokens: per-box track token, stable over a log.
    """

    boxes: npt.NDArray[np.float64]
    names: list[str]
    velocity_3d: npt.NDArray[np.float64]
    instance_tokens: list[str]
    track_tokens: list[str]

    def __post_init__(self) -> None:
        check_array(self.boxes, "Annotations.boxes", (None, len(BoundingBoxIndex)))
        n = len(self.boxes)
        check_array(self.velocity_3d, "Annotations.velocity_3d", (n, 3))
        check_length(self.names, "Annotations.names", n)
        check_length(self.instance_tokens, "Annotations.instance_tokens", n)
        check_length(self.track_tokens, "Annotations.track_tokens", n)
        unknown = sorted(set(self.names) - AGENT_CLASS_NAMES)
        if unknown:
            raise ValueError(f"Annotations.names: unknown class names {unknown}")

    @classmethod
    def empty(cls) -> Annotations:
        """Annotations with no boxes."""
        return cls(np.zeros((0, len(BoundingBoxIndex))), [], np.zeros((0, 3)), [], [])

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class Frame:
    """One logged frame (2 Hz).

    Attributes:
        token: unique frame token (16 hex characters for real frames).
        timestamp: [us].
        roadblock_ids: route as a sequence of roadblock (and roadblock-connector) ids.
        traffic_lights: ``(lane_connector_id, is_red)`` pairs.
        annotations: other objects.
        ego_status: ego state with a global pose.
        lidar: LiDAR point cloud, if loaded.
        cameras: camera images by name, if loaded.
        instruction: navigation instruction (``irl_vla.data.instruction``): the route's next manoeuvre and its
            distance, what a navigation system knows; the only language an agent reads.
        scene_description: what is on the road (lights, road users, obstacles, speed limit) in text; a
            supervision target of the language branch, never an agent input.
        meta_action: high-level decision label at this frame, if known (a supervision target).
    """

    token: str
    timestamp: int
    roadblock_ids: list[str]
    traffic_lights: list[tuple[str, bool]]
    annotations: Annotations
    ego_status: EgoStatus
    lidar: Lidar | None = None
    cameras: Cameras = field(default_factory=dict)
    instruction: str = ""
    scene_description: str = ""
    meta_action: MetaAction | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("Frame.token: empty token")
        if not self.ego_status.in_global_frame:
            raise ValueError(f"Frame.ego_status ({self.token}): pose must be in the global frame")


@dataclass
class SceneMetadata:
    """Identity and window of a scene (NAVSIM ``SceneMetadata``)."""

    log_name: str
    scene_token: str
    map_name: str
    initial_token: str
    num_history_frames: int
    num_future_frames: int
    corresponding_original_scene: str | None = None
    corresponding_original_initial_token: str | None = None

    def __post_init__(self) -> None:
        if self.num_history_frames < 1:
            raise ValueError(f"SceneMetadata.num_history_frames: expected >= 1, got {self.num_history_frames}")
        if self.num_future_frames < 0:
            raise ValueError(f"SceneMetadata.num_future_frames: expected >= 0, got {self.num_future_frames}")

    @property
    def is_synthetic(self) -> bool:
        """Whether the scene was re-simulated from another scene (NAVSIM stage-2 scenes)."""
        return self.corresponding_original_scene is not None


@dataclass
class AgentInput:
    """What an agent sees: history frames oldest first, the last is the current frame.

    Ego poses are relative to the current frame (the current pose is the origin). ``instruction`` is the
    current frame's navigation instruction. Nothing here is a fact about the scene (no annotations, light
    states, map, scene description or meta-action): those are targets or privileged inputs, read from the
    ``Scene``.
    """

    ego_statuses: list[EgoStatus]
    cameras: list[Cameras]
    lidars: list[Lidar | None]
    instruction: str = ""

    def __post_init__(self) -> None:
        n = len(self.ego_statuses)
        if n == 0:
            raise ValueError("AgentInput.ego_statuses: at least the current frame is required")
        check_length(self.cameras, "AgentInput.cameras", n)
        check_length(self.lidars, "AgentInput.lidars", n)
        if any(s.in_global_frame for s in self.ego_statuses):
            raise ValueError("AgentInput.ego_statuses: poses must be relative to the current frame")

    @property
    def current(self) -> EgoStatus:
        """Ego status of the current frame."""
        return self.ego_statuses[-1]


@dataclass
class Scene:
    """A window of frames around a current frame, with its map.

    ``frames[num_history_frames - 1]`` is the current frame; earlier frames are history, later ones future.
    """

    scene_metadata: SceneMetadata
    frames: list[Frame]
    map_api: Map | None = None

    def __post_init__(self) -> None:
        meta = self.scene_metadata
        check_length(self.frames, "Scene.frames", meta.num_history_frames + meta.num_future_frames)
        stamps = [f.timestamp for f in self.frames]
        if any(b <= a for a, b in pairwise(stamps)):
            raise ValueError(f"Scene.frames ({meta.scene_token}): timestamps must increase")
        if self.current_frame.token != meta.initial_token:
            raise ValueError(
                f"Scene.scene_metadata.initial_token: {meta.initial_token!r} is not the current frame "
                f"token {self.current_frame.token!r}"
            )

    @property
    def token(self) -> str:
        """The scene token: the token of the current frame."""
        return self.scene_metadata.initial_token

    @property
    def current_index(self) -> int:
        """Index of the current frame in ``frames``."""
        return self.scene_metadata.num_history_frames - 1

    @property
    def current_frame(self) -> Frame:
        """The current frame."""
        return self.frames[self.current_index]

    def _relative_poses(self, frames: list[Frame]) -> npt.NDArray[np.float64]:
        origin = self.current_frame.ego_status.ego_pose
        poses = np.stack([f.ego_status.ego_pose for f in frames])  # (T, 3)
        return absolute_to_relative(poses, origin)

    def get_future_trajectory(self, num_trajectory_frames: int | None = None) -> Trajectory:
        """The logged future of the ego, relative to the current frame, at the log interval."""
        n = self.scene_metadata.num_future_frames if num_trajectory_frames is None else num_trajectory_frames
        if not 1 <= n <= self.scene_metadata.num_future_frames:
            raise ValueError(
                f"Scene.get_future_trajectory: {n} frames requested, scene {self.token} has "
                f"{self.scene_metadata.num_future_frames}"
            )
        start = self.current_index + 1
        poses = self._relative_poses(self.frames[start : start + n])
        return Trajectory(poses.astype(np.float32), TrajectorySampling(num_poses=n, interval_length=LOG_INTERVAL))

    def get_history_trajectory(self, num_trajectory_frames: int | None = None) -> Trajectory:
        """Logged history poses (current included, oldest first) relative to the current frame."""
        n = self.scene_metadata.num_history_frames if num_trajectory_frames is None else num_trajectory_frames
        if not 1 <= n <= self.scene_metadata.num_history_frames:
            raise ValueError(
                f"Scene.get_history_trajectory: {n} frames requested, scene {self.token} has "
                f"{self.scene_metadata.num_history_frames}"
            )
        frames = self.frames[self.current_index - n + 1 : self.current_index + 1]
        poses = self._relative_poses(frames)
        return Trajectory(poses.astype(np.float32), TrajectorySampling(num_poses=n, interval_length=LOG_INTERVAL))

    def get_agent_input(self) -> AgentInput:
        """The history frames as an agent sees them (no map, no annotations, relative poses)."""
        history = self.frames[: self.current_index + 1]
        rel = self._relative_poses(history)
        statuses = [
            EgoStatus(
                ego_pose=pose,
                ego_velocity=f.ego_status.ego_velocity,
                ego_acceleration=f.ego_status.ego_acceleration,
                driving_command=f.ego_status.driving_command,
                in_global_frame=False,
            )
            for pose, f in zip(rel, history, strict=True)
        ]
        return AgentInput(
            ego_statuses=statuses,
            cameras=[f.cameras for f in history],
            lidars=[f.lidar for f in history],
            instruction=self.current_frame.instruction,
        )
