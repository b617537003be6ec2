"""The trained policies as agents (vla, ego_mlp) and ``irl-vla train`` / ``eval`` / ``submit`` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents.registry import make_agent, submittable_agent
from irl_vla.agents.state_anchoring import anchor_plan
from irl_vla.common.checkpoint import load_checkpoint
from irl_vla.data.split import SceneLoader
from irl_vla.data.two_stage import two_stage_dir
from irl_vla.training.il import run_il
from irl_vla.training.policy import checkpoint_dirs
from sim_bridges.embedded.two_stage import TwoStageSpec, generate_two_stage
from tests.helpers import tiny_split
from tests.training.conftest import il_config, model_doc
from tools.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vla_run(split_root: Path, source: partial[SceneLoader], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("vla_run")
    run_il(il_config(split_root, str(run), max_steps=2), model_doc("tiny"), source)
    return run


def test_vla_agent_plans_batches_and_modes_from_sensors_only(vla_run: Path, source: partial[SceneLoader]) -> None:
    agent = submittable_agent({"name": "vla", "checkpoint": str(vla_run)})  # a run directory: its latest checkpoint
    assert not agent.privileged and agent.name() == "vla"
    sensors = agent.get_sensor_config()
    assert set(sensors.cameras) == {"cam_l0", "cam_f0", "cam_r0"} and sensors.lidar_pc
    loader = source()
    inputs = [loader.get_scene(t, sensors).get_agent_input() for t in loader.tokens[:3]]
    batch = agent.compute_trajectories(inputs)
    alone = [agent.compute_trajectory(x) for x in inputs]
    for a, b in zip(batch, alone, strict=True):
        np.testing.assert_allclose(a.poses, b.poses, atol=1e-5)
        assert a.poses.shape == (8, 3) and np.isfinite(a.poses).all()
    candidates = agent.compute_candidates(inputs[0])
    assert candidates is not None and candidates.poses.shape == (4, 8, 3)  # K = 4 anchors of the small tiny model
    # the plan is the most confident mode, anchored to the ego state (agent.anchor_to_state, on by default)
    raw = submittable_agent({"name": "vla", "checkpoint": str(vla_run), "anchor_to_state": False})
    np.testing.assert_allclose(candidates.best().poses, raw.compute_trajectory(inputs[0]).poses, atol=1e-5)
    ego = inputs[0].current
    times = candidates.trajectory_sampling.times
    anchored = anchor_plan(candidates.best().poses, times, ego.ego_velocity, ego.ego_acceleration, 1.0)
    np.testing.assert_allclose(alone[0].poses, anchored, atol=1e-4)


def test_agents_refuse_missing_or_foreign_checkpoints(vla_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"agent\.checkpoint="):
        make_agent("vla").initialize()
    with pytest.raises(ValueError, match="holds an vla policy, not ego_mlp"):
        make_agent({"name": "ego_mlp", "checkpoint": str(vla_run)}).initialize()
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        make_agent({"name": "vla", "checkpoint": str(tmp_path)}).get_sensor_config()


def _written(printed: str, suffix: str) -> Path:
    """The path a command printed as ``wrote <path>`` ending in ``suffix``."""
    paths = [line.split(" ", 1)[1] for line in printed.splitlines() if line.startswith("wrote ")]
    found = [Path(p) for p in paths if p.endswith(suffix)]
    assert found, printed
    return found[-1]


def _cli(split_root: Path, out: Path, command: str, *extra: str) -> int:
    return main([command, f"paths.data_root={split_root}", f"paths.output_root={out}", *extra])


def test_train_then_eval_and_submit_the_ego_mlp_through_the_cli(
    split_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = ["stage=il", "model=ego_mlp", "train.max_steps=4", "train.batch_size=2", "train.val_split=null",
             "train.progress=false", "train.threads=1", "train.stats_scenes=4", "train.checkpoint_every=2"]
    assert _cli(split_root, tmp_path, "train", *train) == 0
    run = tmp_path / "train" / "il" / "ego_mlp"
    assert f"wrote {run / 'checkpoints' / 'step_0000004'}" in capsys.readouterr().out
    assert [p.name for p in checkpoint_dirs(run)] == ["step_0000002", "step_0000004"]
    assert (run / "tensorboard").is_dir() and list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert load_checkpoint(checkpoint_dirs(run)[-1]).config["train"]["max_steps"] == 4
    agent = ["agent=ego_mlp", f"agent.checkpoint={run}"]
    assert _cli(split_root, tmp_path, "eval", *agent, "eval.split=synth_navtrain", "eval.workers=1",
                "eval.progress=false") == 0
    summary = json.loads(_written(capsys.readouterr().out, "ego_mlp/summary.json").read_text())
    assert summary["num_failed"] == 0 and 0 <= summary["epdms"] <= 1
    assert _cli(split_root, tmp_path, "submit", *agent, "submit.split=synth_navtrain", "submit.progress=false") == 0
    assert _written(capsys.readouterr().out, "submission.pkl").is_file()
    # the same command again resumes and finds the run complete; other settings are refused naming the key
    assert _cli(split_root, tmp_path, "train", *train) == 0
    assert _cli(split_root, tmp_path, "train", *train, "train.seed=3") == 2
    assert "train.seed: checkpoint 0, config 3" in capsys.readouterr().err


def test_submit_agent_vla_through_the_cli(
    split_root: Path, vla_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = ["agent=vla", f"agent.checkpoint={vla_run}"]
    assert _cli(split_root, tmp_path, "submit", *agent, "submit.split=synth_navtrain", "submit.progress=false") == 0
    assert _written(capsys.readouterr().out, "submission.pkl").is_file()


@pytest.mark.slow
def test_two_torchrun_processes_take_the_steps_once_and_write_one_checkpoint(split_root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "IRL_VLA_DATA_ROOT": str(split_root), "IRL_VLA_OUTPUT_ROOT": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "tools.cli",
           "train", "stage=il", "model=ego_mlp", "train.max_steps=3", "train.batch_size=2", "train.val_split=null",
           "train.progress=false", "train.threads=1", "train.stats_scenes=4", "train.checkpoint_every=100",
           f"train.cache_dir={tmp_path / 'features'}"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "train" / "il" / "ego_mlp"
    assert [p.name for p in checkpoint_dirs(run)] == ["step_0000003"]  # one checkpoint, written once (rank 0)
    assert load_checkpoint(run / "checkpoints" / "step_0000003").config["world_size"] == 2
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3]  # rank 0 alone logs (log_every 10: the last step)
    assert done.stdout.count("wrote ") == 1  # rank 0 wrote it and says so


def test_train_il_reads_extra_splits_such_as_the_training_splits_stage_two_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    split = tiny_split(root, "synth_navtrain", ["stop_and_go"], frame_interval=2, num_log_frames=24)
    generate_two_stage(split, TwoStageSpec(pairs_per_group=1), workers=1)
    stage_two = SceneLoader(two_stage_dir(split))
    own = len(SceneLoader(split).tokens)
    assert own > 0 and len(stage_two.tokens) > 0
    train = ["stage=il", "model=ego_mlp", "train.max_steps=2", "train.batch_size=2", "train.val_split=null",
             "train.progress=false", "train.threads=1", "train.stats_scenes=4", "train.checkpoint_every=2"]
    extra = "train.extra_splits=[synth_navtrain_two_stage]"
    assert _cli(root, tmp_path, "train", *train, extra) == 0
    assert f"{own + len(stage_two.tokens)} scenes" in capsys.readouterr().out
    run = tmp_path / "train" / "il" / "ego_mlp"
    assert load_checkpoint(checkpoint_dirs(run)[-1]).config["train"]["extra_splits"] == ["synth_navtrain_two_stage"]
    token = stage_two.tokens[0]  # the stage-2 scenes' features sit in the training split's cache
    assert list((root / "features" / "synth_navtrain" / token[:2] / token).glob("*.safetensors"))
    # resuming without the extra split is refused naming the key; a split named twice is refused
    assert _cli(root, tmp_path, "train", *train) == 2
    assert "extra_splits" in capsys.readouterr().err
    assert _cli(root, tmp_path, "train", *train, "train.extra_splits=[synth_navtrain]") != 0
    assert "repeats a split" in capsys.readouterr().err


def test_cache_model_builds_what_the_model_reads_but_its_text_entries(
    split_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from irl_vla.data.features.cameras import DEFAULT_CAMERAS
    from irl_vla.models.vla.config import load_model_config
    from irl_vla.training.policy import TOKENIZER_ARTEFACT, builder_params, cached_builder_params

    features, targets = cached_builder_params("default", DEFAULT_CAMERAS)
    full_features, full_targets = builder_params(load_model_config("default"), DEFAULT_CAMERAS)
    assert features["lidar_bev"]["intensity"] is True and "route_centerline" in targets  # the road grid's entries
    text = {n for n, p in {**full_features, **full_targets}.items() if (p or {}).get("tokenizer") == TOKENIZER_ARTEFACT}
    assert text and not text & {*features, *targets}  # the run encodes those with its own tokenizer
    assert {*features, *targets} | text == {*full_features, *full_targets}

    cache = tmp_path / "features"
    args = ["cache.model=ego_mlp", f"cache.cache_dir={cache}", "run.workers=1", "run.progress=false"]
    assert _cli(split_root, tmp_path, "cache", *args) == 0
    assert "4 scenes" in capsys.readouterr().out
    entries = {p.name.split("-")[0] for p in cache.rglob("*.safetensors")}
    assert entries == {"ego_status", "driving_command", "trajectory"}
    assert _cli(split_root, tmp_path, "cache", *args) == 0
    assert "0 built" in capsys.readouterr().out
    assert _cli(split_root, tmp_path, "cache", *args, "cache.features.ego_status.num_history_frames=2") != 0
    assert "cache.features and cache.targets are set by cache.model" in capsys.readouterr().err
