"""The closed-loop runner on the embedded world's env: a crash that ends the episode, an expert that completes."""

from __future__ import annotations

import numpy as np
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
    # the collision ends it (minimum-speed checkpoints passed before it may be listed too)
    assert result.infractions[-1].kind is InfractionKind.COLLISION_VEHICLE
    assert [i.kind for i in result.infractions[:-1]] == [InfractionKind.MIN_SPEED] * (len(result.infractions) - 1)
    assert 0.0 < result.route_completion < 100.0
    slow = np.prod([1 - 0.3 * (1 - i.value / 100) for i in result.infractions[:-1]])
    assert result.driving_score == pytest.approx(result.route_completion * 0.6 * slow)
    assert result.status == "Failed - Agent collided"


def test_expert_completes_its_route_with_no_infraction(env: EmbeddedEnv) -> None:
    runner = ClosedLoopRunner(env, EnvExpertAgent(env), ClosedLoopConfig(sub_score_stride=4))
    (result,) = runner.run(["parked_cars/0"]).results
    assert result.termination is TerminationReason.ROUTE_COMPLETED
    # no infraction but, possibly, a minimum-speed checkpoint: it slows past the parked cars (Bench2Drive success)
    assert [i for i in result.infractions if i.kind is not InfractionKind.MIN_SPEED] == []
    assert result.success and result.route_completion == 100.0
    assert result.extra["window_errors"] == []
    if result.extra["windows_scored"]:
        assert result.extra["sub_scores_mean"]["NC"] == 1.0


def test_a_seeded_episode_is_recorded_identically_twice(env: EmbeddedEnv, tmp_path) -> None:
    arrays = []
    for run in ("a", "b"):
        config = ClosedLoopConfig(sub_scores=False, seed=3)
        out = ClosedLoopRunner(env, ConstantVelocityAgent(), config, output_dir=tmp_path / run).run(["cut_in/0"])
        arrays.append(np.load(out.episodes[0].record_arrays, allow_pickle=False))
    for key in ("time", "ego_pose", "plan", "ego_trace", "route_completion"):
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)
