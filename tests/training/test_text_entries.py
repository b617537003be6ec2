"""A fresh stage-1 run caches its text entries (instruction tokens, LM target) under its own tokenizer, and its
scene-only targets (the route centreline), in log order."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch

from irl_vla.data.features.dataset import FeatureDataset, LoadStatus
from irl_vla.data.features.tokenizer import build_tokenizer, save_tokenizer
from irl_vla.data.split import SceneLoader
from irl_vla.training.il import SCENE_TEXTS, fill_text_entries, prepare, split_pass
from irl_vla.training.language_targets import LanguageTargetBuilder
from irl_vla.training.policy import TOKENIZER_ARTEFACT, builder_params, make_builders, model_config
from tests.training.conftest import il_config, model_doc


def _text_statuses(source: partial[SceneLoader], tokens: list[str], cache: Path, tokenizer: Path) -> set[LoadStatus]:
    features, targets = builder_params(model_config(model_doc("tiny")), ["cam_l0", "cam_f0", "cam_r0"])
    features = {n: p for n, p in features.items() if p.get("tokenizer") == TOKENIZER_ARTEFACT}
    targets = {n: p for n, p in targets.items() if p.get("tokenizer") == TOKENIZER_ARTEFACT}
    assert set(features) == {"navigation_instruction"} and set(targets) == {"lm_target"}
    feature_builders, target_builders = make_builders(features, targets, tokenizer)
    dataset = FeatureDataset(source, feature_builders, target_builders, tokens=tokens, cache_dir=cache)
    return {s for t in tokens for s in dataset.load(t)[1].values()}


def test_prepare_fills_the_text_entries_of_the_run_tokenizer(
    split_root: Path, source: partial[SceneLoader], tmp_path: Path
) -> None:
    cfg = il_config(split_root, str(tmp_path / "run"), cache_dir=str(tmp_path / "features"), stats_scenes=2)
    model_cfg = model_config(model_doc("tiny"))
    features, targets = builder_params(model_cfg, cfg.cameras)
    tokens = list(source().tokens)
    prepared = prepare(cfg, model_cfg, source, tokens, features, targets, tmp_path / "artefacts")
    tokenizer = tmp_path / "artefacts" / TOKENIZER_ARTEFACT
    assert tokenizer.read_bytes() == prepared.artefacts[TOKENIZER_ARTEFACT]
    # every scene's text entries are already in the cache (before: built by the first epoch, sample by sample)
    assert _text_statuses(source, tokens, tmp_path / "features", tokenizer) == {LoadStatus.CACHED}
    # and the route centreline target (scene only, no sensors), built in the same pass
    route = {"route_centerline": targets["route_centerline"]}
    _, route_builders = make_builders({}, route, None)
    dataset = FeatureDataset(source, [], route_builders, tokens=tokens, cache_dir=tmp_path / "features")
    assert {s for t in tokens for s in dataset.load(t)[1].values()} == {LoadStatus.CACHED}


class _CountingLoader:
    """A scene source that counts the scenes decoded through it."""

    decoded = 0

    def __init__(self, make: partial[SceneLoader]) -> None:
        self._inner = make()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_scene(self, token: str, sensors: Any = None) -> Any:
        _CountingLoader.decoded += 1
        return self._inner.get_scene(token, sensors)


def test_text_entries_from_the_split_pass_texts_equal_entries_built_from_scenes(
    source: partial[SceneLoader], tmp_path: Path
) -> None:
    model_cfg = model_config(model_doc("tiny"))
    features, targets = builder_params(model_cfg, ["cam_l0", "cam_f0", "cam_r0"])
    tokens = list(source().tokens)
    texts, _ = split_pass(source, tokens, model_cfg.inputs.num_poses, progress=False)
    assert set(texts) == set(tokens) and all(set(t) == set(SCENE_TEXTS) for t in texts.values())
    tokenizer = tmp_path / TOKENIZER_ARTEFACT
    save_tokenizer(build_tokenizer([t for by_builder in texts.values() for t in by_builder.values()]), tokenizer)
    cache = tmp_path / "features"
    route = {"route_centerline": targets["route_centerline"]}
    _, route_builders = make_builders({}, route, None)
    warm = FeatureDataset(source, [], route_builders, tokens=tokens, cache_dir=cache)
    assert all(warm.load(t)[1] for t in tokens)  # the scene-only target cached first, as `irl-vla cache` does

    counting = partial(_CountingLoader, source)
    _CountingLoader.decoded = 0
    built = fill_text_entries(counting, tokens, features, targets, tokenizer, str(cache), False, texts)
    assert built == len(tokens)
    assert _CountingLoader.decoded == 0  # every text entry encoded from its text: no scene decoded again
    # the entries hold what the builders compute from the scenes themselves
    text_features = {n: p for n, p in features.items() if p.get("tokenizer") == TOKENIZER_ARTEFACT}
    text_targets = {n: p for n, p in targets.items() if p.get("tokenizer") == TOKENIZER_ARTEFACT}
    feature_builders, target_builders = make_builders(text_features, text_targets, tokenizer)
    cached = FeatureDataset(source, feature_builders, target_builders, tokens=tokens, cache_dir=cache)
    fresh = FeatureDataset(source, feature_builders, target_builders, tokens=tokens)
    for token in tokens:
        sample, status = cached.load(token)
        assert set(status.values()) == {LoadStatus.CACHED}
        expected = fresh.load(token)[0]
        for key, value in {**expected.features, **expected.targets}.items():
            assert torch.equal({**sample.features, **sample.targets}[key], value), (token, key)
    # a second fill finds every entry current and writes nothing
    assert fill_text_entries(counting, tokens, features, targets, tokenizer, str(cache), False, texts) == 0
    # a token without its texts is built from its scene, as before
    _CountingLoader.decoded = 0
    other = tmp_path / "other.json"
    save_tokenizer(build_tokenizer(["another corpus", *texts[tokens[0]].values()]), other)
    assert fill_text_entries(counting, tokens, features, targets, other, str(cache), False, {}) == len(tokens)
    assert _CountingLoader.decoded == len(tokens)


def test_the_split_pass_reads_its_texts_and_trajectories_from_the_cache(
    source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    num_poses = model_config(model_doc("tiny")).inputs.num_poses
    tokens = list(source().tokens)
    counting = partial(_CountingLoader, source)
    plain = split_pass(source, tokens, num_poses, progress=False)
    cache = str(tmp_path / "features")
    _CountingLoader.decoded = 0
    first = split_pass(counting, tokens, num_poses, False, cache)
    assert _CountingLoader.decoded == len(tokens)
    _CountingLoader.decoded = 0
    second = split_pass(counting, tokens, num_poses, False, cache)
    assert _CountingLoader.decoded == 0  # a fresh run on a cached split decodes no scene
    for texts, trajectories in (first, second):
        assert texts == plain[0] and torch.equal(trajectories, plain[1])
    # a text builder whose text changed (its version bumped) makes the cached texts stale: decoded again
    monkeypatch.setattr(LanguageTargetBuilder, "version", LanguageTargetBuilder.version + 1)
    split_pass(counting, tokens, num_poses, False, cache)
    assert _CountingLoader.decoded == len(tokens)
