"""The embedded closed-loop env: the free ego's controller, episodes, gymnasium conformance, recorded logs unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path as Path_

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hydra.utils import instantiate
from omegaconf import OmegaConf

from irl_vla.data.enums import AgentClass, SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.log_io import log_to_bytes
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.data.vehicle import PACIFICA
from irl_vla.envs.env import ClosedLoopEnv, Controls, ResetOption, TerminationReason
from irl_vla.envs.info import InfoKey
from irl_vla.envs.infractions import InfractionKind
from irl_vla.envs.trace import TraceIndex
from irl_vla.scoring.simulation import SimulationConfig
from scenarios.registry import load_families
from sim_bridges.embedded.ego_control import FreeEgo
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from sim_bridges.embedded.generate import GenerateConfig, Task, generate_log
from sim_bridges.embedded.gym_env import EmbeddedGymEnv, make_vector_env
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.road_users import RoadUser

#: Tracking bounds of the LQR-driven free ego [m]: one plan over its 4 s, and replanning every 0.5 s for 8 s.
ONE_PLAN_LATERAL, ONE_PLAN_LONGITUDINAL = 0.3, 0.1
REPLAN_LATERAL, REPLAN_LONGITUDINAL = 0.3, 0.3

#: sha256 of generate_log's record (12 frames, frame interval 2, base seed 0) per family, from before the free
#: ego existed. A change here means the recorded splits changed: regenerate them on purpose or undo the change.
#: numpy's float64 arctan2, arctan, tan, exp, log and power take their AVX-512 code where the CPU has it, whose
#: last bits differ: the logs are reproducible per kind of CPU, so each kind has its hashes (the same code at
#: 3714c02 gives the first ones with ``NPY_DISABLE_CPU_FEATURES`` naming the AVX-512 features, the second ones
#: without, on an AVX-512 machine).
GOLDEN_LOGS_BY_CPU = {
    False: {
        "cut_in": "dcb0e80f1e15692b0d6cb8d3f726324670a59d350ca1e514178acaecada215e1",
        "signalised_intersection": "0bb03ef9dafa81c5476c123b4c90ad63bd26385ba31cd30da5e2583ee822b1f7",
    },
    True: {
        "cut_in": "3cc47c968a9851d6b6609455d25333e9942d21a2701930e8d9d5b12b22f3498e",
        "signalised_intersection": "5fde58e83047d705d961bbde9aa29cf20d7e3597e8c36e04321eacee0dcf66fe",
    },
}
GOLDEN_LOGS = GOLDEN_LOGS_BY_CPU[bool(np._core._multiarray_umath.__cpu_features__.get("AVX512_SKX"))]


def _arc_path(radius: float = 60.0) -> Path:
    theta = np.linspace(-0.5, 3.0, 2000)
    return Path(np.stack([radius * np.sin(theta), radius * (1 - np.cos(theta))], axis=1))


def _free_ego(path: Path, s: float, speed: float) -> FreeEgo:
    user = RoadUser("ego", AgentClass.VEHICLE, PACIFICA.length, PACIFICA.width, PACIFICA.height, path, s=s, speed=speed)
    return FreeEgo.take_over(user, SimulationConfig())


def _plan_along(path: Path, ego: FreeEgo, speed: float) -> Trajectory:
    """The path ahead of the ego's rear axle at ``speed``, relative to it."""
    s, _ = path.project(ego.rear_axle[None, :2])
    poses = path.pose_at(s[0] + speed * DEFAULT_SAMPLING.times)
    return Trajectory(absolute_to_relative(poses, ego.rear_axle).astype(np.float32), DEFAULT_SAMPLING)


def _constant_velocity(speed: float) -> Trajectory:
    poses = np.zeros((DEFAULT_SAMPLING.num_poses, 3), dtype=np.float32)
    poses[:, SE2Index.X] = speed * DEFAULT_SAMPLING.times
    return Trajectory(poses, DEFAULT_SAMPLING)


def test_controller_tracks_one_plan_within_bounds() -> None:
    path = _arc_path()
    ego = _free_ego(path, 40.0, 10.0)
    ego.follow(_plan_along(path, ego, 10.0), "test")
    errors = []
    for i in range(40):
        ego.advance(0.1)
        ref = ego.tracker.reference[0, i + 1]
        d = ego.rear_axle[:2] - ref[:2]
        h = ref[SE2Index.HEADING]
        errors.append((-d[0] * np.sin(h) + d[1] * np.cos(h), d[0] * np.cos(h) + d[1] * np.sin(h)))
    lateral, longitudinal = np.abs(np.array(errors)).max(axis=0)
    assert lateral < ONE_PLAN_LATERAL and longitudinal < ONE_PLAN_LONGITUDINAL


def test_controller_replanning_every_half_second_stays_on_the_curve() -> None:
    path, speed, s0 = _arc_path(), 10.0, 40.0
    ego = _free_ego(path, s0, speed)
    start = s0 - PACIFICA.rear_axle_to_center
    for k in range(16):
        ego.follow(_plan_along(path, ego, speed), "test")
        for _ in range(5):
            ego.advance(0.1)
        s, lateral = path.project(ego.rear_axle[None, :2])
        assert abs(lateral[0]) < REPLAN_LATERAL
        assert abs(s[0] - (start + speed * 0.5 * (k + 1))) < REPLAN_LONGITUDINAL


