"""Candidate sets: perturbations of a plan, their order and sources, deterministic random draws."""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.enums import SE2Index
from irl_vla.labeling.candidates import Perturbation, PerturbationConfig, build_candidates, perturb
from irl_vla.labeling.store import CandidateSource

DT = 0.5


def straight(speed: float = 10.0, t: int = 8) -> np.ndarray:
    times = np.arange(1, t + 1) * DT
    return np.stack([speed * times, np.zeros(t), np.zeros(t)], axis=1)


def test_no_perturbation_is_the_plan() -> None:
    rng = np.random.default_rng(0)
    plan = np.cumsum(rng.uniform(0, 2, (8, 3)), axis=0) * [1, 0.2, 0.01]
    np.testing.assert_allclose(perturb(plan, Perturbation(), DT), plan, atol=1e-12)


def test_speed_scale_time_scales_the_path_and_extrapolates() -> None:
    plan = straight()
    np.testing.assert_allclose(perturb(plan, Perturbation(speed_scale=0.0), DT), 0.0, atol=1e-12)
    half = perturb(plan, Perturbation(speed_scale=0.5), DT)
    np.testing.assert_allclose(half[:, SE2Index.X], plan[:, SE2Index.X] / 2)
    double = perturb(plan, Perturbation(speed_scale=2.0), DT)
    np.testing.assert_allclose(double[:, SE2Index.X], plan[:, SE2Index.X] * 2)  # beyond 4 s: the last velocity


def test_lateral_offset_ramps_to_the_left_and_heading_offset_rotates() -> None:
    plan = straight()
    left = perturb(plan, Perturbation(lateral_offset=2.0), DT)
    np.testing.assert_allclose(left[:, SE2Index.Y], 2.0 * np.arange(1, 9) / 8)
    np.testing.assert_allclose(left[:, SE2Index.X], plan[:, SE2Index.X])
    assert np.all(left[:, SE2Index.HEADING] > 0)  # it now heads left of x
    turned = perturb(plan, Perturbation(heading_offset=0.1), DT)
    np.testing.assert_allclose(np.arctan2(turned[:, SE2Index.Y], turned[:, SE2Index.X]), 0.1)
    np.testing.assert_allclose(turned[:, SE2Index.HEADING], 0.1)


def test_candidate_order_sources_and_deterministic_draws() -> None:
    cfg = PerturbationConfig(speed_scales=[0.5], lateral_offsets=[1.0], heading_offsets=[], random=3)
    a, b = cfg.draw(0, "tok"), cfg.draw(0, "tok")
    assert a == b and len(a) == cfg.count == 5
    assert cfg.draw(0, "other")[2:] != a[2:] and cfg.draw(1, "tok")[2:] != a[2:]
    vocab = np.zeros((2, 8, 3))
    samples = np.ones((3, 8, 3))
    cands = build_candidates(straight(), vocab, a, DT, samples)
    assert cands.plans.shape == (1 + 2 + 3 + 5, 8, 3)
    want = [CandidateSource.EXPERT] + [CandidateSource.VOCABULARY] * 2 + [CandidateSource.POLICY_SAMPLE] * 3
    want += [CandidateSource.PERTURBATION] * 5
    assert cands.sources.tolist() == [int(s) for s in want]
    np.testing.assert_array_equal(cands.plans[0], straight())


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="speed_range"):
        PerturbationConfig(speed_range=[2.0, 1.0])
    with pytest.raises(ValueError, match="random"):
        PerturbationConfig(random=-1)
