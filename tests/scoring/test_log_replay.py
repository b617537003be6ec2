"""Log replay drops only the objects under the ego's box at t = 0 (navsim's rule), not those that reach it later."""

from __future__ import annotations

import numpy as np
import pytest
from shapely import intersects, polygons

from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scene_cache import build_scene_cache, overlapping_at_start
from irl_vla.scoring.scorer import Scorer
from irl_vla.scoring.states import POSE, footprint
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import Obj, make_cache, make_scene, straight_plan

# A wrong-way car in the ego's lane, 38 m ahead, at 10 m/s towards the ego (which drives east at 10 m/s): it hits
# the ego's front at about 1.6 s, then (in the log) drives on over the ego's starting footprint.
WRONG_WAY = Obj("vehicle", -1.7, -1.75, heading=np.pi, speed=10.0, token="wrong_way")
# A car under the ego's box at t = 0, driving along with it.
UNDER_EGO = Obj("vehicle", -38.0, -1.75, speed=10.0, token="under_ego")


def test_only_tracks_under_the_initial_box_at_t0_are_dropped() -> None:
    cache = build_scene_cache(make_scene(objects=(WRONG_WAY, UNDER_EGO)))
    assert cache.tracks.tokens == ["wrong_way"]
    # the wrong-way car does cover the ego's initial box later on: the old rule (any step) dropped it
    full = build_scene_cache(make_scene(objects=(WRONG_WAY,)))
    assert not overlapping_at_start(full.tracks, full.initial_state[POSE]).any()
    later = intersects(polygons(full.tracks.corners()[:, 0]), polygons(footprint(full.initial_state[POSE])[:4]))
    assert later[1:].any() and not later[0]


@pytest.mark.parametrize("scorer", [FastScorer(), ReferenceScorer()], ids=["fast", "reference"])
def test_a_collision_with_a_track_that_reaches_the_initial_box_later_is_scored(scorer: Scorer) -> None:
    cache = make_cache(objects=(WRONG_WAY,))
    result = scorer.score(cache, straight_plan(10.0)[None], DEFAULT_SAMPLING)
    assert result.sub_scores[0, SubScore.NC] == 0.0  # head-on with a moving vehicle at the ego's front
    assert result.score[0] == 0.0
