"""Bad input to the scorer and its caches gives errors that name the token, field or file."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from irl_vla.data.trajectory import DEFAULT_SAMPLING, TrajectorySampling
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheStore
from irl_vla.scoring.scene_cache import build_scene_cache, load_scene_cache, save_scene_cache
from tests.scoring.scenes import Obj, make_cache, make_scene, straight_plan


@pytest.fixture(scope="module")
def cache():
    return make_cache(objects=(Obj("vehicle", -20.0, -1.75, speed=5.0),), red=("c_w_e_0",))


def test_nan_or_infinite_poses_are_refused(cache) -> None:
    plan = straight_plan(10.0)
    plan[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"scene .*plan 0 pose 3 has a non-finite y"):
        FastScorer().score(cache, plan[None], DEFAULT_SAMPLING)
    plan[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        FastScorer().score(cache, plan[None], DEFAULT_SAMPLING)


def test_wrong_shape_and_sampling_are_refused(cache) -> None:
    with pytest.raises(ValueError, match=r"expected plans of shape \(K, 8, 3\)"):
        FastScorer().score(cache, straight_plan(10.0)[None, :, :2], DEFAULT_SAMPLING)
    ten = TrajectorySampling(num_poses=10, interval_length=0.5)
    with pytest.raises(ValueError, match=r"\(K, 10, 3\)"):
        FastScorer().score(cache, straight_plan(10.0)[None], ten)


def test_unknown_token_names_the_token(tmp_path) -> None:
    with pytest.raises(KeyError, match="no scene 'nope'"):
        MetricCacheStore(tmp_path).load("nope")


def test_short_scene_is_refused_with_its_token() -> None:
    with pytest.raises(ValueError, match="scoring needs 8 future frames"):
        build_scene_cache(make_scene(num_future=4, token="short"))


def test_cache_round_trip_scores_identically(cache, tmp_path) -> None:
    path = tmp_path / "c.npz"
    save_scene_cache(cache, path)
    back = load_scene_cache(path)
    plans = np.stack([straight_plan(10.0), straight_plan(3.0), straight_plan(12.0, lateral=1.0)])
    a = FastScorer().score(cache, plans, DEFAULT_SAMPLING).sub_scores
    b = FastScorer().score(back, plans, DEFAULT_SAMPLING).sub_scores
    np.testing.assert_array_equal(a, b)
    assert back.red_light_ids == ["c_w_e_0"] and back.tracks.tokens == cache.tracks.tokens


def test_corrupt_cache_file_names_the_file(cache, tmp_path) -> None:
    path = tmp_path / "c.npz"
    save_scene_cache(cache, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=str(path)):
        load_scene_cache(path)
