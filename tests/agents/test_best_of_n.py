"""Best-of-N: the agent plans the candidate of highest learned reward among all of the policy's samples."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from irl_vla.agents.best_of_n import BestOfNAgent, BestOfNAgentConfig
from irl_vla.agents.registry import AGENTS, make_agent
from irl_vla.agents.state_anchoring import DEFAULT_JERK_WEIGHT, anchor_plan
from irl_vla.data.enums import SE2Index
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.models.reward.heads import HeadKey
from irl_vla.models.reward.loss import RewardKey
from irl_vla.models.reward.selection import SelectionConfig
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from tests.fixtures import build_straight_scene

K, T = 3, 8


class FakePlanner(nn.Module):
    """K straight modes when deterministic; K random lateral drifts when stochastic (noise from the generator)."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = SimpleNamespace(num_poses=T)
        self.weight = nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, features: dict, stochastic: bool = False, generator: torch.Generator | None = None) -> dict:
        modes = torch.zeros(1, K, T, 3)
        modes[..., SE2Index.X] = torch.linspace(1.0, 16.0, T)
        if stochastic:
            assert not self.training  # sampled chains run in eval mode
            drift = torch.randn(1, K, 1, generator=generator) * 2.0
            modes[..., SE2Index.Y] = drift * torch.linspace(0.1, 1.0, T)
        else:
            modes[..., SE2Index.Y] = torch.tensor([0.5, -0.3, 0.8])[None, :, None] * torch.linspace(0.1, 1.0, T)
        return {"modes": modes}


class FakeReward(nn.Module):
    """Reward = -(final lateral offset - target)^2: the best candidate ends nearest ``target`` [m]."""

    def __init__(self, target: float, reads_future: bool = False) -> None:
        super().__init__()
        self.target = target
        self.reads_future = reads_future
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def encode_scene(self, features: dict) -> Any:
        return features

    def score_candidates(self, scene: Any, plans: torch.Tensor) -> dict:
        self.seen.append(plans.shape[1])
        sub = torch.ones(*plans.shape[:2], NUM_SUB_SCORES)  # (1, N, S): sure of everything but NC left of y = 0
        sub[..., SubScore.NC] = torch.where(plans[..., -1, SE2Index.Y] > 0, 1.0, 0.5)
        return {RewardKey.REWARD: -((plans[..., -1, SE2Index.Y] - self.target) ** 2), HeadKey.SUB_SCORES: sub}


def agent(
    target: float = 0.0,
    draws: int = 4,
    seed: int = 0,
    deterministic: bool = True,
    anchor: bool = True,
    others: tuple[float, ...] = (),
    selection: SelectionConfig | None = None,
) -> BestOfNAgent:
    policy = SimpleNamespace(
        model=FakePlanner(),
        features=lambda inputs: {},
        device=torch.device("cpu"),
        sensor_config=SensorConfig.build_no_sensors,
    )
    builders = SimpleNamespace(batch=lambda scenes: {}, sensor_config=SensorConfig.build_no_sensors)
    reward = SimpleNamespace(model=FakeReward(target), builders=builders)
    members = [SimpleNamespace(model=FakeReward(o), builders=builders) for o in others]
    return BestOfNAgent(
        policy,  # type: ignore[arg-type]
        reward,  # type: ignore[arg-type]
        ensemble_models=members,  # type: ignore[arg-type]
        selection=selection,
        draws=draws,
        include_deterministic=deterministic,
        seed=seed,
        anchor_to_state=anchor,
    )


@pytest.mark.parametrize("target", [0.0, 0.8, -2.0])
def test_picks_the_candidate_of_highest_learned_reward(target: float) -> None:
    scene = build_straight_scene()
    a = agent(target)
    cands = a.compute_candidates(scene.get_agent_input(), scene)
    assert len(cands) == (4 + 1) * K  # four chains and the deterministic modes
    expected = -((cands.poses[:, -1, SE2Index.Y] - target) ** 2)
    np.testing.assert_allclose(cands.scores, expected, rtol=1e-5, atol=1e-6)
    plan = a.compute_trajectory(scene.get_agent_input(), scene)
    np.testing.assert_allclose(plan.poses, cands.poses[int(np.argmax(expected))])
    assert a.reward.model.seen[-1] == len(cands)  # all candidates scored together


def test_candidates_are_scored_as_executed_anchored_to_the_ego_state() -> None:
    # the reward model must judge (and the agent execute) the plans refitted to the ego's motion, as agent=vla
    # executes its plan; raw modes ignore the ego's speed, so each frame's plan would jump (HC, EC fail)
    scene = build_straight_scene()
    x = scene.get_agent_input()
    raw = agent(anchor=False).compute_candidates(x, scene)
    a = agent()
    anchored = a.compute_candidates(x, scene)
    ego = x.current
    times = DEFAULT_SAMPLING.times
    expected = np.stack(
        [anchor_plan(p, times, ego.ego_velocity, ego.ego_acceleration, DEFAULT_JERK_WEIGHT) for p in raw.poses]
    )
    np.testing.assert_allclose(anchored.poses, expected, atol=1e-5)
    assert np.abs(anchored.poses - raw.poses).max() > 0.1  # the fake's modes ignore the ego's speed
    np.testing.assert_allclose(anchored.scores, -(anchored.poses[:, -1, SE2Index.Y] ** 2), rtol=1e-5, atol=1e-6)
    assert not BestOfNAgentConfig(anchor_to_state=False).anchor_to_state  # the switch reaches the config


