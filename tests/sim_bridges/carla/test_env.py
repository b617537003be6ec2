"""The CARLA env through the closed-loop runner, on a fake server (real carla value types, offline carla.Map)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory, TrajectorySampling
from irl_vla.envs.env import ClosedLoopEnv, ResetOption
from irl_vla.envs.info import InfoKey
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner
from sim_bridges.embedded.opendrive import carla_scenario, carla_scenario_ids

carla = pytest.importorskip("carla", reason="the carla client (extra 'carla') is not installed")

from sim_bridges.carla import coordinates as co  # noqa: E402
from sim_bridges.carla.env import CarlaEnv, CarlaEnvConfig  # noqa: E402
from tests.sim_bridges.carla.fake_server import FakeServer  # noqa: E402

ROUTE = "lead_vehicle/0"


def _env(server: FakeServer, **kwargs) -> CarlaEnv:
    config = CarlaEnvConfig(
        scenario_provider=carla_scenario, scenario_ids=carla_scenario_ids, time_limit=3.0, warmup_ticks=2, **kwargs
    )
    return CarlaEnv(config, client=server)


def test_reset_loads_the_exported_scenario_and_observes_with_the_agents_sensors() -> None:
    server = FakeServer()
    env = _env(server)
    assert isinstance(env, ClosedLoopEnv)
    sensors = SensorConfig(cameras={"cam_f0": [3]}, lidar_pc=[3])
    obs, info = env.reset(seed=0, options={ResetOption.ROUTE: ROUTE, ResetOption.SENSOR_CONFIG: sensors})
    assert len(server.generated) == 1 and "<OpenDRIVE>" in server.generated[0]
    route = info[InfoKey.ROUTE]
    np.testing.assert_allclose(info[InfoKey.FRAME].ego_status.ego_pose[:2], route.poses[0, :2], atol=0.05)
    assert len(obs.ego_statuses) == 4 and obs.cameras[-1]["cam_f0"].image.shape == (144, 256, 3)
    assert obs.lidars[-1] is not None and obs.lidars[-1].lidar_pc.shape[0] == 6
    assert all("cam_f0" in c for c in obs.cameras)  # every history frame has what any index may ask for
    assert server.world.settings.synchronous_mode
    env.close()
    assert not server.world.settings.synchronous_mode and not server.world.actors  # all destroyed, async again


def test_a_plan_is_tracked_and_the_ego_drives_along_the_route() -> None:
    server = FakeServer()
    env = _env(server)
    _, info = env.reset(seed=0, options={ResetOption.ROUTE: ROUTE})
    start = info[InfoKey.FRAME].ego_status.ego_pose.copy()
    sampling = TrajectorySampling(num_poses=8, interval_length=0.5)
    plan = Trajectory(np.column_stack([np.arange(1, 9) * 2.5, np.zeros(8), np.zeros(8)]).astype(np.float32), sampling)
    for _ in range(4):
        _, _, terminated, truncated, info = env.step(plan)
        assert not (terminated or truncated)
    pose = info[InfoKey.FRAME].ego_status.ego_pose
    travelled = float(np.hypot(*(pose[:2] - start[:2])))
    assert 3.0 < travelled < 12.0  # accelerating towards 5 m/s for 2 s
    heading_error = abs(np.remainder(pose[2] - start[2] + np.pi, 2 * np.pi) - np.pi)
    assert heading_error < 0.05 and info[InfoKey.ROUTE_COMPLETION] > 0
    assert info[InfoKey.EGO_TRACE].shape == (10, 9) and info[InfoKey.INFRACTIONS] == []
    assert info[InfoKey.LANE_INVASIONS] == []
    env.close()


def test_the_runner_drives_routes_on_the_fake_server_and_writes_statistics(tmp_path) -> None:
    server = FakeServer()
    env = _env(server)
    runner = ClosedLoopRunner(
        env, ConstantVelocityAgent(), ClosedLoopConfig(max_steps=4, sub_scores=False), output_dir=tmp_path
    )
    outputs = runner.run([ROUTE])
    env.close()
    assert len(outputs.results) == 1
    statistics = json.loads(outputs.statistics.read_text())
    assert statistics["_checkpoint"]["records"][0]["route_id"].startswith("RouteScenario_lead_vehicle/0")


def test_the_scenarios_road_users_and_light_states_reach_the_frames() -> None:
    server = FakeServer()
    env = _env(server)
    _, info = env.reset(seed=0, options={ResetOption.ROUTE: "cut_in/0"})
    scenario = carla_scenario("cut_in/0")
    spawned = [
        a for a in server.world.actors.values() if a.type_id.startswith("vehicle.") and a.id != env.episode.ego.id
    ]
    riders = [u for u in scenario.road_users if u.agent_class in ("vehicle", "bicycle")]
    assert len(spawned) == len(riders) > 0
    for actor, user in zip(spawned, riders, strict=True):
        assert getattr(actor, "autopilot", False) == (user.target_speed > 0)
        assert co.transform_to_se2(actor.get_transform())[:2] == pytest.approx(user.pose[:2], abs=0.5)
    boxes = info[InfoKey.FRAME].annotations.boxes
    assert len(boxes) > 0 and info[InfoKey.FRAME].annotations.names[0] == "vehicle"
    env.close()
    env = _env(server)
    _, info = env.reset(seed=0, options={ResetOption.ROUTE: "signalised_intersection/0"})
    lights = info[InfoKey.FRAME].traffic_lights
    expected = carla_scenario("signalised_intersection/0").light_connectors
    assert sorted(c for c, _ in lights) == sorted(c for cs in expected.values() for c in cs)
    assert all(red for _, red in lights)  # the fake's lights are red
    env.close()


def test_unknown_routes_and_bad_steps_are_refused() -> None:
    env = _env(FakeServer())
    with pytest.raises(ValueError, match=r"route 'Town99/route' is not <family>/<seed>"):
        env.reset(options={ResetOption.ROUTE: "Town99/route"})
    with pytest.raises(ValueError, match="no route 'route_7'"):
        env.reset(options={ResetOption.ROUTE: "route_7"})
    with pytest.raises(ValueError, match="not a multiple"):
        CarlaEnvConfig(replan_interval=0.12)
    env.close()


def test_the_rollout_command_line_reaches_the_carla_config() -> None:
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tools.rollout import rewrite_args

    args = rewrite_args(["sim=carla", "carla.host=10.0.0.5", "carla.port=3000", "scenario=merge", "seed=4", "viz=true"])
    assert args == ["sim=carla", "sim.host=10.0.0.5", "sim.port=3000", "rollout.viz=true", "rollout.routes=[merge/4]"]
    with initialize_config_module(config_module="configs", version_base="1.3"):
        cfg = compose("rollout", overrides=args)
    assert (cfg.sim.host, cfg.sim.port, list(cfg.rollout.routes)) == ("10.0.0.5", 3000, ["merge/4"])
    node = OmegaConf.to_container(cfg.sim, resolve=True)
    node.pop("_target_"), node.pop("name")
    config = CarlaEnvConfig(**{k: instantiate(v) if isinstance(v, dict) else v for k, v in node.items()})
    assert config.scenario_provider is carla_scenario and config.scenario_ids(range(1))[0].endswith("/0")
    assert set(node) == set(CarlaEnvConfig.__dataclass_fields__)  # every yaml key is a field and vice versa
