"""Tiny configs and synthetic batches for the VLA tests (small images and grids so every test is fast)."""

from __future__ import annotations

import torch

from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.models.vla.config import VLAConfig, load_model_config
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import compute_normalization
from irl_vla.models.vla.synthetic import synthetic_batch

__all__ = ["SMALL_INPUTS", "ready_model", "synthetic_batch", "tiny_config"]

SMALL_INPUTS = {
    "num_cameras": 2,
    "image_height": 32,
    "image_width": 64,
    "bev_height": 32,
    "bev_width": 32,
    "max_instruction_tokens": 8,
    "max_agents": 5,
}


#: A tiny transformers ViT vision-tower config (built locally, never downloaded).
TINY_VIT = {
    "model_type": "vit",
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "image_size": [32, 64],
    "patch_size": 16,
}


def tiny_config(**overrides: object) -> VLAConfig:
    """The shipped ``tiny`` size on small inputs (and any further overrides, nested dicts)."""
    merged: dict = {"inputs": SMALL_INPUTS, "language": {"max_target_tokens": 10}, "planner": {"num_anchors": 4}}
    for key, value in overrides.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return load_model_config("tiny", merged)


def ready_model(cfg: VLAConfig, batches: list[tuple[dict, dict]], seed: int = 0) -> VLAModel:
    """A model with normalisation statistics and anchors computed from ``batches``."""
    torch.manual_seed(seed)
    model = VLAModel(cfg)
    model.set_normalization(compute_normalization({**f, **t} for f, t in batches))
    trajectories = torch.cat([t["trajectory"] for _, t in batches])
    model.set_anchors(compute_anchors(trajectories, cfg.planner.num_modes, seed=seed))
    return model
