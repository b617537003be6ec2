"""A stage-1 policy's candidates in the labels: its deterministic modes and stochastic draws, and their EC scored
against the plan the policy output in the previous frame (what the simulator gives the policy had it output the
candidate now), not against a same-noise counterpart."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from irl_vla.data.split import SceneLoader
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.labeling.pipeline import run_label
from irl_vla.labeling.store import CandidateSource, read_label_shards
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheStore
from irl_vla.scoring.simulation import simulate_plans
from irl_vla.scoring.states import initial_state
from irl_vla.scoring.sub_scores import SubScore
from irl_vla.training.policy import load_policy
from tests import helpers
from tests.labeling.conftest import label_config

MODES = 4  # the tiny VLA's anchors


@pytest.fixture(scope="module")
def policy_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, partial[SceneLoader], Path]:
    """A one-log split, its camera-rendering source and a ``tiny`` VLA trained on it for 2 steps."""
    from irl_vla.training.il import run_il
    from tests.training.conftest import il_config, model_doc

    root = tmp_path_factory.mktemp("policy_labels")
    source = helpers.rendered_source(helpers.tiny_split(root, "synth_navtrain", ["stop_and_go"], 2), helpers.SMALL_RIG)
    run_il(il_config(root, str(root / "vla"), max_steps=2), model_doc("tiny"), source)
    return root, source, root / "vla"


def test_policy_candidates_and_their_ec_against_the_previous_output(
    policy_split: tuple[Path, partial[SceneLoader], Path],
) -> None:
    root, source, vla = policy_split
    cfg = label_config(
        root,
        "labels_policy",
        max_scenes=3,
        vocabulary_size=0,
        perturbations={"speed_scales": [], "lateral_offsets": [], "heading_offsets": [], "random": 0},
        policy_checkpoint=str(vla),
        policy_draws=1,
        policy_std_min=0.04,
    )
    run_label(cfg, source)
    labels = read_label_shards(cfg.label_dir)
    want = [CandidateSource.EXPERT] + [CandidateSource.POLICY_SAMPLE] * (2 * MODES)  # expert, modes, one draw
    assert labels.sources.tolist() == [want] * len(labels)

    policy, _ = load_policy(str(vla), architecture="vla")
    loader = source()
    caches = MetricCacheStore(cfg.cache_dir)
    scorer = FastScorer()
    checked = 0
    for i, token in enumerate(labels.tokens.tolist()):
        scene = loader.get_scene(token, policy.sensor_config())
        with torch.no_grad():
            out = policy.predict([scene.get_agent_input()])
        # the first MODES policy candidates are the deterministic modes, in anchor order
        np.testing.assert_allclose(labels.candidates[i, 1 : 1 + MODES], out["modes"][0].numpy(), atol=1e-5)
        previous = loader.get_previous_scene(token, policy.sensor_config())
        if previous is None:
            assert np.isnan(labels.sub_scores[i, :, SubScore.EC]).all()
            continue
        with torch.no_grad():
            before = policy.predict([previous.get_agent_input()])["trajectory"][0].numpy()  # (T, 3) its output
        ego = previous.current_frame.ego_status
        start = initial_state(ego.ego_pose, ego.ego_velocity, ego.ego_acceleration)
        plans = labels.candidates[i, 1:]  # (P, T, 3)
        prev_states = simulate_plans(
            np.repeat(before[None].astype(np.float64), len(plans), axis=0), DEFAULT_SAMPLING, start, scorer.simulation
        )
        states = scorer.score(caches.load(token), plans, DEFAULT_SAMPLING).states
        dt = (scene.current_frame.timestamp - previous.current_frame.timestamp) / 1e6
        ec = extended_comfort(states, prev_states, dt, scorer.simulation.dt, scorer.config.extended_comfort)
        np.testing.assert_array_equal(labels.sub_scores[i, 1:, SubScore.EC], ec)
        checked += 1
    assert checked >= 2


def test_policy_settings_are_recorded_and_checked(policy_split: tuple[Path, partial[SceneLoader], Path]) -> None:
    root, _, vla = policy_split
    cfg = label_config(root, "x", policy_checkpoint=str(vla), policy_std_min=0.04)
    assert cfg.record()["policy"] == {"modes": True, "std_min": 0.04, "ec_previous": "output"}
    assert "policy" not in label_config(root, "x").record()  # label directories without a policy still resume
    with pytest.raises(ValueError, match="policy_std_min"):
        label_config(root, "x", policy_std_min=0.0)
