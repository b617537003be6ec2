"""A fresh stage-1 run caches its text entries (instruction tokens, LM target) under its own tokenizer, and its
scene-only targets (the route centreline), in log order."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from irl_vla.data.features.dataset import FeatureDataset, LoadStatus
from irl_vla.data.split import SceneLoader
from irl_vla.training.il import prepare
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
