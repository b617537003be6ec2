"""The reward model's sub-scores for labelled candidates: each scene encoded once, all its candidates scored."""

from __future__ import annotations

import numpy as np
import torch

from irl_vla.data.source import SceneSource
from irl_vla.models.reward.checkpoint import LoadedRewardModel
from irl_vla.models.reward.heads import HeadKey


@torch.no_grad()
def predict_candidates(
    reward: LoadedRewardModel,
    source: SceneSource,
    tokens: np.ndarray,
    candidates: np.ndarray,
    batch_scenes: int = 4,
) -> np.ndarray:
    """Predicted sub-scores ``(N, K, S)`` of candidates ``(N, K, T, 3)`` of the scenes ``tokens`` ``(N,)``.

    Args:
        reward: the loaded reward model and its input builders.
        source: the scenes (with the sensors the builders ask for).
        tokens: scene tokens.
        candidates: relative plans by ``SE2Index`` [m, m, rad].
        batch_scenes: scenes encoded per forward pass.
    """
    if len(tokens) != len(candidates):
        raise ValueError(f"predict_candidates: {len(tokens)} tokens but {len(candidates)} candidate sets")
    if batch_scenes < 1:
        raise ValueError(f"predict_candidates: batch_scenes must be >= 1, got {batch_scenes}")
    model, builders = reward.model, reward.builders
    sensors = builders.sensor_config()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(tokens), batch_scenes):
        batch = [source.get_scene(str(t), sensors) for t in tokens[start : start + batch_scenes]]
        features = {k: v.to(device) for k, v in builders.batch(batch).items()}
        plans = torch.as_tensor(candidates[start : start + batch_scenes], dtype=torch.float32, device=device)
        scores = model.score_candidates(model.encode_scene(features), plans)[HeadKey.SUB_SCORES]  # (B, K, S)
        out.append(scores.float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)
