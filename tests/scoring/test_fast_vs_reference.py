"""``FastScorer`` must agree exactly with ``ReferenceScorer`` on randomised scenes and plans."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import Obj, make_cache

NUM_SCENES = 10
PLANS_PER_SCENE = 200  # 2,000 scene/candidate pairs


def random_scene(rng: np.random.Generator, index: int):
    """Ego near or inside the junction; vehicles in lane, oncoming and crossing, static clutter, red lights."""
    ego_x = float(rng.uniform(-45.0, -5.0))
    ego_speed = float(rng.choice([0.0, rng.uniform(0.5, 4.0), rng.uniform(4.0, 14.0)]))
    objs = [
        Obj("vehicle", ego_x + rng.uniform(5, 30), -1.75 + rng.normal(0, 0.3), 0.0, rng.uniform(0, 8)),  # lead
        Obj("vehicle", ego_x + rng.uniform(10, 45), 1.75, np.pi, rng.uniform(0, 10)),  # oncoming
        Obj("vehicle", ego_x - rng.uniform(8, 20), -1.75, 0.0, rng.uniform(5, 14)),  # from behind
        Obj("vehicle", 1.75, rng.uniform(-30, -12), np.pi / 2, rng.uniform(0, 8)),  # crossing from the south
        Obj("traffic_cone", ego_x + rng.uniform(5, 25), rng.uniform(-6.5, -0.5)),
        Obj("barrier", ego_x + rng.uniform(5, 25), rng.uniform(-6.5, -0.5), rng.uniform(-0.3, 0.3)),
        Obj("pedestrian", ego_x + rng.uniform(5, 25), rng.uniform(-8, 2), np.pi / 2, rng.uniform(0, 1.5)),
    ]
    keep = rng.random(len(objs)) < 0.8
    red = tuple(c for c in ("c_w_e_0", "c_w_e_1") if rng.random() < 0.5)
    return make_cache(
        ego_x=ego_x,
        ego_y=float(rng.uniform(-6.0, -0.5)),
        ego_speed=ego_speed,
        objects=tuple(o for o, k in zip(objs, keep, strict=True) if k),
        red=red,
        token=f"rand{index}",
    )


def random_plans(rng: np.random.Generator, speed: float, n: int) -> np.ndarray:
    """Plans that stop, reverse, swerve off-road or into the oncoming lane, speed up, or wander ``(n, 8, 3)``."""
    t = DEFAULT_SAMPLING.times
    v = rng.uniform(-3.0, 16.0, n)  # negative: reversing
    v[rng.random(n) < 0.15] = 0.0  # stop in place
    accel = rng.uniform(-3.0, 2.0, n)
    x = np.maximum(speed, 0.0) * 0 + v[:, None] * t + 0.5 * accel[:, None] * t**2
    lateral = rng.uniform(-6.0, 6.0, n)
    y = lateral[:, None] * np.clip(t / rng.uniform(1.0, 4.0, n)[:, None], 0, 1) ** 2
    y += rng.normal(0, 0.3, (n, len(t)))
    heading = np.arctan2(np.gradient(y, axis=1), np.maximum(np.abs(np.gradient(x, axis=1)), 0.1))
    heading += rng.normal(0, 0.05, (n, len(t)))
    return np.stack([x, y, heading], axis=-1)


@pytest.mark.parametrize("seed", range(NUM_SCENES))
def test_fast_scorer_matches_reference_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cache = random_scene(rng, seed)
    plans = random_plans(rng, float(np.hypot(*cache.initial_state[3:5])), PLANS_PER_SCENE)
    ref = ReferenceScorer().score(cache, plans, DEFAULT_SAMPLING)
    fast = FastScorer().score(cache, plans, DEFAULT_SAMPLING)
    discrete = [s for s in SubScore if s not in (SubScore.EP, SubScore.EC)]
    np.testing.assert_array_equal(fast.sub_scores[:, discrete], ref.sub_scores[:, discrete])
    np.testing.assert_allclose(fast.sub_scores[:, SubScore.EP], ref.sub_scores[:, SubScore.EP], atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast.raw_progress, ref.raw_progress, atol=1e-6, rtol=0)


def test_randomised_cases_cover_every_outcome() -> None:
    """The randomised pairs exercise failures of every geometric sub-metric, not only clean drives."""
    seen = {s: set() for s in (SubScore.NC, SubScore.DAC, SubScore.DDC, SubScore.TLC, SubScore.TTC, SubScore.LK)}
    for seed in range(NUM_SCENES):
        rng = np.random.default_rng(seed)
        cache = random_scene(rng, seed)
        plans = random_plans(rng, float(np.hypot(*cache.initial_state[3:5])), PLANS_PER_SCENE)
        sub = FastScorer().score(cache, plans, DEFAULT_SAMPLING).sub_scores
        for s, values in seen.items():
            values.update(np.unique(sub[:, s]).tolist())
    for s, values in seen.items():
        assert 0.0 in values and 1.0 in values, f"{s.name} only took {sorted(values)}"
    assert 0.5 in seen[SubScore.NC] and 0.5 in seen[SubScore.DDC]
