"""The closed-loop runner with a small fake env of the tests' own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irl_vla.agents.agent import Candidates
from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.agents.human import HumanAgent
from irl_vla.data.enums import MetaAction
from irl_vla.data.scene import Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.envs.env import ActionKind, Controls, ResetOption, TerminationReason
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.monitor import MonitorConfig
from irl_vla.envs.view import StepView
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner, correlation
from tests.envs.fake_env import FakeEnv


class ProgressReward:
    """A stand-in learned reward: how far a plan gets in 4 s, over 40 m."""

    sensor_config = SensorConfig(lidar_pc=[3])

    def __init__(self) -> None:
        self.scenes: list[Scene] = []

    def __call__(self, scene: Scene, plans: np.ndarray) -> np.ndarray:
        self.scenes.append(scene)
        return np.clip(plans[:, -1, 0] / 40.0, 0.0, 1.0)


class Recorder:
    """A viewer that keeps every view and asks to stop after ``stop_after`` updates; it shows the front camera."""

    sensor_config = SensorConfig(cameras={"cam_f0": [3]})

    def __init__(self, stop_after: int | None = None) -> None:
        self.views: list[StepView] = []
        self.stop_after = stop_after
        self.closed = False

    def update(self, view: StepView) -> bool:
        self.views.append(view)
        return self.stop_after is None or len(self.views) < self.stop_after

    def close(self) -> None:
        self.closed = True


def test_constant_velocity_crashes_into_the_parked_car(tmp_path) -> None:
    viewer = Recorder()
    runner = ClosedLoopRunner(
        FakeEnv(),
        ConstantVelocityAgent(),
        ClosedLoopConfig(sub_score_stride=2),
        viewers=[viewer],
        output_dir=tmp_path,
    )
    out = runner.run(["parked", "clear"])
    crash, clear = out.results
    assert crash.termination is TerminationReason.COLLISION
    assert [i.kind for i in crash.infractions] == [InfractionKind.COLLISION_VEHICLE]
    assert crash.infractions[0].other_id == "parked_0"
    # the car's rear bumper is at x = -22.25: the ego's nose (4.05 m ahead of the rear axle) reaches it at -26.3
    assert crash.route_completion == pytest.approx(100 * (-26.3 + 55) / 95, abs=2.0)
    assert crash.driving_score == pytest.approx(crash.route_completion * 0.6)
    assert crash.status == "Failed - Agent collided"
    assert clear.status == "Perfect" and clear.driving_score == 100.0 and clear.success
    # The viewer saw every step and the final state, with the collision listed at the end.
    assert viewer.closed and viewer.views[0].step == 0
    last_crash = [v for v in viewer.views if v.route_id == "parked"][-1]
    assert last_crash.termination == "collision" and last_crash.penalty == pytest.approx(0.6)
    assert [i.kind for i in last_crash.infractions] == [InfractionKind.COLLISION_VEHICLE]
    # Records and statistics on disk.
    stats = json.loads(out.statistics.read_text())
    assert [r["status"] for r in stats["_checkpoint"]["records"]] == ["Failed - Agent collided", "Perfect"]
    assert stats["_checkpoint"]["records"][0]["infractions"]["collisions_vehicle"]
    doc = json.loads(out.episodes[0].record_json.read_text())
    assert doc["infractions"][0]["kind"] == "collision_vehicle" and doc["driving_score"] == pytest.approx(
        crash.driving_score
    )
    arrays = np.load(out.episodes[0].record_arrays, allow_pickle=False)
    steps = len(arrays["time"])
    assert arrays["ego_pose"].shape == (steps, 3) and arrays["plan"].shape == (steps, 8, 3)
    assert arrays["ego_trace"].shape[1] == len(doc["trace_columns"])
    # The clear route's rolling windows were scored (every second window) and a straight drive scores well.
    clear_doc = json.loads(out.episodes[1].record_json.read_text())
    assert clear_doc["windows_scored"] >= 4 and clear_doc["window_errors"] == []
    assert clear_doc["sub_scores_mean"]["NC"] == 1.0 and clear_doc["sub_scores_mean"]["DAC"] == 1.0
    assert clear_doc["epdms_mean"] > 0.8


def test_learned_reward_is_recorded_and_compared_with_the_simulator(tmp_path) -> None:
    reward = ProgressReward()
    env = FakeEnv()
    runner = ClosedLoopRunner(env, ConstantVelocityAgent(), ClosedLoopConfig(), reward=reward, output_dir=tmp_path)
    out = runner.run(["clear"])
    # The env was asked for the agent's sensors and the reward's (LiDAR at the current frame).
    assert env.resets[0][1][ResetOption.SENSOR_CONFIG].lidar_pc == [3]
    with_viewer = FakeEnv()
    ClosedLoopRunner(
        with_viewer,
        ConstantVelocityAgent(),
        ClosedLoopConfig(sub_scores=False),
        reward=reward,
        viewers=[Recorder(stop_after=1)],
    ).run(["clear"])
    asked = with_viewer.resets[0][1][ResetOption.SENSOR_CONFIG]
    assert asked.lidar_pc == [3] and asked.cameras == {"cam_f0": [3]}  # and the viewer's camera
    scene = reward.scenes[0]
    assert len(scene.frames) == 4 and scene.map_api is env.map
    np.testing.assert_allclose(scene.current_frame.ego_status.ego_pose, [-55.0, -1.75, 0.0])
    arrays = np.load(out.episodes[0].record_arrays, allow_pickle=False)
    np.testing.assert_allclose(arrays["learned_reward"], 32.0 / 40.0, atol=1e-5)  # 8 m/s for 4 s
    rec = out.results[0].extra["reward_vs_simulator"]
    assert rec["pairs"] >= 10  # a 4 s window scored at every step but the last 4 s
    # ... but a constant reward cannot correlate: no coefficient is made up
    assert rec["pearson"] is None


def test_correlation_of_agreeing_and_constant_series() -> None:
    assert correlation([0.1, 0.5, 0.9, np.nan], [0.2, 0.6, 1.0, 0.3])["pearson"] == pytest.approx(1.0)
    assert correlation([0.1, 0.5, 0.9], [0.9, 0.5, 0.1])["spearman"] == pytest.approx(-1.0)
    assert correlation([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])["pearson"] is None


def test_viewer_quitting_stops_the_run_and_repetitions_reseed() -> None:
    viewer = Recorder(stop_after=3)
    env = FakeEnv()
    out = ClosedLoopRunner(
        env, ConstantVelocityAgent(), ClosedLoopConfig(episodes=2, seed=7, sub_scores=False), viewers=[viewer]
    ).run(["clear"])
    assert out.stopped_by_user and len(out.results) == 1
    assert out.statistics is None  # no output folder
    assert out.results[0].termination is TerminationReason.USER_STOPPED
    assert out.results[0].status == "Failed - Stopped by the user"
    assert [seed for seed, _ in env.resets] == [7]
    done = ClosedLoopRunner(env, ConstantVelocityAgent(), ClosedLoopConfig(episodes=2, seed=7, sub_scores=False))
    assert [r.repetition for r in done.run(["clear"]).results] == [0, 1]
    assert [seed for seed, _ in env.resets[1:]] == [7, 8]


def test_privileged_agents_and_unknown_routes_are_refused() -> None:
    with pytest.raises(ValueError, match="human.*privileged"):
        ClosedLoopRunner(FakeEnv(), HumanAgent())
    with pytest.raises(ValueError, match="no route 'nowhere'"):
        ClosedLoopRunner(FakeEnv(), ConstantVelocityAgent(), ClosedLoopConfig(sub_scores=False)).run(["nowhere"])


class BrakingDriver(ConstantVelocityAgent):
    """Brakes with controls; says it is stopping (the optional meta-action hook)."""

    def compute_controls(self, agent_input) -> Controls:
        return Controls(acceleration=-4.0, steering_angle=0.0)

    def predicted_meta_action(self) -> MetaAction:
        return MetaAction.STOP


def test_a_controls_env_is_driven_with_compute_controls_and_the_meta_action_reaches_the_viewer() -> None:
    env = FakeEnv()
    env.action_kind = ActionKind.CONTROLS
    viewer = Recorder()
    config = ClosedLoopConfig(sub_scores=False)
    out = ClosedLoopRunner(env, BrakingDriver(), config, viewers=[viewer]).run(["parked"])
    (result,) = out.results
    assert result.infractions == []  # braked from 8 m/s in 2 s, long before the parked car
    assert result.route_completion < 20.0 and result.termination is TerminationReason.TIME_LIMIT
    assert viewer.views[0].meta_action is MetaAction.STOP and viewer.views[0].plan is None
    with pytest.raises(ValueError, match="no compute_controls"):
        ClosedLoopRunner(env, ConstantVelocityAgent())


def test_the_runner_detects_what_the_env_does_not_report() -> None:
    env = FakeEnv(kinds=["collision_vehicle"])  # reports collisions only
    env.action_kind = ActionKind.CONTROLS
    config = ClosedLoopConfig(sub_scores=False, monitor=MonitorConfig(blocked_time=3.0))
    out = ClosedLoopRunner(env, BrakingDriver(), config).run(["clear"])
    (result,) = out.results
    assert [i.kind for i in result.infractions] == [InfractionKind.BLOCKED]  # stood still for more than 3 s
    assert result.termination is TerminationReason.BLOCKED and result.status == "Failed - Agent got blocked"
    assert 5.0 < result.infractions[0].time < 7.0  # the fake ego is below 0.1 m/s from about 3 s on
    # an env that reports every kind itself gets no second detection
    everything = ClosedLoopRunner(FakeEnv(), BrakingDriver(), config)
    assert everything._monitor(env.route, env.map) is None
    with pytest.raises(ValueError, match="red_light.*not detectable"):
        ClosedLoopConfig(detect=["red_light"])


def test_statistics_are_written_after_every_episode(tmp_path) -> None:
    seen = []

    def on_episode(_) -> None:
        seen.append(json.loads((tmp_path / "statistics.json").read_text()))

    config = ClosedLoopConfig(sub_scores=False)
    ClosedLoopRunner(FakeEnv(), ConstantVelocityAgent(), config, output_dir=tmp_path, on_episode=on_episode).run(
        ["parked", "clear"]
    )
    assert [d["_checkpoint"]["progress"] for d in seen] == [[1, 2], [2, 2]]
    assert [d["entry_status"] for d in seen] == ["Started", "Finished"]


class FanAgent(ConstantVelocityAgent):
    """Constant velocity, with three candidate plans at half, the same and 1.5 times its speed."""

    def compute_candidates(self, agent_input, scene=None) -> Candidates:
        plan = self.compute_trajectory(agent_input).poses
        poses = np.stack([plan * f for f in (0.5, 1.0, 1.5)]).astype(np.float32)  # (K, T, 3)
        return Candidates(poses, np.array([0.1, 0.7, 0.2], dtype=np.float32))


def test_candidates_and_their_learned_rewards_are_recorded_and_shown(tmp_path) -> None:
    viewer = Recorder()
    runner = ClosedLoopRunner(
        FakeEnv(time_limit=2.0),
        FanAgent(),
        ClosedLoopConfig(sub_scores=False),
        reward=ProgressReward(),
        viewers=[viewer],
        output_dir=tmp_path,
    )
    out = runner.run(["clear"])
    arrays = np.load(out.episodes[0].record_arrays, allow_pickle=False)
    steps = len(arrays["time"])
    assert arrays["candidates"].shape == (steps, 3, 8, 3)
    np.testing.assert_allclose(arrays["candidate_scores"][0], [0.1, 0.7, 0.2])
    np.testing.assert_allclose(arrays["candidate_rewards"][0], [0.4, 0.8, 1.0], atol=1e-5)  # 16, 32, 48 m of 40
    first = viewer.views[0]
    assert len(first.candidates) == 3 and first.learned_reward == pytest.approx(0.8, abs=1e-5)
    np.testing.assert_allclose(first.candidate_rewards, [0.4, 0.8, 1.0], atol=1e-5)
