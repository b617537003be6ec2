"""The feature and target builders whose tensors a reward model reads, and batching them from scenes.

The reward model reads the ego status and driving command (feature builders, from the ``AgentInput``), the
LiDAR BEV (a feature builder) and, when its config says so, the privileged map raster and annotated boxes,
which come from target builders (they read the whole ``Scene``). ``RewardInputBuilders`` runs both kinds on a
scene and batches them into the dict ``RewardWorldModel.encode_scene`` takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from irl_vla.data.features.builder import FeatureBuilder, TargetBuilder, merge_sensor_configs
from irl_vla.data.features.registry import build_feature_builders, build_target_builders
from irl_vla.data.scene import Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.models.reward.config import RewardInputs, RewardModelConfig


def raster_grid(inputs: RewardInputs) -> dict[str, float]:
    """The builders' ``grid`` parameters of the reward model's rasters.

    Raises:
        ValueError: when the range and cell counts do not give square cells.
    """
    x_min, x_max, y_min, y_max = inputs.bev_range
    resolution = (x_max - x_min) / inputs.bev_height
    if abs((y_max - y_min) / inputs.bev_width - resolution) > 1e-9:
        raise ValueError(f"reward model inputs: bev_range {inputs.bev_range} does not give square cells")
    return {"x_min": x_min, "x_max": x_max, "y_min": y_min, "y_max": y_max, "resolution": resolution}


def reward_builder_params(cfg: RewardModelConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Feature builders and (privileged) target builders, name -> parameters, for the model's inputs."""
    inp = cfg.inputs
    grid = raster_grid(inp)
    features: dict[str, Any] = {"ego_status": {"num_history_frames": inp.history_frames}, "driving_command": {}}
    if inp.use_lidar:
        first = inp.history_frames - inp.lidar_frames
        features["lidar_bev"] = {"frames": list(range(first, inp.history_frames)), "grid": grid}
    privileged: dict[str, Any] = {}
    if inp.use_map:
        privileged["bev_semantic_map"] = {"grid": grid}
    if inp.use_agents:
        privileged["agents"] = {"max_agents": inp.max_agents, "grid": grid}
    if inp.use_agent_futures:
        privileged["agent_futures"] = {"max_agents": inp.max_agents, "grid": grid, "num_poses": inp.num_poses}
    if inp.use_red_lights:
        privileged["red_lights"] = {"grid": grid, "num_poses": inp.num_poses}
    return features, privileged


@dataclass
class RewardInputBuilders:
    """The builders of a reward model's inputs.

    Attributes:
        features: builders of the ``AgentInput`` (sensors, ego status, command).
        privileged: builders of the whole scene (map raster, annotated boxes); empty for a sensor-only model.
    """

    features: list[FeatureBuilder]
    privileged: list[TargetBuilder]

    @classmethod
    def from_params(cls, features: dict[str, Any], privileged: dict[str, Any]) -> RewardInputBuilders:
        """Build them from ``reward_builder_params``' dicts."""
        return cls(build_feature_builders(features, "features"), build_target_builders(privileged, "privileged"))

    def sensor_config(self) -> SensorConfig:
        """The sensors the feature builders read (ask the scene source for these)."""
        return merge_sensor_configs([b.sensor_config() for b in self.features])

    def compute(self, scene: Scene) -> dict[str, Tensor]:
        """One scene's tensors (no batch axis); the scene must carry the sensors ``sensor_config`` asks for."""
        agent_input = scene.get_agent_input()
        where = f"scene {scene.token}"
        out: dict[str, Tensor] = {}
        for b in self.features:
            out.update(b.check(b.compute(agent_input), where))
        for t in self.privileged:
            out.update(t.check(t.compute(scene), where))
        return out

    def batch(self, scenes: Sequence[Scene]) -> dict[str, Tensor]:
        """The tensors of ``scenes`` stacked on a leading batch axis."""
        samples = [self.compute(s) for s in scenes]
        return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