def test_noise_is_seeded_by_seed_and_scene_token() -> None:
    scene = build_straight_scene()
    first = agent(seed=3).compute_candidates(scene.get_agent_input(), scene).poses
    again = agent(seed=3).compute_candidates(scene.get_agent_input(), scene).poses
    other = agent(seed=4).compute_candidates(scene.get_agent_input(), scene).poses
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[K:], other[K:])  # the sampled ones differ, the deterministic modes do not
    np.testing.assert_array_equal(first[:K], other[:K])


def test_needs_the_scene_and_is_privileged() -> None:
    scene = build_straight_scene()
    with pytest.raises(ValueError, match="needs the scene"):
        agent().compute_trajectory(scene.get_agent_input(), None)
    assert AGENTS["vla_best_of_n"].privileged


def test_registry_settings_and_missing_reward_checkpoint() -> None:
    built = make_agent({"name": "vla_best_of_n", "checkpoint": "ck", "draws": 2, "include_deterministic": False})
    assert isinstance(built, BestOfNAgent) and (built.draws, built.include_deterministic) == (2, False)
    with pytest.raises(ValueError, match="agent.reward_checkpoint"):
        built.reward  # noqa: B018
    with pytest.raises(ValueError, match="no candidates"):
        BestOfNAgentConfig(name="vla_best_of_n", draws=0, include_deterministic=False)


def test_refuses_a_reward_model_that_reads_the_logged_future() -> None:
    a = agent()
    a.reward.model.reads_future = True
    with pytest.raises(ValueError, match="log.s future"):
        a.rewards(build_straight_scene(), np.zeros((2, 8, 3), dtype=np.float32))


def test_an_ensemble_picks_by_its_mean_less_its_spread() -> None:
    # members that want the plan to end at 0.0, 0.8 and 1.6 m left: the mean favours 0.8, the spread grows away
    # from the middle; the plan maximises mean - lcb * std over the members' rewards
    scene = build_straight_scene()
    x = scene.get_agent_input()
    plain = agent(0.0).compute_candidates(x, scene)
    y = plain.poses[:, -1, SE2Index.Y]
    rewards = np.stack([-((y - t) ** 2) for t in (0.0, 0.8, 1.6)])  # (M, N)
    a = agent(0.0, others=(0.8, 1.6), selection=SelectionConfig(lcb=2.0))
    cands = a.compute_candidates(x, scene)
    np.testing.assert_allclose(cands.scores, rewards.mean(0) - 2.0 * rewards.std(0), rtol=1e-5, atol=1e-5)
    plan = a.compute_trajectory(x, scene)
    np.testing.assert_allclose(plan.poses, cands.poses[int(np.argmax(cands.scores))])
    assert len(a.members) == 3 and all(m.model.seen == [len(cands)] * 2 for m in a.members)
    mean = agent(0.0, others=(0.8, 1.6)).compute_candidates(x, scene)
    np.testing.assert_allclose(mean.scores, rewards.mean(0), rtol=1e-5, atol=1e-5)


def test_the_gate_ranks_unsure_candidates_last() -> None:
    # the fake is unsure of NC (0.5) for plans ending right of the lane centre: gated, they rank after the rest
    scene = build_straight_scene()
    x = scene.get_agent_input()
    cands = agent(-2.0, selection=SelectionConfig(gate=0.9)).compute_candidates(x, scene)
    y = cands.poses[:, -1, SE2Index.Y]
    assert (y <= 0).any() and (y > 0).any()
    reward = -((y + 2.0) ** 2)
    drop = 1.0 + reward.max() - reward.min()  # below every candidate that passes
    np.testing.assert_allclose(cands.scores, reward - np.where(y > 0, 0.0, drop), rtol=1e-5, atol=1e-5)
    assert agent(-2.0, selection=SelectionConfig(gate=0.9)).compute_trajectory(x, scene).poses[-1, SE2Index.Y] > 0


def test_a_lower_confidence_bound_needs_an_ensemble() -> None:
    with pytest.raises(ValueError, match="agent.ensemble"):
        BestOfNAgentConfig(name="vla_best_of_n", selection=SelectionConfig(lcb=1.0))
    built = make_agent({"name": "vla_best_of_n", "checkpoint": "ck", "ensemble": ["a", "b"], "selection": {"lcb": 1}})
    assert isinstance(built, BestOfNAgent) and built.ensemble == ["a", "b"] and built.selection.lcb == 1.0
