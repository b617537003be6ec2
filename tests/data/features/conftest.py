"""A tiny embedded split (one log, a few scenes) with rendered sensors, shared by the feature tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from irl_vla.data.features.caching import split_tokenizer
from irl_vla.data.features.tokenizer import save_tokenizer
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.render.sensors import SensorRenderer


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("features_split")
    cfg = GenerateConfig(data_root=str(root), families=["lead_vehicle"], num_log_frames=20, workers=1, progress=False)
    generate_split("synth_navtest", SplitSpec(logs_per_family=1, frame_interval=2), cfg)
    return root / "synth_navtest"


@pytest.fixture(scope="session")
def source(split_dir: Path) -> partial[SceneLoader]:
    return partial(SceneLoader, str(split_dir), renderer=RenderedSensors(SensorRenderer))


@pytest.fixture(scope="session")
def tokenizer_path(split_dir: Path, source: partial[SceneLoader], tmp_path_factory: pytest.TempPathFactory) -> Path:
    loader = source()
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    save_tokenizer(split_tokenizer(loader, loader.tokens), path)
    return path