def test_controls_drive_the_bicycle() -> None:
    ego = _free_ego(_arc_path(), 40.0, 10.0)
    ego.hold(-3.0, 0.0)
    for _ in range(50):
        ego.advance(0.1)
    assert ego.speed == 0.0  # braked to a stop, never backwards
    ego = _free_ego(_arc_path(), 40.0, 5.0)
    heading = ego.rear_axle[SE2Index.HEADING]
    ego.hold(0.0, 0.2)
    for _ in range(10):
        ego.advance(0.1)
    assert ego.rear_axle[SE2Index.HEADING] > heading + 0.1  # steering left turns left


@pytest.fixture(scope="module")
def families():
    return load_families()


def test_env_is_a_closed_loop_env(families) -> None:
    env = EmbeddedEnv(EmbeddedEnvConfig(route_length=40.0), families)
    assert isinstance(env, ClosedLoopEnv)
    obs, info = env.reset(seed=0, options={ResetOption.ROUTE: "merge/0"})
    assert len(obs.ego_statuses) == 4 and np.allclose(obs.current.ego_pose, 0.0)
    history = np.stack([s.ego_pose for s in obs.ego_statuses])
    assert np.all(np.diff(history[:, SE2Index.X]) > 0)  # the expert's warm-up drove forward
    assert info[InfoKey.ROUTE].route_id == "merge/0" and info[InfoKey.TIME] == 0.0
    obs, _, terminated, truncated, info = env.step(_constant_velocity(obs.current.ego_velocity[0]))
    trace = info[InfoKey.EGO_TRACE]
    assert trace.shape == (5, len(TraceIndex)) and np.allclose(trace[:, TraceIndex.TIME], np.arange(1, 6) * 0.1)
    assert info[InfoKey.TIME] == pytest.approx(0.5) and 0 < info[InfoKey.ROUTE_COMPLETION] < 100
    assert not (terminated or truncated)


def test_sim_config_instantiates_the_env_with_the_dataclass_defaults() -> None:
    cfg = OmegaConf.load(Path_(__file__).parents[3] / "configs" / "sim" / "embedded.yaml")
    keys = {k: v for k, v in OmegaConf.to_container(cfg).items() if k not in ("_target_", "name")}
    default = EmbeddedEnvConfig()
    defaults = {f.name: getattr(default, f.name) for f in fields(EmbeddedEnvConfig) if f.name != "simulation"}
    assert keys == defaults
    env = instantiate(cfg, replan_interval=1.0, families=["merge"])
    assert isinstance(env, EmbeddedEnv) and env.step_interval == pytest.approx(1.0) and list(env.families) == ["merge"]
    with pytest.raises(Exception, match=r"unknown keys \['replan'\]"):
        instantiate(cfg, replan=1.0)


def test_traffic_reacts_to_the_free_ego(families) -> None:
    """The follower behind the ego slows when the agent brakes, not when it keeps its speed."""

    def follower_speed(acceleration: float) -> float:
        env = EmbeddedEnv(EmbeddedEnvConfig(action="controls", terminate_on_collision=False), families)
        env.reset(options={ResetOption.ROUTE: "lead_vehicle/0"})
        follower = next(u for u in env.world.road_users if u.track_token.startswith("bg_follower"))
        for _ in range(6):
            env.step(Controls(acceleration, 0.0))
        return follower.speed

    assert follower_speed(-3.0) < follower_speed(0.0) - 1.0


def test_the_ticks_lights_follow_the_worlds_as_they_change(families) -> None:
    """The tick's red and lit connectors (kept while the lights do not change) are the world's at every step."""
    env = EmbeddedEnv(EmbeddedEnvConfig(action="controls", replan_interval=0.1), families)
    env.reset(options={ResetOption.ROUTE: "signalised_intersection/5"})
    seen = set()
    for _ in range(200):  # 20 s: more than a phase
        env.step(Controls(-1.0, 0.0))  # waits where it is
        lights = env.world.red_connectors()
        tick = env.monitor._last_tick
        assert tick is not None and tick.red_connectors == frozenset(c for c, red in lights if red)
        assert tick.lit_connectors == frozenset(c for c, _ in lights)
        seen.add(tick.red_connectors)
    assert len(seen) > 1  # the lights changed meanwhile


def test_errors_name_the_route_and_setting(families) -> None:
    env = EmbeddedEnv(EmbeddedEnvConfig(), families)
    with pytest.raises(ValueError, match="no_such_family/3"):
        env.reset(options={ResetOption.ROUTE: "no_such_family/3"})
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_constant_velocity(5.0))
    with pytest.raises(ValueError, match="replan_interval"):
        EmbeddedEnvConfig(replan_interval=0.3)
    with pytest.raises(ValueError, match="families"):
        EmbeddedEnv(EmbeddedEnvConfig(families=["nope"]), families)
    env.reset(options={ResetOption.ROUTE: "merge/0"})
    with pytest.raises(TypeError, match="Trajectory"):
        env.step(Controls(0.0, 0.0))
    bad = _constant_velocity(5.0)
    bad.poses[3, SE2Index.Y] = np.nan
    with pytest.raises(ValueError, match=r"route merge/0 at t=0.0 s: plan 0 pose 3 has a non-finite y"):
        env.step(bad)


