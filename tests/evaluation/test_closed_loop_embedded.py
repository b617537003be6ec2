"""The closed-loop runner on the embedded world's env: a crash that ends the episode, an expert that completes."""

from __future__ import annotations

import pytest

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.envs.env import TerminationReason
from irl_vla.envs.infractions import InfractionKind
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from tools.rollout import EnvExpertAgent


@pytest.fixture(scope="module")
def env() -> EmbeddedEnv:
    return EmbeddedEnv(EmbeddedEnvConfig(route_length=40.0, time_limit=15.0))


def test_constant_velocity_crashes_into_the_stopped_car_and_the_episode_ends(env: EmbeddedEnv) -> None:
    runner = ClosedLoopRunner(env, ConstantVelocityAgent(), ClosedLoopConfig(sub_scores=False))
    (result,) = runner.run(["stop_and_go/0"]).results
    assert result.termination is TerminationReason.COLLISION
    assert [i.kind for i in result.infractions] == [InfractionKind.COLLISION_VEHICLE]
    assert 0.0 < result.route_completion < 100.0
    assert result.driving_score == pytest.approx(result.route_completion * 0.6)
    assert result.status == "Failed - Agent collided"


def test_expert_completes_its_route_with_no_infraction(env: EmbeddedEnv) -> None:
    runner = ClosedLoopRunner(env, EnvExpertAgent(env), ClosedLoopConfig(sub_score_stride=4))
    (result,) = runner.run(["parked_cars/0"]).results
    assert result.termination is TerminationReason.ROUTE_COMPLETED
    assert result.infractions == [] and result.status == "Perfect" and result.driving_score == 100.0
    assert result.extra["window_errors"] == []
    if result.extra["windows_scored"]:
        assert result.extra["sub_scores_mean"]["NC"] == 1.0
