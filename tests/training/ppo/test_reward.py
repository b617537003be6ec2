"""The reward PPO maximises: the reward model's sub-scores aggregated with the configured weights, penalties."""

from __future__ import annotations

import pytest
import torch

from irl_vla.scoring.aggregation import AggregationConfig
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from irl_vla.training.ppo.config import RewardConfig
from irl_vla.training.ppo.reward import RewardFunction, RewardModel


class Fixed:
    """Returns the sub-scores it holds."""

    def __init__(self, sub: torch.Tensor) -> None:
        self.sub = sub

    def predict_sub_scores(self, features, trajectories):  # type: ignore[no-untyped-def]
        return self.sub


def _sub(**values: float) -> torch.Tensor:
    sub = torch.ones(1, 1, NUM_SUB_SCORES)
    sub[..., SubScore.EC] = float("nan")
    for name, v in values.items():
        sub[..., SubScore[name]] = v
    return sub


def test_reward_is_epdms_with_configured_weights_and_hard_penalties() -> None:
    traj = torch.zeros(1, 1, 8, 3)
    sub = _sub(EP=0.5, NC=0.4, LK=0.0)
    assert isinstance(Fixed(sub), RewardModel)
    plain = RewardFunction(Fixed(sub), RewardConfig())({}, traj)
    # EPDMS: NC * (5 EP + 5 TTC + 2 LK + 2 HC) / 14, EC undefined drops out
    assert float(plain.reward) == pytest.approx(0.4 * (5 * 0.5 + 5 + 0 + 2) / 14)
    torch.testing.assert_close(plain.reward, plain.epdms)
    weights = AggregationConfig(weights={"EP": 1.0, "TTC": 0.0, "LK": 0.0, "HC": 0.0, "EC": 0.0})
    only_ep = RewardFunction(Fixed(sub), RewardConfig(aggregation=weights))({}, traj)
    assert float(only_ep.reward) == pytest.approx(0.4 * 0.5)
    penalised = RewardFunction(Fixed(sub), RewardConfig(collision_penalty=1.0, offroad_penalty=2.0))({}, traj)
    assert float(penalised.reward) == pytest.approx(float(plain.epdms) - 1.0)  # NC 0.4 < 0.5; DAC 1 passes
    offroad = RewardFunction(Fixed(_sub(DAC=0.0)), RewardConfig(offroad_penalty=2.0))({}, traj)
    assert float(offroad.reward) == pytest.approx(-2.0)


def test_a_predicted_red_light_violation_is_penalised_and_a_negative_penalty_refused() -> None:
    traj = torch.zeros(1, 1, 8, 3)
    sub = _sub(TLC=0.2)  # every other sub-score passes
    plain = RewardFunction(Fixed(sub), RewardConfig())({}, traj)
    assert float(plain.reward) == pytest.approx(0.2)  # TLC multiplies
    penalised = RewardFunction(Fixed(sub), RewardConfig(red_light_penalty=1.5, collision_penalty=1.0))({}, traj)
    assert float(penalised.reward) == pytest.approx(0.2 - 1.5)  # NC passes; TLC 0.2 < 0.5 is a violation
    passing = RewardFunction(Fixed(_sub(TLC=0.6)), RewardConfig(red_light_penalty=1.5))({}, traj)
    assert float(passing.reward) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="TLC"):
        RewardConfig(red_light_penalty=-1.0)


def test_a_wrong_shape_or_a_missing_required_sub_score_is_refused() -> None:
    traj = torch.zeros(1, 2, 8, 3)
    with pytest.raises(ValueError, match="shape"):
        RewardFunction(Fixed(_sub()), RewardConfig())({}, traj)
    with pytest.raises(ValueError, match="NaN"):
        RewardFunction(Fixed(_sub(NC=float("nan"))), RewardConfig())({}, torch.zeros(1, 1, 8, 3))
