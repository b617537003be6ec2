"""Training forwards under bf16 autocast, as the trainer runs them on a CUDA device (here on the CPU's autocast).

The trainer runs the network's forward under ``torch.autocast(bf16)`` and the loss in fp32 on the predictions cast
back (``irl_vla.training.trainer``); a forward that mixes bf16 and fp32 tensors in an in-place write failed only on
a GPU before (the VLA's box decoding: "Index put requires the source and destination dtypes match").
"""

from __future__ import annotations

import math

import torch

from tests.models.reward import test_reward_model as rwm
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config


def _fp32(predictions: dict) -> dict:
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in predictions.items()}


def test_vla_training_forward_and_loss_under_bf16_autocast() -> None:
    cfg = tiny_config()
    features, targets = synthetic_batch(cfg, 4, 0)
    model = ready_model(cfg, [(features, targets)]).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predictions = model(features, targets, generator=torch.Generator().manual_seed(0))
    terms = model.compute_loss(_fp32(predictions), targets)
    assert math.isfinite(float(terms["loss"]))
    terms["loss"].backward()


def test_reward_model_training_forward_and_loss_under_bf16_autocast() -> None:
    m = rwm.model(train_candidates=3).train()
    k = 6
    sub = torch.rand(rwm.B, k, rwm.NUM_SUB_SCORES).round()
    sources = torch.full((rwm.B, k), int(rwm.CandidateSource.VOCABULARY))
    sources[:, 0] = rwm.CandidateSource.EXPERT
    targets = {
        rwm.RewardTarget.CANDIDATES: torch.randn(rwm.B, k, rwm.T, 3),
        rwm.RewardTarget.SUB_SCORES: sub,
        rwm.RewardTarget.EPDMS: torch.rand(rwm.B, k),
        rwm.RewardTarget.SOURCES: sources,
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(rwm.features(), targets, generator=torch.Generator().manual_seed(1))
    terms = m.compute_loss(_fp32(out), targets)
    assert math.isfinite(float(terms["loss"]))
    terms["loss"].backward()
