"""One scene-source config for every command that reads a split: same keys, same defaults, one validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from irl_vla.common.config_source import DataKind, SceneSelectionConfig, SceneSourceConfig, split_data_dir
from irl_vla.data.features.caching import CacheConfig
from irl_vla.evaluation.reward_report.run import ReportConfig, _label_config
from irl_vla.evaluation.runner import EvalConfig
from irl_vla.labeling.pipeline import LabelConfig
from irl_vla.training.il import ILConfig
from irl_vla.training.ppo.config import PPOConfig
from irl_vla.training.rwm import RWMConfig
from sim_bridges.navsim.submission import SubmitConfig

#: Every command config that reads a split, with the defaults its users had before the fields were shared:
#: (split, max_scenes); ``...``: the command has no ``max_scenes``.
DEFAULTS: dict[type, tuple[str, object]] = {
    EvalConfig: ("synth_navtest", None),
    SubmitConfig: ("synth_navtest", ...),
    CacheConfig: ("synth_navtrain", None),
    ILConfig: ("synth_navtrain", None),
    RWMConfig: ("synth_navtrain", None),
    PPOConfig: ("synth_navtrain", 512),
    LabelConfig: ("synth_navtrain", 800),
    ReportConfig: ("synth_navtest", 128),
}
#: The keys users typed before (``<command>.<key>=...``): they must all still exist.
SOURCE_KEYS = ("data_root", "split", "source", "navsim_root", "maps_root", "split_file")
HAD_SENSOR_CACHE = (EvalConfig, SubmitConfig, ILConfig, RWMConfig, PPOConfig, ReportConfig)


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_every_command_keeps_its_keys_and_defaults(cls: type) -> None:
    config = cls()
    assert isinstance(config, SceneSourceConfig)
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(SOURCE_KEYS) <= names
    if cls in HAD_SENSOR_CACHE:
        assert config.sensor_cache is None
    split, max_scenes = DEFAULTS[cls]
    assert (config.data_root, config.split, config.source) == ("data", split, "embedded")
    if max_scenes is ...:
        assert not isinstance(config, SceneSelectionConfig)
    else:
        assert config.max_scenes == max_scenes


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_every_command_validates_its_source(cls: type) -> None:
    """Label and report used to accept source=navsim without a root (and fail later, deep in a worker)."""
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.navsim_root: required with source=navsim"):
        cls(source="navsim")
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.source: 'carla' is not one of"):
        cls(source="carla")
    assert cls(source="navsim", navsim_root="/navsim").navsim_root == "/navsim"


@pytest.mark.parametrize("cls", [c for c, (_, m) in DEFAULTS.items() if m is not ...], ids=lambda c: c.__name__)
def test_max_scenes_is_checked_once_with_one_message(cls: type) -> None:
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.max_scenes: expected >= 1 or null, got 0$"):
        cls(max_scenes=0)
    assert cls(max_scenes=None).max_scenes is None


def test_training_configs_still_run_the_trainer_checks() -> None:
    """The scene source's checks and the trainer's both run (cooperative ``__post_init__``)."""
    for cls in (ILConfig, RWMConfig, PPOConfig):
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.batch_size: expected >= 1"):
            cls(batch_size=0)
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.val_max_scenes"):
            cls(val_max_scenes=0)


def test_derived_data_live_beside_the_split() -> None:
    assert split_data_dir("root", DataKind.LABELS, "s") == Path("root/labels/s")
    label = LabelConfig(data_root="root", split="s")
    assert label.label_dir == Path("root/labels/s")
    assert label.cache_dir == Path("root/metric_cache/s")
    rwm = RWMConfig(data_root="root", split="a", val_split="b")
    assert (rwm.train_labels, rwm.val_labels) == (Path("root/labels/a"), Path("root/labels/b"))
    report = ReportConfig(data_root="root", split="t")
    assert report.feature_cache_dir == str(Path("root/features/t"))
    assert report.label_dir == Path("root/labels/t")
    with pytest.raises(ValueError, match="SubmitConfig.split: not set"):
        SubmitConfig(split=None, check="x.pkl").data_dir(DataKind.LABELS)


def test_report_labels_the_scenes_it_reads() -> None:
    report = ReportConfig(
        data_root="root",
        split="t",
        source="navsim",
        navsim_root="/nav",
        maps_root="/maps",
        split_file="f.yaml",
        sensor_cache="/s",
        max_scenes=3,
    )
    label = _label_config(report, Path("out"), None)
    keys = (*SOURCE_KEYS, "sensor_cache", "max_scenes")
    assert {k: getattr(label, k) for k in keys} == {k: getattr(report, k) for k in keys}
    assert SubmitConfig().scene_settings().keys() == set(SOURCE_KEYS) | {"sensor_cache"}


def test_every_command_finds_a_splits_metric_caches_in_one_place() -> None:
    """Label and training's validation used ``metric_cache/<split>`` for a NAVSIM split, eval ``navsim-<split>``."""
    embedded = [EvalConfig(data_root="r", split="s"), LabelConfig(data_root="r", split="s")]
    assert {c.metric_caches() for c in embedded} == {Path("r/metric_cache/s")}
    assert ILConfig(data_root="r").metric_caches("s") == Path("r/metric_cache/s")
    nav = {"source": "navsim", "navsim_root": "/nav", "data_root": "r"}
    navsim = [EvalConfig(**nav, split="test"), LabelConfig(**nav, split="test")]
    assert {c.metric_caches() for c in navsim} == {Path("r/metric_cache/navsim-test")}
    assert LabelConfig(**nav, split="test").cache_dir == Path("r/metric_cache/navsim-test")
    assert PPOConfig(**nav).metric_caches("test") == Path("r/metric_cache/navsim-test")
