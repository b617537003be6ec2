"""Synthetic batches of the shapes a ``VLAConfig`` expects (benchmarks and tests; no data needed).

Inputs are random but well-formed (uint8 images, a forward-looking pinhole rig, one-hot commands, masked
instruction padding); the expert trajectory is a constant-speed arc whose curvature follows the driving command,
so a model can learn it from the inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from irl_vla.data.enums import DrivingCommand, MetaAction, SE2Index
from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.data.features.targets import AGENT_CLASSES, IGNORE_INDEX, AgentStateIndex
from irl_vla.models.vla.config import FeatureKey, TargetKey, VLAConfig

#: Rotation from OpenCV camera axes (x right, y down, z forward) to the ego frame (x forward, y left, z up).
CAMERA_TO_EGO_ROTATION = ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))

#: Curvature of the synthetic expert per unit of command offset from straight [1/m].
CURVATURE_PER_COMMAND = 0.03


def synthetic_batch(cfg: VLAConfig, batch: int, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Features and targets ``(features, targets)`` for ``batch`` samples, seeded."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.inputs
    n, vocab, lt = s.num_cameras, cfg.language.vocab_size, cfg.language.max_target_tokens
    command = torch.randint(0, len(DrivingCommand), (batch,), generator=g)
    speed = 2 + 8 * torch.rand(batch, generator=g)  # [m/s]
    ego = torch.randn(batch, s.history_frames, len(EgoStatusIndex), generator=g)
    ego[:, :, EgoStatusIndex.VELOCITY_X] = speed[:, None]
    x = speed[:, None] * 0.5 * torch.arange(1, s.num_poses + 1)  # (B, T) [m] at 0.5 s
    curvature = (command.float() - DrivingCommand.STRAIGHT) * -CURVATURE_PER_COMMAND  # left is positive
    trajectory = torch.empty(batch, s.num_poses, len(SE2Index))
    trajectory[..., SE2Index.X] = x
    trajectory[..., SE2Index.Y] = 0.5 * curvature[:, None] * x**2
    trajectory[..., SE2Index.HEADING] = curvature[:, None] * x
    focal = float(s.image_width) / 2
    intrinsics = torch.tensor([[focal, 0, s.image_width / 2], [0, focal, s.image_height / 2], [0, 0, 1]])
    to_ego = torch.eye(4).repeat(n, 1, 1)
    to_ego[:, :3, :3] = torch.tensor(CAMERA_TO_EGO_ROTATION)
    mask = torch.ones(batch, s.max_instruction_tokens, dtype=torch.bool)
    mask[:, s.max_instruction_tokens // 2 :] = torch.rand(batch, 1, generator=g) > 0.5
    agent_mask = torch.rand(batch, s.max_agents, generator=g) > 0.4
    classes = torch.randint(0, len(AGENT_CLASSES), (batch, s.max_agents), generator=g)
    images = torch.randint(
        0, 256, (batch, s.camera_frames, n, 3, s.image_height, s.image_width), generator=g, dtype=torch.uint8
    )
    features = {
        FeatureKey.EGO_STATUS.value: ego,
        FeatureKey.DRIVING_COMMAND.value: torch.nn.functional.one_hot(command, len(DrivingCommand)).float(),
        FeatureKey.CAMERA_IMAGES.value: images,
        FeatureKey.CAMERA_INTRINSICS.value: intrinsics.expand(batch, n, 3, 3).clone(),
        FeatureKey.CAMERA_TO_LIDAR.value: to_ego.expand(batch, n, 4, 4).clone(),
        FeatureKey.LIDAR_BEV.value: torch.rand(
            batch, s.lidar_frames, s.lidar_channels, s.bev_height, s.bev_width, generator=g
        ),
        FeatureKey.INSTRUCTION_TOKENS.value: torch.randint(4, vocab, (batch, s.max_instruction_tokens), generator=g)
        * mask,
        FeatureKey.INSTRUCTION_MASK.value: mask,
    }
    target_mask = torch.ones(batch, lt, dtype=torch.bool)
    target_mask[:, lt - 3 :] = False
    boxes = torch.randn(batch, s.max_agents, len(AgentStateIndex), generator=g) * 5 * agent_mask[..., None]
    targets = {
        TargetKey.TRAJECTORY.value: trajectory,
        TargetKey.AGENT_STATES.value: boxes,
        TargetKey.AGENT_CLASSES.value: classes.masked_fill(~agent_mask, IGNORE_INDEX),
        TargetKey.AGENT_MASK.value: agent_mask,
        TargetKey.BEV_SEMANTIC_MAP.value: torch.randint(
            0, len(BevSemanticClass), (batch, s.bev_height, s.bev_width), generator=g
        ),
        TargetKey.META_ACTION.value: torch.randint(0, len(MetaAction), (batch,), generator=g),
        TargetKey.LM_TARGET_TOKENS.value: torch.randint(4, vocab, (batch, lt), generator=g) * target_mask,
        TargetKey.LM_TARGET_MASK.value: target_mask,
    }
    route = cfg.route
    if route.enabled:  # the road ahead bends as the expert does; the far points of some samples are off the route
        arc = route.spacing * torch.arange(1, route.num_points + 1).expand(batch, -1)  # (B, P) [m]
        centreline = torch.stack([arc, 0.5 * curvature[:, None] * arc**2, curvature[:, None] * arc], dim=-1)
        reach = torch.randint(1, route.num_points + 1, (batch, 1), generator=g)
        targets[TargetKey.ROUTE_CENTERLINE.value] = centreline
        targets[TargetKey.ROUTE_CENTERLINE_MASK.value] = torch.arange(route.num_points) < reach  # (B, P)
    return features, targets
