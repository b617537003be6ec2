"""``UnionSource``: two splits read as one, each token served by its own split; shared tokens refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from irl_vla.data.split import SceneLoader
from irl_vla.data.union_source import UnionSource, union_factory
from tests.helpers import tiny_split


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("union")
    return (
        tiny_split(root, "synth_navtrain", ["stop_and_go"], frame_interval=4, num_log_frames=24),
        tiny_split(root, "synth_navtest", ["cut_in"], frame_interval=4, num_log_frames=24),
    )


def test_union_serves_each_token_from_its_own_split(two_splits: tuple[Path, Path]) -> None:
    a, b = SceneLoader(two_splits[0]), SceneLoader(two_splits[1])
    union = union_factory([partial(SceneLoader, str(two_splits[0])), partial(SceneLoader, str(two_splits[1]))])()
    assert isinstance(union, UnionSource) and union.name == "synth_navtrain+synth_navtest"
    assert union.tokens == a.tokens + b.tokens and len(a.tokens) > 1 and len(b.tokens) > 1
    for loader in (a, b):
        token = loader.tokens[1]
        scene, own = union.get_scene(token), loader.get_scene(token)
        assert scene.token == token and scene.scene_metadata.log_name == own.scene_metadata.log_name
        assert [f.timestamp for f in scene.frames] == [f.timestamp for f in own.frames]
        assert union.log_hash(token) == loader.log_hash(token)
        previous = union.get_previous_scene(token)
        assert previous is not None and previous.token == loader.get_previous_scene(token).token  # type: ignore[union-attr]
    with pytest.raises(KeyError, match="unknown scene token 'nope'"):
        union.get_scene("nope")


def test_a_token_in_two_splits_is_refused_naming_it(two_splits: tuple[Path, Path]) -> None:
    same = partial(SceneLoader, str(two_splits[0]))
    first = SceneLoader(two_splits[0]).tokens[0]
    both = f"scene token {first} is in both split synth_navtrain and split synth_navtrain"
    with pytest.raises(ValueError, match=both):
        UnionSource([same, same])
    with pytest.raises(ValueError, match="no sources"):
        UnionSource([])
    assert union_factory([same]) is same
