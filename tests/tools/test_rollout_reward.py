"""``rollout reward=<checkpoint>``: the reward world model scores each step's plan on the runner's scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner
from irl_vla.models.reward import checkpoint
from irl_vla.models.reward.config import load_reward_config
from irl_vla.models.reward.inputs import RewardInputBuilders, reward_builder_params
from irl_vla.models.reward.model import NORMALIZATION_KEYS, RewardWorldModel
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from tools.rollout import RewardModelFunction


@pytest.fixture
def untrained_tiny(monkeypatch: pytest.MonkeyPatch) -> checkpoint.LoadedRewardModel:
    """An untrained ``tiny`` reward model (unit normalisation) served by ``load_reward_model``."""
    torch.manual_seed(0)
    cfg = load_reward_config("tiny")
    model = RewardWorldModel(cfg)
    stats = {}
    for key in NORMALIZATION_KEYS:
        shape = getattr(model, key).shape
        stats[key] = torch.zeros(shape) if key.endswith("mean") else torch.ones(shape)
    model.set_normalization(stats)
    loaded = checkpoint.LoadedRewardModel(
        model.eval(), RewardInputBuilders.from_params(*reward_builder_params(cfg)), None
    )  # type: ignore[arg-type]
    monkeypatch.setattr(checkpoint, "load_reward_model", lambda path, **kw: loaded)
    return loaded


def test_the_reward_model_scores_every_step_on_the_embedded_world(untrained_tiny) -> None:
    reward = RewardModelFunction("unused")
    env = EmbeddedEnv(EmbeddedEnvConfig(route_length=30.0, time_limit=1.0))
    runner = ClosedLoopRunner(env, ConstantVelocityAgent(), ClosedLoopConfig(sub_scores=False), reward=reward)
    out = runner.run(["parked_cars/0"])
    # the env was asked for the sensors the reward model reads, and every step got a finite reward in [0, 1]
    assert env.sensor_config.lidar_pc == reward.sensor_config.lidar_pc
    learned = out.results[0].extra["learned_reward_mean"]
    assert learned is not None and 0.0 <= learned <= 1.0
    assert np.isfinite(learned)


def test_a_reward_model_that_reads_logged_futures_is_refused(untrained_tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    # in closed loop there is no logged future: such a model would see no object at all, silently
    monkeypatch.setattr(untrained_tiny.model.cfg.inputs, "use_agent_futures", True)
    with pytest.raises(ValueError, match="the other road users' logged futures"):
        RewardModelFunction("unused")


def test_a_reward_model_that_reads_future_light_states_is_refused(
    untrained_tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the red-light input paints the log's future light states: a rollout has none (rwm_v2 reads them)
    monkeypatch.setattr(untrained_tiny.model.cfg.inputs, "use_red_lights", True)
    with pytest.raises(ValueError, match="the future light states: use_red_lights"):
        RewardModelFunction("unused")
