"""Tiny configs and synthetic batches for the VLA tests (small images and grids so every test is fast)."""

from __future__ import annotations

import torch

from irl_vla.data.enums import DrivingCommand, MetaAction
from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.data.features.targets import AGENT_CLASSES, IGNORE_INDEX
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.models.vla.config import VLAConfig, load_model_config
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import compute_normalization

SMALL_INPUTS = {
    "num_cameras": 2,
    "image_height": 32,
    "image_width": 64,
    "bev_height": 32,
    "bev_width": 32,
    "max_instruction_tokens": 8,
    "max_agents": 5,
}


def tiny_config(**overrides: object) -> VLAConfig:
    """The shipped ``tiny`` size on small inputs (and any further overrides, nested dicts)."""
    merged: dict = {"inputs": SMALL_INPUTS, "language": {"max_target_tokens": 10}, "planner": {"num_anchors": 4}}
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return load_model_config("tiny", merged)


def synthetic_batch(cfg: VLAConfig, batch: int, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Random features and targets of the shapes ``cfg`` expects; the expert trajectory follows the command."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.inputs
    n, vocab, lt = s.num_cameras, cfg.language.vocab_size, cfg.language.max_target_tokens
    command = torch.randint(0, len(DrivingCommand), (batch,), generator=g)
    speed = 2 + 8 * torch.rand(batch, generator=g)  # [m/s]
    ego = torch.randn(batch, s.history_frames, 7, generator=g)
    ego[:, :, 3] = speed[:, None]
    times = 0.5 * torch.arange(1, s.num_poses + 1)
    curvature = (command.float() - 1) * -0.03  # left turns left
    x = speed[:, None] * times
    traj = torch.stack([x, 0.5 * curvature[:, None] * x**2, curvature[:, None] * x], dim=-1)  # (B, T, 3)
    intrinsics = torch.tensor([[30.0, 0, s.image_width / 2], [0, 30.0, s.image_height / 2], [0, 0, 1]])
    to_ego = torch.eye(4).repeat(n, 1, 1)
    to_ego[:, :3, :3] = torch.tensor([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # OpenCV camera looking forward
    mask = torch.ones(batch, s.max_instruction_tokens, dtype=torch.bool)
    mask[:, s.max_instruction_tokens // 2 :] = torch.rand(batch, 1, generator=g) > 0.5
    agent_mask = torch.rand(batch, s.max_agents, generator=g) > 0.4
    classes = torch.randint(0, len(AGENT_CLASSES), (batch, s.max_agents), generator=g)
    features = {
        "ego_status": ego,
        "driving_command": torch.nn.functional.one_hot(command, len(DrivingCommand)).float(),
        "camera_images": torch.randint(
            0, 256, (batch, s.camera_frames, n, 3, s.image_height, s.image_width), generator=g, dtype=torch.uint8
        ),
        "camera_intrinsics": intrinsics.expand(batch, n, 3, 3).clone(),
        "camera_to_lidar": to_ego.expand(batch, n, 4, 4).clone(),
        "lidar_bev": torch.rand(batch, s.lidar_frames, s.lidar_channels, s.bev_height, s.bev_width, generator=g),
        "instruction_tokens": torch.randint(4, vocab, (batch, s.max_instruction_tokens), generator=g) * mask,
        "instruction_mask": mask,
    }
    target_mask = torch.ones(batch, lt, dtype=torch.bool)
    target_mask[:, lt - 3 :] = False
    targets = {
        "trajectory": traj,
        "agent_states": torch.randn(batch, s.max_agents, 7, generator=g) * 5 * agent_mask[..., None],
        "agent_classes": classes.masked_fill(~agent_mask, IGNORE_INDEX),
        "agent_mask": agent_mask,
        "bev_semantic_map": torch.randint(0, len(BevSemanticClass), (batch, s.bev_height, s.bev_width), generator=g),
        "meta_action": torch.randint(0, len(MetaAction), (batch,), generator=g),
        "lm_target_tokens": torch.randint(4, vocab, (batch, lt), generator=g) * target_mask,
        "lm_target_mask": target_mask,
    }
    return features, targets


def ready_model(cfg: VLAConfig, batches: list[tuple[dict, dict]], seed: int = 0) -> VLAModel:
    """A model with normalisation statistics and anchors computed from ``batches``."""
    torch.manual_seed(seed)
    model = VLAModel(cfg)
    model.set_normalization(compute_normalization({**f, **t} for f, t in batches))
    trajectories = torch.cat([t["trajectory"] for _, t in batches])
    model.set_anchors(compute_anchors(trajectories, cfg.planner.num_anchors, seed=seed))
    return model
