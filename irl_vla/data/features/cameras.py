"""Camera features: the rig's images at chosen history frames, with their calibrations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from irl_vla.data.features.builder import FeatureBuilder, TensorSpec
from irl_vla.data.scene import AgentInput
from irl_vla.data.sensors import SensorConfig

#: The embedded world's default rig (``RigConfig``), left to right.
DEFAULT_CAMERAS: tuple[str, ...] = ("cam_l0", "cam_f0", "cam_r0")


@dataclass
class CameraBuilder(FeatureBuilder):
    """Images of ``cameras`` at history indices ``frames``, resized to ``height`` x ``width``.

    Images stay ``uint8`` (normalisation statistics belong to the model and its checkpoint); an image of another
    size is resized (bilinear) and its intrinsics scaled to match.

    Attributes:
        cameras: camera names, in output order.
        frames: history indices (0 = oldest, ``num_history_frames - 1`` = current).
        height: output image height [px].
        width: output image width [px].
    """

    name: ClassVar[str] = "cameras"
    version: ClassVar[int] = 1
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    frames: tuple[int, ...] = (3,)
    height: int = 144
    width: int = 256

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        self.frames = tuple(self.frames)
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"CameraBuilder.cameras: expected distinct camera names, got {list(self.cameras)}")
        if not self.frames or any(i < 0 for i in self.frames):
            raise ValueError(f"CameraBuilder.frames: expected history indices >= 0, got {list(self.frames)}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"CameraBuilder: image size must be at least 8 x 8 px, got {self.height} x {self.width}")

    def specs(self) -> dict[str, TensorSpec]:
        """Images ``(T, N, C, H, W)``, intrinsics ``(N, D, D)`` (D = 3), camera-to-LiDAR transforms (D = 4)."""
        return {
            "camera_images": TensorSpec(("T", "N", "C", "H", "W"), torch.uint8, "RGB per frame and camera"),
            "camera_intrinsics": TensorSpec(
                ("N", "D", "D"), torch.float32, "pinhole matrices [px] (resized)", sizes={"D": 3}
            ),
            "camera_to_lidar": TensorSpec(
                ("N", "D", "D"), torch.float32, "homogeneous camera -> LiDAR transforms", sizes={"D": 4}
            ),
        }

    def dims(self) -> dict[str, int]:
        """T frames, N cameras, C = 3 colour channels, H x W pixels."""
        return {"T": len(self.frames), "N": len(self.cameras), "C": 3, "H": self.height, "W": self.width}

    def sensor_config(self) -> SensorConfig:
        """The cameras at the chosen history frames."""
        return SensorConfig(cameras={name: list(self.frames) for name in self.cameras})

    def compute(self, agent_input: AgentInput) -> dict[str, torch.Tensor]:
        """Stack the images (resized where needed) and calibrations."""
        n_hist = len(agent_input.cameras)
        images = np.empty((len(self.frames), len(self.cameras), 3, self.height, self.width), dtype=np.uint8)
        intrinsics = np.empty((len(self.cameras), 3, 3), dtype=np.float32)
        to_lidar = np.zeros((len(self.cameras), 4, 4), dtype=np.float32)
        for t, index in enumerate(self.frames):
            if index >= n_hist:
                raise ValueError(f"{self.name}: history index {index} asked, the agent input has {n_hist} frames")
            frame = agent_input.cameras[index]
            for n, name in enumerate(self.cameras):
                camera = frame.get(name)
                if camera is None or camera.image is None:
                    raise ValueError(f"{self.name}: camera {name} is not loaded at history index {index}")
                image = camera.image
                scale_x, scale_y = self.width / image.shape[1], self.height / image.shape[0]
                if (scale_x, scale_y) != (1.0, 1.0):
                    image = np.asarray(Image.fromarray(image).resize((self.width, self.height), Image.BILINEAR))
                images[t, n] = image.transpose(2, 0, 1)
                if t == len(self.frames) - 1:  # calibrations of the last listed frame
                    cal = camera.calibration
                    k = np.array(cal.intrinsics, dtype=np.float64)
                    k[0] *= scale_x
                    k[1] *= scale_y
                    intrinsics[n] = k
                    to_lidar[n, :3, :3] = cal.sensor2lidar_rotation
                    to_lidar[n, :3, 3] = cal.sensor2lidar_translation
                    to_lidar[n, 3, 3] = 1.0
        return {
            "camera_images": torch.from_numpy(images),
            "camera_intrinsics": torch.from_numpy(intrinsics),
            "camera_to_lidar": torch.from_numpy(to_lidar),
        }
