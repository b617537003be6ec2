"""Lateral balance: per-scene weights by the expert plan's sideways end, and the weighted, resumable data order."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import torch

from irl_vla.common.checkpoint import ConfigMismatchError, load_checkpoint
from irl_vla.data.split import SceneLoader
from irl_vla.training import trainer
from irl_vla.training.balance import lateral_balance_weights
from irl_vla.training.il import run_il
from irl_vla.training.policy import checkpoint_dirs
from irl_vla.training.trainer import Processes, ResumableSampler
from tests.training.conftest import il_config, model_doc


def _plans(lateral_ends: list[float]) -> torch.Tensor:
    """Straight-ahead plans (N, 8, 3) whose last pose ends ``lateral_ends`` sideways [m]."""
    plans = torch.zeros(len(lateral_ends), 8, 3)
    plans[:, :, 0] = torch.linspace(1.0, 8.0, 8)
    plans[:, -1, 1] = torch.tensor(lateral_ends)
    return plans


def test_weights_move_the_draws_from_straight_plans_to_the_rare_buckets() -> None:
    ends = [0.0] * 80 + [-2.0] * 10 + [4.0] * 6 + [-9.0] * 4  # 80 straight, 10 bends, 6 lane changes, 4 turns
    uniform = lateral_balance_weights(_plans(ends), [1.0, 3.0, 6.0], 0.0)
    assert uniform.counts == (80, 10, 6, 4)
    assert torch.allclose(uniform.weights, torch.ones(100))
    assert uniform.shares == pytest.approx((0.8, 0.1, 0.06, 0.04))
    even = lateral_balance_weights(_plans(ends), [1.0, 3.0, 6.0], 1.0)
    assert even.shares == pytest.approx((0.25, 0.25, 0.25, 0.25))
    assert even.weights.mean().item() == pytest.approx(1.0)
    assert even.weights[-1] > even.weights[80] > even.weights[0]  # the rarer the bucket, the heavier its scenes
    half = lateral_balance_weights(_plans(ends), [1.0, 3.0, 6.0], 0.5)
    assert 0.25 < half.shares[0] < 0.8 and half.shares[3] > 0.04
    assert "3-6 m: 6 scenes" in half.summary()


def test_bad_balance_settings_are_refused() -> None:
    plans = _plans([0.0, 2.0])
    with pytest.raises(ValueError, match="positive and increasing"):
        lateral_balance_weights(plans, [3.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="power must be >= 0"):
        lateral_balance_weights(plans, [1.0], -1.0)
    with pytest.raises(ValueError, match=r"expected \(N, T, 3\)"):
        lateral_balance_weights(plans[:0], [1.0], 0.5)
    with pytest.raises(ValueError, match=r"ILConfig\.lateral_edges: expected positive, increasing"):
        il_config(Path("."), "x", lateral_edges=[3.0, 1.0])  # refused before any work


def _order(weights: torch.Tensor | None, epoch: int, skip: int = 0, rank: int = 0, world: int = 1) -> list[int]:
    sampler = ResumableSampler(
        list(range(len(weights) if weights is not None else 10)), Processes(rank, world), 3, weights
    )
    sampler.start(epoch, skip)
    return list(sampler)


def test_weighted_order_is_seeded_resumable_shared_by_ranks_and_follows_the_weights() -> None:
    weights = torch.tensor([0.0, 1.0, 1.0, 8.0] + [1.0] * 6)
    first = _order(weights, epoch=0)
    assert len(first) == 10 and first == _order(weights, epoch=0)
    assert first != _order(weights, epoch=1)
    assert _order(weights, epoch=0, skip=4) == first[4:]  # a resumed epoch continues the same order
    assert sorted(_order(weights, 0, rank=0, world=2) + _order(weights, 0, rank=1, world=2)) == sorted(first)
    drawn = Counter(i for epoch in range(200) for i in _order(weights, epoch))
    assert drawn[0] == 0  # a zero weight is never drawn
    assert drawn[3] / drawn[1] == pytest.approx(8.0, rel=0.25)
    with pytest.raises(ValueError, match="expected 10 finite, non-negative weights"):
        ResumableSampler(list(range(10)), Processes(0, 1), 0, torch.ones(9))
    with pytest.raises(ValueError, match="every weight is 0"):
        ResumableSampler(list(range(10)), Processes(0, 1), 0, torch.zeros(10))


def test_a_balanced_run_resumes_to_the_uninterrupted_weights_and_records_its_balance(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = model_doc("ego_mlp")
    balance = {"lateral_balance": 0.5, "lateral_edges": [0.05, 0.5], "batch_size": 1}  # 4 steps an epoch
    whole = run_il(il_config(split_root, str(tmp_path / "whole"), max_steps=5, **balance), doc, source)
    plain = run_il(il_config(split_root, str(tmp_path / "plain"), max_steps=5, batch_size=1), doc, source)
    a, b = load_checkpoint(whole), load_checkpoint(plain)
    assert a.config["train"]["lateral_balance"] == 0.5 and "lateral_balance" not in b.config["train"]
    assert not all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)  # another data order

    real = trainer.Trainer._train_step

    def dies_at_step_4(self: trainer.Trainer, batch: object) -> dict[str, float]:
        if self.step == 3:
            raise KeyboardInterrupt
        return real(self, batch)

    killed = il_config(split_root, str(tmp_path / "killed"), max_steps=5, **balance)  # resumed mid-epoch
    with monkeypatch.context() as m:
        m.setattr(trainer.Trainer, "_train_step", dies_at_step_4)
        with pytest.raises(KeyboardInterrupt):
            run_il(killed, doc, source)
    assert [p.name for p in checkpoint_dirs(killed.output_dir)] == ["step_0000002"]
    resumed = load_checkpoint(run_il(killed, doc, source)).weights
    assert all(torch.equal(a.weights[k], resumed[k]) for k in resumed)
    with pytest.raises(ConfigMismatchError, match=r"train\.lateral_balance"):
        run_il(
            il_config(split_root, str(tmp_path / "killed"), max_steps=5, **{**balance, "lateral_balance": 1.0}),
            doc,
            source,
        )
