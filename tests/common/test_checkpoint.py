"""Checkpoints: exact round trip (weights, config, statistics, artefacts, resume state), config checks, safety."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from irl_vla.common.checkpoint import (
    ConfigMismatchError,
    ResumeState,
    capture_rng_state,
    load_checkpoint,
    load_tree,
    restore_rng_state,
    save_checkpoint,
    save_tree,
)
from irl_vla.common.io import DataFormatError

CONFIG = {"model": {"width": 16, "layers": [16, 8], "dropout": 0.1}, "train": {"lr": 1e-3, "seed": 3}}


def _setup() -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


def _step(model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler) -> None:
    x = torch.randn(8, 4)
    loss = model(x).pow(2).mean() + torch.rand(()) * 0  # draws from the RNG too
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()


def test_checkpoint_round_trips_exactly_and_resumes_identically(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    for _ in range(3):
        _step(model, opt, sched)
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text('{"model": "word-level"}')
    stats = {"ego_mean": torch.randn(7), "ego_std": torch.rand(7) + 0.5}
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002 - the global states are what is saved
    resume = ResumeState(
        step=3, optimizer=opt.state_dict(), scheduler=sched.state_dict(), extra={"epoch": 1, "best": 0.5}
    )
    path = save_checkpoint(
        tmp_path / "ckpt",
        weights=model.state_dict(),
        config=CONFIG,
        normalization=stats,
        artefacts={"tokenizer.json": tokenizer, "anchors.npy": b"\x93NUMPY-bytes"},
        resume=resume,
    )
    # what continuing without a checkpoint gives
    expected_draws = (random.random(), float(np.random.rand()), float(torch.rand(())))  # noqa: NPY002
    restore_rng_state(resume.rng)
    _step(model, opt, sched)
    expected_weights = {k: v.clone() for k, v in model.state_dict().items()}

    ckpt = load_checkpoint(path, config=CONFIG)
    assert ckpt.config == CONFIG and ckpt.step == 3
    fresh, fresh_opt, fresh_sched = _setup()
    fresh.load_state_dict(ckpt.weights)
    assert ckpt.resume is not None
    assert ckpt.resume.optimizer["param_groups"][0]["betas"] == (0.8, 0.95)  # tuples stay tuples
    fresh_opt.load_state_dict(ckpt.resume.optimizer)
    fresh_sched.load_state_dict(ckpt.resume.scheduler)
    assert ckpt.resume.extra == {"epoch": 1, "best": 0.5}
    assert all(torch.equal(ckpt.normalization[k], v) for k, v in stats.items())
    assert ckpt.artefacts["tokenizer.json"].read_text() == tokenizer.read_text()
    assert ckpt.artefacts["anchors.npy"].read_bytes() == b"\x93NUMPY-bytes"
    restore_rng_state(ckpt.resume.rng)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected_draws  # noqa: NPY002
    restore_rng_state(ckpt.resume.rng)
    _step(fresh, fresh_opt, fresh_sched)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in expected_weights.items())


def test_a_mismatched_config_is_refused_naming_every_key(tmp_path: Path) -> None:
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "ckpt", weights=model.state_dict(), config=CONFIG)
    other = {"model": {"width": 32, "layers": [16, 8], "dropout": 0.1, "heads": 4}, "train": {"lr": 1e-3, "seed": 4}}
    with pytest.raises(ConfigMismatchError) as err:
        load_checkpoint(path, config=other)
    assert err.value.keys == ["model.heads", "model.width", "train.seed"]
    assert "model.width: checkpoint 16, config 32" in str(err.value) and str(path) in str(err.value)
    ckpt = load_checkpoint(path, config=other, ignore=["model.heads", "model.width", "train."])
    assert ckpt.config == CONFIG


def test_a_damaged_file_is_named_and_a_failed_save_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    model, _, _ = _setup()
    path = save_checkpoint(tmp_path / "ckpt", weights=model.state_dict(), config=CONFIG)
    with pytest.raises(FileNotFoundError):
        save_checkpoint(path, weights=model.state_dict(), config={"new": 1}, artefacts={"x.bin": tmp_path / "nope"})
    assert load_checkpoint(path).config == CONFIG  # the old one is whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary directory left
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="weights.safetensors"):
        load_checkpoint(path)


def test_trees_keep_types_and_refuse_what_json_and_safetensors_cannot_hold(tmp_path: Path) -> None:
    tree = {"a": (1, 2.5, None), 3: [np.arange(4), torch.ones(2, dtype=torch.bool)], "rng": capture_rng_state()}
    save_tree(tmp_path / "t", tree)
    back = load_tree(tmp_path / "t")
    assert back["a"] == (1, 2.5, None) and isinstance(back[3][0], np.ndarray)
    assert np.array_equal(back[3][0], np.arange(4)) and torch.equal(back[3][1], torch.ones(2, dtype=torch.bool))
    assert json.loads((tmp_path / "t.json").read_text())  # plain JSON beside the tensors
    with pytest.raises(TypeError, match=r"u\.f: cannot store a function"):
        save_tree(tmp_path / "u", {"f": lambda: 0})
