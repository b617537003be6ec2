"""The shared trainer through stage 1: learning, resume, guards, refusals, determinism, no network."""

from __future__ import annotations

import json
import math
import socket
from functools import partial
from pathlib import Path

import pytest
import torch

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.common.checkpoint import ConfigMismatchError, load_checkpoint
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.data.split import SceneLoader
from irl_vla.models.ego_mlp import EgoStatusMLP
from irl_vla.training import trainer as trainer_module
from irl_vla.training.il import run_il
from irl_vla.training.policy import checkpoint_dirs, load_policy
from irl_vla.training.trainer import NonFiniteLossError, autocast_dtype, lr_factor
from irl_vla.training.validation import Validator
from tests.training.conftest import il_config, model_doc


def _metrics(run: Path, group: str = "train") -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if x["group"] == group]


def test_warmup_then_cosine_to_the_floor() -> None:
    f = partial(lr_factor, warmup=4, total=20, min_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0) and f(19) > 0.1 and f(20) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(4, 20))


def test_precision_bf16_native_only_auto_fp32_on_cpu_bf16_if_native_else_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("auto", cpu) is None
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)
    with pytest.raises(ValueError, match=r"train\.precision bf16 needs .*natively.*the device is cpu"):
        autocast_dtype("bf16", cpu)
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cpu) is None  # bf16 on a CPU only when asked for
    assert autocast_dtype("bf16_if_native", cpu) is torch.bfloat16
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)
    assert autocast_dtype("bf16_if_native", cpu) is None  # falls back to fp32 where bf16 is not native


def test_bf16_if_native_records_what_it_resolved_to_and_a_resume_that_resolves_otherwise_is_refused(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = il_config(split_root, str(tmp_path / "run"), max_steps=2, precision="bf16_if_native")
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)
    path = run_il(cfg, model_doc("ego_mlp"), source)
    assert load_checkpoint(path).config["train"]["resolved_precision"] == "bf16"
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)  # another machine
    with pytest.raises(ConfigMismatchError, match=r"train\.resolved_precision: checkpoint 'bf16', config 'fp32'") as e:
        run_il(cfg, model_doc("ego_mlp"), source)
    assert e.value.keys == ["train.resolved_precision"]


def test_a_cpu_computes_bf16_natively_only_with_bf16_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    """AVX-512 alone only emulates bf16 (slower than fp32): not native; AVX512-BF16 or AMX-BF16 is."""
    cpu = torch.device("cpu")
    for flags, native in (({"avx2", "avx512f", "avx512_core"}, False), (set(), False),
                          ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)):
        monkeypatch.setattr(trainer_module, "_cpu_flags", lambda flags=flags: frozenset(flags))
        assert trainer_module.native_bf16(cpu) is native, flags
        assert trainer_module.resolved_precision("bf16_if_native", cpu) == ("bf16" if native else "fp32")


