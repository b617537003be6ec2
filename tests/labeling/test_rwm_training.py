"""Stage 2 end to end on the tiny labelled split: a ``tiny`` reward model fits its labels (Spearman above 0.9),
its checkpoint loads back with the builders it reads and predicts the same, and ``irl-vla train stage=rwm`` runs."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.data.split import SceneLoader
from irl_vla.labeling.store import read_label_shards
from irl_vla.models.reward.checkpoint import load_reward_model
from irl_vla.models.reward.config import reward_config_path
from irl_vla.models.reward.heads import HeadKey
from irl_vla.models.reward.loss import RewardKey
from irl_vla.training.rwm import RWMConfig, evaluate_agreement, reward_dataset, run_rwm


def rwm_config(root: Path, labels: Path, out: Path, **overrides: Any) -> RWMConfig:
    base: dict[str, Any] = {
        "data_root": str(root),
        "labels_dir": str(labels),
        "cache_dir": str(root / "features"),
        "val_split": None,
        "stats_scenes": 4,
        "batch_size": 4,
        "max_steps": 250,
        "checkpoint_every": 250,
        "log_every": 50,
        "threads": 1,
        "progress": False,
        "output_dir": str(out),
        "optimizer": {"lr": 3e-3, "warmup_steps": 10},
    }
    base.update(overrides)
    return to_dataclass(base, RWMConfig, where="train")


def tiny_doc() -> dict[str, Any]:
    doc = OmegaConf.to_container(OmegaConf.load(reward_config_path("tiny")))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def trained(label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rwm") / "run"
    run_rwm(rwm_config(label_root, labels_dir, out), tiny_doc(), label_source)
    return out


def test_a_tiny_model_fits_a_small_labelled_set(
    trained: Path, label_root: Path, labels_dir: Path, label_source: partial[SceneLoader]
) -> None:
    loaded = load_reward_model(trained)
    labels = read_label_shards(labels_dir)
    dataset = reward_dataset(label_source, labels, loaded.builders, str(label_root / "features"))
    metrics = evaluate_agreement(loaded.model, dataset)
    assert metrics["spearman"] > 0.9, metrics
    # an untrained model does not: the fit is the training's doing
    torch.manual_seed(1)
    fresh = load_reward_model(trained).model
    for p in fresh.parameters():
        torch.nn.init.normal_(p, std=0.02)
    assert evaluate_agreement(fresh, dataset)["spearman"] < 0.9


def test_the_checkpoint_loads_with_its_builders_and_predicts_the_same(
    trained: Path, labels_dir: Path, label_source: partial[SceneLoader]
) -> None:
    loaded = load_reward_model(trained)
    labels = read_label_shards(labels_dir)
    loader = label_source()
    scenes = [loader.get_scene(t, loaded.builders.sensor_config()) for t in labels.tokens[:2]]
    features = loaded.builders.batch(scenes)
    candidates = torch.from_numpy(labels.candidates[:2])
    with torch.no_grad():
        out = loaded.model.predict_sub_scores(features, candidates)
        again = load_reward_model(trained).model.predict_sub_scores(features, candidates)
    assert out[HeadKey.SUB_SCORES].shape == (2, labels.num_candidates, 9)
    torch.testing.assert_close(out[RewardKey.REWARD], again[RewardKey.REWARD])
    assert loaded.model.privileged and {b.name for b in loaded.builders.privileged} == {"bev_semantic_map", "agents"}


def test_resume_is_complete_and_other_settings_are_refused(
    trained: Path, label_root: Path, labels_dir: Path, label_source: partial[SceneLoader]
) -> None:
    from irl_vla.common.checkpoint import ConfigMismatchError

    assert run_rwm(rwm_config(label_root, labels_dir, trained), tiny_doc(), label_source).name == "step_0000250"
    with pytest.raises(ConfigMismatchError, match="batch_size"):
        run_rwm(rwm_config(label_root, labels_dir, trained, batch_size=2), tiny_doc(), label_source)


def test_a_corrupt_label_shard_stops_training_naming_it(
    label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    import shutil

    from irl_vla.labeling.store import CorruptLabelError, shard_name

    copy = tmp_path / "labels"
    shutil.copytree(labels_dir, copy)
    bad = copy / shard_name(1)
    data = bytearray(bad.read_bytes())
    data[-40] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptLabelError, match=str(bad)):
        run_rwm(rwm_config(label_root, copy, tmp_path / "run"), tiny_doc(), label_source)


def test_train_stage_rwm_through_the_cli(label_root: Path, labels_dir: Path, tmp_path: Path) -> None:
    from tools.cli import main

    out = tmp_path / "cli_run"
    code = main(
        [
            "train",
            "stage=rwm",
            "model=reward_tiny",
            f"paths.data_root={label_root}",
            f"train.labels_dir={labels_dir}",
            "train.val_split=null",
            "train.max_steps=2",
            "train.batch_size=2",
            "train.stats_scenes=2",
            "train.progress=false",
            f"train.output_dir={out}",
        ]
    )
    assert code == 0
    loaded = load_reward_model(out)
    assert (
        loaded.model.cfg.size == "tiny"
        and np.isfinite([float(v.float().sum()) for v in loaded.model.state_dict().values()]).all()
    )


def test_fine_tuning_starts_from_the_init_checkpoint(
    trained: Path, label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    labels = read_label_shards(labels_dir)
    start = load_reward_model(trained)
    dataset = reward_dataset(label_source, labels, start.builders, str(label_root / "features"))
    # two steps at a negligible learning rate: the fine-tuned model is the checkpoint's, a fresh run's is not
    few = {"max_steps": 2, "checkpoint_every": 2, "optimizer": {"lr": 1e-9, "warmup_steps": 1}}
    tuned = run_rwm(
        rwm_config(label_root, labels_dir, tmp_path / "tuned", init_checkpoint=str(trained), **few),
        tiny_doc(),
        label_source,
    )
    fresh = run_rwm(rwm_config(label_root, labels_dir, tmp_path / "fresh", **few), tiny_doc(), label_source)
    reference = evaluate_agreement(start.model, dataset)
    assert evaluate_agreement(load_reward_model(tuned).model, dataset)["spearman"] == pytest.approx(
        reference["spearman"], abs=1e-3
    )
    assert evaluate_agreement(load_reward_model(fresh).model, dataset)["spearman"] < 0.9 < reference["spearman"]


def test_a_checkpoint_without_clearance_starts_a_model_with_logged_clearance_as_the_same_function(
    trained: Path, label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    labels = read_label_shards(labels_dir)
    start = load_reward_model(trained)
    doc = tiny_doc()
    doc["agent_clearance"] = True
    doc["inputs"] = {**doc["inputs"], "use_agent_futures": True}
    few = {"max_steps": 1, "checkpoint_every": 1, "optimizer": {"lr": 1e-9, "warmup_steps": 1}}
    cfg = rwm_config(label_root, labels_dir, tmp_path / "clear", init_checkpoint=str(trained), **few)
    tuned = load_reward_model(run_rwm(cfg, doc, label_source))
    assert tuned.model.cfg.agent_clearance and tuned.model.reads_future
    assert "agent_future_states" in tuned.model.input_keys()
    dataset = reward_dataset(label_source, labels, tuned.builders, str(label_root / "features"))
    reference = reward_dataset(label_source, labels, start.builders, str(label_root / "features"))
    assert evaluate_agreement(tuned.model, dataset)["spearman"] == pytest.approx(
        evaluate_agreement(start.model, reference)["spearman"], abs=1e-3
    )


def test_an_init_checkpoint_of_another_model_is_refused_naming_the_keys(
    trained: Path, label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    doc = tiny_doc()
    doc["loss"] = {**doc.get("loss", {}), "sub_scores": {"HC": 2.0, "EC": 2.0}}  # the loss's weights may change
    cfg = rwm_config(label_root, labels_dir, tmp_path / "run", init_checkpoint=str(trained), max_steps=1)
    assert run_rwm(cfg, doc, label_source).name == "step_0000001"
    doc["head_hidden"] = 16
    cfg = rwm_config(label_root, labels_dir, tmp_path / "run2", init_checkpoint=str(trained), max_steps=1)
    with pytest.raises(ValueError, match=r"init_checkpoint differs.*model\.head_hidden"):
        run_rwm(cfg, doc, label_source)


def test_the_light_decoder_fits_a_small_labelled_set(
    label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    doc = tiny_doc()
    doc.update(decoder="light", sample_stem=False, agent_clearance=True)
    out = run_rwm(rwm_config(label_root, labels_dir, tmp_path / "light"), doc, label_source)
    loaded = load_reward_model(out)
    assert loaded.model.cfg.decoder == "light"
    dataset = reward_dataset(label_source, read_label_shards(labels_dir), loaded.builders, str(label_root / "features"))
    assert evaluate_agreement(loaded.model, dataset)["spearman"] > 0.9


def test_more_scenes_beside_an_earlier_labelling_run_and_training_on_both(
    label_root: Path, labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path, capsys
) -> None:
    from irl_vla.labeling.pipeline import run_label
    from tests.labeling.conftest import label_config

    every = read_label_shards(labels_dir).tokens.tolist()
    first = label_config(label_root, str(tmp_path / "first"), max_scenes=2)
    run_label(first, label_source)
    more = label_config(label_root, str(tmp_path / "more"), exclude_labels=[str(first.label_dir)])
    run_label(more, label_source)
    a, b = read_label_shards(first.label_dir), read_label_shards(more.label_dir)
    assert not set(a.tokens) & set(b.tokens) and sorted([*a.tokens, *b.tokens]) == sorted(every)
    same = read_label_shards(labels_dir).select([every.index(t) for t in b.tokens])
    np.testing.assert_array_equal(b.epdms, same.epdms)  # the same labels as a run over every scene
    cfg = rwm_config(
        label_root, first.label_dir, tmp_path / "both", extra_labels_dirs=[str(more.label_dir)], max_steps=1
    )
    capsys.readouterr()
    run_rwm(cfg, tiny_doc(), label_source)
    assert f"{len(every)} scenes x" in capsys.readouterr().out
    from irl_vla.common.checkpoint import ConfigMismatchError

    with pytest.raises(ConfigMismatchError, match="extra_labels_dirs"):
        run_rwm(rwm_config(label_root, first.label_dir, tmp_path / "both", max_steps=1), tiny_doc(), label_source)
