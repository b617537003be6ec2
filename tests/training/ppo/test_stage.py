"""``irl-vla train stage=ppo`` end to end on a tiny split: from a stage-1 checkpoint against a known reward."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch

from irl_vla.common.checkpoint import load_checkpoint
from irl_vla.data.split import SceneLoader
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.training.il import run_il
from irl_vla.training.policy import load_policy
from irl_vla.training.ppo import stage
from irl_vla.training.ppo.config import HackingGuardConfig, PPOConfig
from irl_vla.training.ppo.guard import SimulatorInLoopError
from irl_vla.training.ppo.stage import POLICY_DIR, HackingMonitor, PPOTrainer, run_ppo
from tests.helpers import config_from
from tests.training.conftest import il_config, model_doc
from tests.training.ppo.helpers import ProgressReward, untrained_reward_checkpoint


@pytest.fixture(scope="module")
def stage1(split_root: Path, source: partial[SceneLoader], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny stage-1 VLA trained for a few steps on the tiny split."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("stage1") / "il"
    return run_il(il_config(split_root, str(out), max_steps=4), model_doc("tiny"), source)


def ppo_config(root: Path, init: Path, out: Path, **overrides: Any) -> PPOConfig:
    """Stage-3 settings for the tiny split: 2 scenes a rollout, no progress bars."""
    base: dict[str, Any] = {
        "init_checkpoint": str(init),
        "reward_checkpoint": "analytic",
        "data_root": str(root),
        "cache_dir": str(root / "features"),
        "batch_size": 2,
        "max_steps": 3,
        "checkpoint_every": 3,
        "log_every": 1,
        "val_split": None,
        "progress": False,
        "workers": 1,
        "threads": 1,
        "output_dir": str(out),
        "ppo": {"samples_per_anchor": 2},
        "optimizer": {"lr": 1e-3, "warmup_steps": 1},
    }
    return config_from(PPOConfig, base, overrides, "train")


def _lines(run: Path, group: str) -> list[dict]:
    return [x for x in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if x["group"] == group]


def test_ppo_run_logs_cleanrl_names_evaluates_with_the_scorer_and_exports_a_loadable_policy(
    split_root: Path, source: partial[SceneLoader], stage1: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ppo"
    cfg = ppo_config(split_root, stage1, out, val_split="synth_navtrain", val_max_scenes=2, val_every=3)
    exported = run_ppo(cfg, source, source, ProgressReward(), [])
    assert exported == out / POLICY_DIR
    train = _lines(out, "")
    assert len(train) == 3
    for name in ("losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac"):
        assert name in train[-1]
    assert "charts/learning_rate" in train[-1] and "reward/EP" in train[-1] and "reward/epdms" in train[-1]
    evals = _lines(out, "eval")
    assert [e["step"] for e in evals] == [0, 3]  # the stage-1 policy first, then the end
    assert all(0 <= e["epdms"] <= 1 and "NC" in e for e in evals)
    tags = set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"losses/policy_loss", "charts/learning_rate", "reward/EP", "eval/epdms", "eval/EP"} <= tags

    before, _ = load_policy(stage1, architecture="vla")
    after, ck = load_policy(exported, architecture="vla")  # what irl-vla eval agent=vla reads
    assert ck.config["stage"] == "ppo"
    planner = [n for n in after.model.state_dict() if n.startswith("planner.") and "norm" not in n]
    changed = [n for n in planner if not torch.equal(after.model.state_dict()[n], before.model.state_dict()[n])]
    assert changed
    encoder = [n for n in after.model.state_dict() if n.startswith("vision.")]
    assert all(torch.equal(after.model.state_dict()[n], before.model.state_dict()[n]) for n in encoder)

    assert run_ppo(cfg, source, source, ProgressReward(), []) == exported  # a rerun finds it complete
    assert len(_lines(out, "")) == 3


def test_rollout_scenes_are_spread_over_the_split_not_its_head(
    split_root: Path, source: partial[SceneLoader], stage1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    class Recording(stage.FeatureDataset):  # type: ignore[misc,name-defined]
        def __init__(self, *args: Any, tokens: list[str], **kwargs: Any) -> None:
            seen.append(list(tokens))
            super().__init__(*args, tokens=tokens, **kwargs)

    monkeypatch.setattr(stage, "FeatureDataset", Recording)
    cfg = ppo_config(split_root, stage1, tmp_path / "ppo", max_scenes=2, max_steps=1, checkpoint_every=1)
    run_ppo(cfg, source, None, ProgressReward(), [])
    tokens = list(source().tokens)
    assert len(tokens) > 2
    # the split's first and last scene, not its first two (for the policy's view and the reward model's)
    assert seen == [[tokens[0], tokens[-1]]] * 2


def test_resume_after_a_kill_ends_with_the_uninterrupted_policy(
    split_root: Path, source: partial[SceneLoader], stage1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"max_steps": 4, "checkpoint_every": 2}
    whole = run_ppo(ppo_config(split_root, stage1, tmp_path / "whole", **settings), source, None, ProgressReward(), [])
    real = PPOTrainer._train_step

    def dies_at_step_4(self: PPOTrainer, batch: object) -> dict[str, float]:
        if self.step == 3:
            raise KeyboardInterrupt  # killed while taking step 4, after the checkpoint of step 2
        return real(self, batch)  # type: ignore[arg-type]

    killed = ppo_config(split_root, stage1, tmp_path / "killed", **settings)
    with monkeypatch.context() as m:
        m.setattr(PPOTrainer, "_train_step", dies_at_step_4)
        with pytest.raises(KeyboardInterrupt):
            run_ppo(killed, source, None, ProgressReward(), [])
    resumed = run_ppo(killed, source, None, ProgressReward(), [])
    a, b = load_checkpoint(whole).weights, load_checkpoint(resumed).weights
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["step"] for m in _lines(tmp_path / "killed", "")] == [1, 2, 3, 4]
    other = run_ppo(ppo_config(split_root, stage1, tmp_path / "seed1", seed=1, **settings), source, None,
                    ProgressReward(), [])
    c = load_checkpoint(other).weights
    assert any(not torch.equal(a[k], c[k]) for k in a)  # another seed samples other chains


def test_a_reward_model_calling_the_scorer_stops_the_run(
    split_root: Path, source: partial[SceneLoader], stage1: Path, tmp_path: Path
) -> None:
    class Cheating(ProgressReward):
        def predict_sub_scores(self, features, trajectories):  # type: ignore[no-untyped-def]
            FastScorer().score(None, trajectories, None)  # type: ignore[arg-type]
            return super().predict_sub_scores(features, trajectories)

    with pytest.raises(SimulatorInLoopError, match="score"):
        run_ppo(ppo_config(split_root, stage1, tmp_path / "cheat"), source, None, Cheating(), [])


def test_hacking_monitor_stops_when_reward_rises_while_epdms_falls() -> None:
    monitor = HackingMonitor(HackingGuardConfig(reward_rise=0.01, epdms_drop=0.02, patience=2))
    assert not monitor.update(reward=0.80, epdms=0.70)  # the best so far
    assert not monitor.update(reward=0.85, epdms=0.69)  # a small fall: not counted
    assert not monitor.update(reward=0.86, epdms=0.65)  # first strike
    assert not monitor.update(reward=0.80, epdms=0.64)  # the reward did not rise: strikes reset
    assert not monitor.update(reward=0.90, epdms=0.60)
    assert monitor.update(reward=0.91, epdms=0.60)  # second strike in a row: stop
    off = HackingMonitor(HackingGuardConfig(enabled=False, patience=1))
    off.update(0.5, 0.7)
    assert not off.update(0.9, 0.1)


def test_train_stage_ppo_through_the_cli_with_a_reward_checkpoint(
    split_root: Path, stage1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.cli import main

    # its LiDAR on 4 m cells, the tiny policy's on 2 m: one builder with two settings, each model reads its own
    reward = untrained_reward_checkpoint(tmp_path / "rwm", raster_cells=16)
    out = tmp_path / "out"
    common = [f"paths.data_root={split_root}", f"paths.output_root={out}", f"train.init_checkpoint={stage1}"]
    args = ["train", "stage=ppo", *common, "train.max_steps=1", "train.batch_size=2", "train.max_scenes=2",
            "train.val_split=null", "train.progress=false", "train.threads=1", "train.ppo.samples_per_anchor=2"]
    assert main([*args, f"train.reward_checkpoint={reward}"]) == 0
    run = tmp_path / "out" / "train" / "ppo" / "tiny"
    assert f"wrote {run / POLICY_DIR}" in capsys.readouterr().out
    assert (run / "checkpoints" / "step_0000001").is_dir()
    assert main([*args, f"train.reward_checkpoint={stage1}", "train.output_dir=" + str(tmp_path / "x")]) == 2
    assert "holds no reward model" in capsys.readouterr().err
    assert main(["train", "stage=ppo", "--cfg", "job"]) == 0
    assert "samples_per_anchor: 4" in capsys.readouterr().out


@pytest.mark.slow
def test_two_torchrun_processes_run_ppo_and_write_one_checkpoint(
    split_root: Path, stage1: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    reward = untrained_reward_checkpoint(tmp_path / "rwm", raster_cells=32)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "tools.cli",
           "train", "stage=ppo", f"paths.data_root={split_root}", f"paths.output_root={tmp_path}",
           f"train.init_checkpoint={stage1}", f"train.reward_checkpoint={reward}", "train.max_steps=2",
           "train.batch_size=1", "train.max_scenes=2", "train.val_split=null", "train.progress=false",
           "train.threads=1", "train.ppo.samples_per_anchor=2", "train.ppo.target_kl=0.5"]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "train" / "ppo" / "tiny"
    assert load_checkpoint(run / "checkpoints" / "step_0000002").config["world_size"] == 2
    assert (run / POLICY_DIR).is_dir() and done.stdout.count(f"wrote {run / POLICY_DIR}") == 1


def test_the_world_model_reward_moves_with_the_policy() -> None:
    # run_ppo moves an nn.Module reward to the training device; the wrapper was a plain object before, so on a GPU
    # the reward model stayed on the CPU ("Expected all tensors to be on the same device").
    from torch import nn

    from irl_vla.models.reward.config import load_reward_config
    from irl_vla.models.reward.model import RewardWorldModel
    from irl_vla.training.ppo.stage import WorldModelReward

    wrapped = WorldModelReward(RewardWorldModel(load_reward_config("tiny", {})))
    assert isinstance(wrapped, nn.Module)
    wrapped.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in wrapped.model.parameters())
