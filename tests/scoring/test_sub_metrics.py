"""Hand-computed cases, one or more per sub-metric, checked on both scorer implementations."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scorer import Scorer
from irl_vla.scoring.simulation import simulate_plans
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import Obj, make_cache, shifted_plan, straight_plan

SCORERS = [FastScorer(), ReferenceScorer()]


def _score(scorer: Scorer, cache, plan: np.ndarray) -> np.ndarray:
    return scorer.score(cache, plan[None], DEFAULT_SAMPLING).sub_scores[0]


@pytest.fixture(params=SCORERS, ids=lambda s: s.name)
def scorer(request: pytest.FixtureRequest) -> Scorer:
    return request.param


def test_free_road_at_speed_scores_full(scorer: Scorer) -> None:
    sub = _score(scorer, make_cache(), straight_plan(10.0))
    for s in (SubScore.NC, SubScore.DAC, SubScore.DDC, SubScore.TLC, SubScore.TTC, SubScore.LK, SubScore.HC):
        assert sub[s] == 1.0, s.name
    assert sub[SubScore.EP] > 0.8  # PDM-Closed speeds up to the 13.9 m/s limit


def test_driving_into_a_stopped_car_gives_nc_0(scorer: Scorer) -> None:
    cache = make_cache(objects=(Obj("vehicle", -20.0, -1.75),))
    sub = _score(scorer, cache, straight_plan(10.0))
    assert sub[SubScore.NC] == 0.0
    assert sub[SubScore.TTC] == 0.0


def test_driving_into_a_cone_gives_nc_half(scorer: Scorer) -> None:
    cache = make_cache(objects=(Obj("traffic_cone", -20.0, -1.75),))
    assert _score(scorer, cache, straight_plan(10.0))[SubScore.NC] == 0.5


def test_being_rear_ended_is_not_at_fault(scorer: Scorer) -> None:
    # the ego creeps at 2 m/s, a car comes from 12 m behind at 12 m/s and runs into it
    cache = make_cache(ego_speed=2.0, objects=(Obj("vehicle", -40.0 - 12.0, -1.75, speed=12.0),))
    sub = _score(scorer, cache, straight_plan(2.0))
    assert sub[SubScore.NC] == 1.0


def test_leaving_the_road_gives_dac_0(scorer: Scorer) -> None:
    # w_in spans y in [-7, 0]; 4.5 m to the right takes the right-hand corners past y = -7
    assert _score(scorer, make_cache(), shifted_plan(10.0, -4.5))[SubScore.DAC] == 0.0
    assert _score(scorer, make_cache(), shifted_plan(10.0, -2.0))[SubScore.DAC] == 1.0


def test_oncoming_lane_progress_sets_ddc(scorer: Scorer) -> None:
    # about 3 m per second in the oncoming lane: 2 m <= worst 1 s progress < 6 m -> 0.5
    slow = make_cache(ego_speed=3.0)
    assert _score(scorer, slow, shifted_plan(3.0, 3.5, duration=1.0))[SubScore.DDC] == 0.5
    fast = make_cache(ego_speed=10.0)
    assert _score(scorer, fast, shifted_plan(10.0, 3.5))[SubScore.DDC] == 0.0
    assert _score(scorer, fast, straight_plan(10.0))[SubScore.DDC] == 1.0


def test_crossing_a_red_light_gives_tlc_0(scorer: Scorer) -> None:
    red = make_cache(ego_x=-25.0, red=("c_w_e_0", "c_w_e_1"))
    assert _score(scorer, red, straight_plan(10.0))[SubScore.TLC] == 0.0
    green = make_cache(ego_x=-25.0)
    assert _score(scorer, green, straight_plan(10.0))[SubScore.TLC] == 1.0


def test_stopping_while_pdm_closed_progresses_gives_low_ep(scorer: Scorer) -> None:
    cache = make_cache(ego_speed=2.0)
    sub = _score(scorer, cache, np.zeros((8, 3)))
    assert sub[SubScore.EP] < 0.2


def test_hard_braking_fails_history_comfort(scorer: Scorer) -> None:
    t = DEFAULT_SAMPLING.times
    stop_in_1s = np.stack([np.minimum(10 * t - 5 * t**2, 5.0), 0 * t, 0 * t], axis=1)
    assert _score(scorer, make_cache(), stop_in_1s)[SubScore.HC] == 0.0


def test_plan_that_flips_between_frames_fails_extended_comfort() -> None:
    cache = make_cache()
    keep = simulate_plans(straight_plan(10.0)[None], DEFAULT_SAMPLING, cache.initial_state)[0]
    brake = simulate_plans(straight_plan(4.0)[None], DEFAULT_SAMPLING, cache.initial_state)[0]
    assert extended_comfort(keep, keep, 0.5, 0.1) == 1.0
    assert extended_comfort(brake, keep, 0.5, 0.1) == 0.0
    with pytest.raises(ValueError, match="0.55"):
        extended_comfort(keep, keep, 1.0, 0.1)


def test_off_centre_for_two_seconds_gives_lk_0_but_not_in_a_junction(scorer: Scorer) -> None:
    far = make_cache(ego_x=-55.0)  # stays clear of the junction for 4 s
    assert _score(scorer, far, shifted_plan(10.0, 1.5))[SubScore.LK] == 0.0
    assert _score(scorer, far, shifted_plan(10.0, 0.3))[SubScore.LK] == 1.0
    # inside the junction box (x in [-10, 10]) the deviation does not count
    junction = make_cache(ego_x=-9.0, ego_speed=3.0)
    assert _score(scorer, junction, shifted_plan(3.0, 1.5))[SubScore.LK] == 1.0


def test_collisions_are_typed_with_the_object_as_first_seen(scorer: Scorer) -> None:
    # navsim keeps each track's first occurrence in the window and asks whether *that* object is stopped: a car
    # logged at rest at t = 0 that then runs into the ego from behind is a "stopped track" (at fault, NC = 0) ...
    cache = make_cache(ego_speed=2.0, objects=(Obj("vehicle", -40.0 - 12.0, -1.75, speed=12.0),))
    cache.tracks.velocities[0] = 0.0
    assert _score(scorer, cache, straight_plan(2.0))[SubScore.NC] == 0.0
    # ... while one first seen moving stays an active rear-ender whatever its speed at contact
    cache = make_cache(ego_speed=2.0, objects=(Obj("vehicle", -40.0 - 12.0, -1.75, speed=12.0),))
    cache.tracks.velocities[1:] = 0.0
    assert _score(scorer, cache, straight_plan(2.0))[SubScore.NC] == 1.0