def test_constant_velocity_into_a_stopped_car_ends_in_a_collision(families) -> None:
    env = EmbeddedEnv(EmbeddedEnvConfig(), families)
    obs, _ = env.reset(options={ResetOption.ROUTE: "merge/0"})
    ego = env.ego
    stopped = RoadUser("stopped_car", AgentClass.VEHICLE, 4.6, 2.0, 1.6, ego.path, s=ego.s + 15.0, lateral=ego.lateral)
    env.world.road_users.append(stopped)
    speed = obs.current.ego_velocity[0]
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(_constant_velocity(speed))
        if terminated or truncated:
            break
    assert terminated and info[InfoKey.TERMINATION] is TerminationReason.COLLISION
    hits = [i for i in info[InfoKey.INFRACTIONS] if i.kind.is_collision]
    assert [(i.kind, i.other_id) for i in hits] == [(InfractionKind.COLLISION_VEHICLE, "stopped_car")]
    assert reward < 0
    with pytest.raises(RuntimeError, match="ended"):
        env.step(_constant_velocity(speed))


@pytest.mark.parametrize(("route", "length"), [("merge/0", 40.0), ("unsignalised_intersection/1", 80.0)])
def test_the_expert_plan_completes_the_route(families, route: str, length: float) -> None:
    """Also through a turn at a junction, where the free ego's drift is steered back to the lane centre."""
    env = EmbeddedEnv(EmbeddedEnvConfig(route_length=length, time_limit=25.0), families)
    env.reset(options={ResetOption.ROUTE: route})
    infractions = []
    for _ in range(40):
        _, _, terminated, truncated, info = env.step(env.expert_plan())
        infractions += info[InfoKey.INFRACTIONS]
        if terminated or truncated:
            break
    assert info[InfoKey.TERMINATION] is TerminationReason.ROUTE_COMPLETED
    assert info[InfoKey.ROUTE_COMPLETION] == 100.0
    # Nothing but the minimum-speed checkpoints (the expert drives a little below the traffic's mean speed).
    assert [i for i in infractions if i.kind is not InfractionKind.MIN_SPEED] == []


def test_seeded_episodes_are_deterministic(families) -> None:
    def run() -> tuple[np.ndarray, list[str]]:
        env = EmbeddedEnv(EmbeddedEnvConfig(), families)
        obs, info = env.reset(seed=7)
        traces, tokens = [], [info[InfoKey.FRAME].token]
        for _ in range(3):
            obs, _, _, _, info = env.step(_constant_velocity(obs.current.ego_velocity[0] * 0.8))
            traces.append(info[InfoKey.EGO_TRACE])
            boxes = info[InfoKey.FRAME].annotations.boxes
            tokens.append(hashlib.sha256(boxes.tobytes()).hexdigest())
        return np.concatenate(traces), [env.route_id, *tokens]

    (a, ids_a), (b, ids_b) = run(), run()
    assert ids_a == ids_b and np.array_equal(a, b)


def test_gymnasium_env_checker_passes() -> None:
    env = EmbeddedGymEnv(EmbeddedEnvConfig(families=["merge"], route_length=30.0, time_limit=2.0))
    check_env(env, skip_render_check=True)
    controls = EmbeddedGymEnv(EmbeddedEnvConfig(families=["merge"], action="controls", time_limit=1.0))
    check_env(controls, skip_render_check=True)


def test_gymnasium_observation_carries_the_current_cameras() -> None:
    sensors = SensorConfig(cameras={"cam_f0": [3]})
    env = EmbeddedGymEnv(EmbeddedEnvConfig(families=["merge"]), sensors, route="merge/0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    image = obs["cameras"]["cam_f0"]
    assert image.dtype == np.uint8 and image.std() > 0


def test_vector_env_runs_many_episodes() -> None:
    envs = make_vector_env(2, EmbeddedEnvConfig(families=["merge"], time_limit=1.0))
    envs.reset(seed=0)
    ended = 0
    action = np.tile(np.asarray(_constant_velocity(5.0).poses)[None], (2, 1, 1))
    for _ in range(6):
        _, _, terminated, truncated, _ = envs.step(action)
        ended += int(np.sum(terminated | truncated))
    envs.close()
    assert ended >= 4  # two-step episodes, reset automatically


@pytest.mark.parametrize("family", sorted(GOLDEN_LOGS))
def test_recorded_logs_are_unchanged(families, family: str) -> None:
    cfg = GenerateConfig(num_log_frames=12, workers=1, progress=False, backend="sequential")
    record, _, _ = generate_log(Task("golden", family, 0, families[family].hard), families[family], cfg, 2)
    assert hashlib.sha256(log_to_bytes(record)).hexdigest() == GOLDEN_LOGS[family]
