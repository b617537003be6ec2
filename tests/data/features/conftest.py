"""A tiny embedded split (one log, a few scenes) with rendered sensors, shared by the feature tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from irl_vla.data.features.caching import split_tokenizer
from irl_vla.data.features.tokenizer import save_tokenizer
from irl_vla.data.rendered_sensors import RenderedSensors
from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.render.sensors import SensorRenderer
from tests.helpers import tiny_split


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_split(tmp_path_factory.mktemp("features_split"), "synth_navtest", ["lead_vehicle"], frame_interval=2)


@pytest.fixture(scope="session")
def source(split_dir: Path) -> partial[SceneLoader]:
    return partial(SceneLoader, str(split_dir), renderer=RenderedSensors(SensorRenderer))


@pytest.fixture(scope="session")
def tokenizer_path(split_dir: Path, source: partial[SceneLoader], tmp_path_factory: pytest.TempPathFactory) -> Path:
    loader = source()
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    save_tokenizer(split_tokenizer(loader, loader.tokens), path)
    return path