def test_bf16_training_on_cpu_keeps_fp32_weights_and_differs_from_fp32(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``precision: bf16`` on a CPU runs the forward under bf16 autocast; the weights stay fp32 and finite."""
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)  # emulated where the CPU lacks it
    doc = model_doc("tiny")
    runs = {p: run_il(il_config(split_root, str(tmp_path / p), max_steps=3, precision=p), doc, source)
            for p in ("fp32", "bf16")}
    fp32, bf16 = (load_checkpoint(runs[p]).weights for p in ("fp32", "bf16"))
    assert all(w.dtype == fp32[k].dtype and torch.isfinite(w).all() for k, w in bf16.items())
    assert not all(torch.equal(fp32[k], bf16[k]) for k in fp32)
    assert all(math.isfinite(m["loss"]) for m in _metrics(tmp_path / "bf16"))


def test_tiny_vla_overfits_and_beats_constant_velocity(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path
) -> None:
    """On 4 stop-and-go scenes the loss falls and the policy's EPDMS there rises above constant velocity's."""
    cfg = il_config(
        split_root, str(tmp_path / "overfit"), max_steps=120, batch_size=4, log_every=20, checkpoint_every=120,
        optimizer={"lr": 3e-3, "warmup_steps": 10, "min_lr_ratio": 0.1},
    )
    path = run_il(cfg, model_doc("tiny"), source)
    losses = [m["loss"] for m in _metrics(tmp_path / "overfit")]
    assert losses[-1] < 0.5 * losses[0]
    validator = Validator(source, tmp_path / "metric_cache", None, ExecutorConfig("sequential", 1), progress=False)
    from irl_vla.agents.vla import VLAAgent

    policy, _ = load_policy(path, architecture="vla")
    vla, cv = validator(VLAAgent(policy)), validator(ConstantVelocityAgent())
    assert vla["num_failed"] == 0
    assert vla["epdms"] > cv["epdms"] + 0.2, (vla, cv)


def test_resume_after_a_kill_ends_with_the_uninterrupted_weights(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = model_doc("tiny")
    whole = run_il(il_config(split_root, str(tmp_path / "whole"), max_steps=5), doc, source)

    from irl_vla.training import trainer

    real = trainer.Trainer._train_step

    def dies_at_step_4(self: trainer.Trainer, batch: object) -> dict[str, float]:
        if self.step == 3:
            raise KeyboardInterrupt  # killed while taking step 4, after the checkpoint of step 2
        return real(self, batch)

    killed = il_config(split_root, str(tmp_path / "killed"), max_steps=5)
    with monkeypatch.context() as m:
        m.setattr(trainer.Trainer, "_train_step", dies_at_step_4)
        with pytest.raises(KeyboardInterrupt):
            run_il(killed, doc, source)
    assert [p.name for p in checkpoint_dirs(killed.output_dir)] == ["step_0000002"]
    resumed = run_il(killed, doc, source)
    a, b = load_checkpoint(whole).weights, load_checkpoint(resumed).weights
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert [m["step"] for m in _metrics(Path(killed.output_dir))] == [1, 2, 3, 4, 5]  # redone steps logged once


def test_a_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = EgoStatusMLP.compute_loss
    calls = {"n": 0}

    def nan_at_third(self: EgoStatusMLP, predictions: dict, targets: dict) -> dict:
        calls["n"] += 1
        terms = real(self, predictions, targets)
        if calls["n"] == 3:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(EgoStatusMLP, "compute_loss", nan_at_third)
    cfg = il_config(split_root, str(tmp_path / "nan"), max_steps=6)
    with pytest.raises(NonFiniteLossError, match=r"step 3: the loss is nan .*last good checkpoint is .*step_0000002"):
        run_il(cfg, model_doc("ego_mlp"), source)
    kept = checkpoint_dirs(cfg.output_dir)
    assert [p.name for p in kept] == ["step_0000002"]
    weights = load_checkpoint(kept[0]).weights
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_checkpoint_with_another_config_is_refused_naming_the_key(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path
) -> None:
    run = str(tmp_path / "run")
    run_il(il_config(split_root, run, max_steps=2), model_doc("ego_mlp"), source)
    with pytest.raises(ConfigMismatchError, match=r"train\.optimizer\.lr: checkpoint 0\.001, config 0\.002") as e:
        run_il(il_config(split_root, run, max_steps=2, optimizer={"lr": 2e-3}), model_doc("ego_mlp"), source)
    assert e.value.keys == ["train.optimizer.lr"]
    with pytest.raises(ConfigMismatchError, match=r"model\.hidden"):
        run_il(il_config(split_root, run, max_steps=2), model_doc("ego_mlp", hidden=[64, 64]), source)
    with pytest.raises(FileExistsError, match="resume=true"):
        run_il(il_config(split_root, run, max_steps=2, resume=False), model_doc("ego_mlp"), source)


def test_same_seed_same_weights_and_another_seed_differs(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path
) -> None:
    runs = {name: il_config(split_root, str(tmp_path / name), max_steps=3, seed=s) for name, s in
            (("a", 0), ("b", 0), ("c", 1))}
    weights = {n: load_checkpoint(run_il(c, model_doc("ego_mlp"), source)).weights for n, c in runs.items()}
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"])


def test_no_network_access_while_a_model_is_built_and_trained(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted in a test")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    path = run_il(il_config(split_root, str(tmp_path / "offline"), max_steps=2), model_doc("tiny"), source)
    policy, _ = load_policy(path)
    assert policy.architecture == "vla"
    assert attempts == []


def test_validation_scenes_are_spread_over_the_split(source: partial[SceneLoader], tmp_path: Path) -> None:
    # the first scenes of a split are its first families' logs: a validator on them would not stand for the split
    tokens = list(source().tokens)
    validator = Validator(source, tmp_path / "metric_cache", 3, ExecutorConfig("sequential", 1), progress=False)
    assert len(tokens) > 3
    assert len(validator.tokens) == 3 and validator.tokens[0] == tokens[0] and validator.tokens[-1] == tokens[-1]
