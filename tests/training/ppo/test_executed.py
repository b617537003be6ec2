"""PPO scores the plan the agent executes: the batched torch refit equals the agent's, and the reward sees it."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from irl_vla.agents.state_anchoring import anchor_plan
from irl_vla.data.enums import SE2Index
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.training.ppo.config import RewardConfig
from irl_vla.training.ppo.executed import EGO_STATUS_KEY, StateAnchoring
from irl_vla.training.ppo.reward import RewardFunction
from irl_vla.training.ppo.update import collect_rollout
from tests.training.ppo.helpers import ProgressReward, tiny_module

TIMES = 0.5 * np.arange(1, 9)


def _ego_status(batch: int, generator: torch.Generator) -> Tensor:
    status = torch.randn(batch, 4, len(EgoStatusIndex), generator=generator)  # (B, H, D)
    status[..., EgoStatusIndex.VELOCITY_X] = 5 + 5 * status[..., EgoStatusIndex.VELOCITY_X].abs()
    return status


def test_batched_anchoring_equals_the_agents_refit_pose_by_pose() -> None:
    generator = torch.Generator().manual_seed(0)
    plans = torch.randn(3, 5, len(TIMES), 3, generator=generator) * torch.tensor([10.0, 2.0, 0.5])  # (B, N, T, 3)
    plans[0, 0, :, SE2Index.HEADING] = torch.linspace(2.8, 3.6, len(TIMES))  # crosses +-pi: unwrapped as the agent
    plans[0, 0, :, SE2Index.HEADING] = torch.atan2(
        torch.sin(plans[0, 0, :, SE2Index.HEADING]), torch.cos(plans[0, 0, :, SE2Index.HEADING])
    )
    status = _ego_status(3, generator)
    out = StateAnchoring(TIMES, jerk_weight=1.0)(plans, status)
    for b in range(3):
        current = status[b, -1].double().numpy()
        velocity = current[[EgoStatusIndex.VELOCITY_X, EgoStatusIndex.VELOCITY_Y]]
        acceleration = current[[EgoStatusIndex.ACCELERATION_X, EgoStatusIndex.ACCELERATION_Y]]
        for n in range(5):
            want = anchor_plan(plans[b, n].double().numpy(), TIMES, velocity, acceleration, 1.0)
            np.testing.assert_allclose(out[b, n].numpy(), want, atol=2e-4)


class _Recording(ProgressReward):
    """The progress reward, keeping the trajectories it was asked to score."""

    def __init__(self) -> None:
        self.seen: list[Tensor] = []

    def predict_sub_scores(self, features: dict[str, Tensor], trajectories: Tensor) -> Tensor:
        self.seen.append(trajectories.clone())
        return super().predict_sub_scores(features, trajectories)


def test_the_reward_scores_the_anchored_plans_and_the_raw_expert() -> None:
    module, features, targets = tiny_module(samples_per_anchor=2)
    b = targets["trajectory"].shape[0]
    features = {**features, EGO_STATUS_KEY: _ego_status(b, torch.Generator().manual_seed(1))}
    times = 0.5 * np.arange(1, module.policy.planner.num_poses + 1)
    anchoring = StateAnchoring(times, jerk_weight=1.0)
    runs = {}
    for name, anchor in (("raw", None), ("anchored", anchoring)):
        model = _Recording()
        rollout = collect_rollout(
            module,
            features,
            features,
            targets["trajectory"],
            RewardFunction(model, RewardConfig()),
            torch.Generator().manual_seed(0),
            anchor,
        )
        runs[name] = (model.seen[0], rollout)
    raw, anchored = runs["raw"][0], runs["anchored"][0]
    torch.testing.assert_close(anchored[:, :-1], anchoring(raw[:, :-1], features[EGO_STATUS_KEY]))
    torch.testing.assert_close(anchored[:, -1], targets["trajectory"])  # the expert's log is not refitted
    assert not torch.allclose(anchored[:, :-1], raw[:, :-1])
    # same samples, so only the scoring differs
    torch.testing.assert_close(runs["raw"][1].chains, runs["anchored"][1].chains)


def test_anchoring_without_the_ego_status_is_refused_naming_the_key() -> None:
    module, features, targets = tiny_module(samples_per_anchor=2)
    features = {k: v for k, v in features.items() if k != EGO_STATUS_KEY}
    times = 0.5 * np.arange(1, module.policy.planner.num_poses + 1)
    try:
        collect_rollout(
            module,
            features,
            features,
            targets["trajectory"],
            RewardFunction(ProgressReward(), RewardConfig()),
            torch.Generator().manual_seed(0),
            StateAnchoring(times, 1.0),
        )
    except ValueError as error:
        assert EGO_STATUS_KEY in str(error)
    else:
        raise AssertionError("expected a ValueError")
