"""``irl-vla bench closed_loop``: steps/s of the embedded closed-loop env (``EmbeddedEnv``).

One route with at least ``min_reactive`` reactive road users (vehicles driving by IDM among the others, not life
beside the road nor parked cars); the agent is a route follower (the route's centreline ahead at a steady speed),
so the measurement is the env's own cost. Records:

* ``env_steps_no_sensors_<interval>`` for each replanning interval: env steps/s with no sensors (the observation
  is the ego history), vectorised road users (the env's default) and the per-user loop (``vectorised=false``,
  the recorder's) side by side; ``sim_steps_per_s`` counts the 10 Hz world steps; every rate also as thread CPU
  time (``cpu_*``), the better estimate of one free core on a shared machine. The route follower reads no
  observation, and the env builds one only when it is read: ``obs_read_*`` also read each step's (its history
  frames built, as for a learned agent);
* ``env_steps_default_rig``: env steps/s with the default camera rig at the current frame (2 Hz replanning), each
  step's observation read (its cameras rendered).

Resets (scenario build and expert warm-up) are outside the timed steps: an episode that ends is reset untimed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irl_vla.benchmarks.timing import record
from irl_vla.common.config import require_at_least
from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.envs.env import ResetOption
from sim_bridges.embedded.env import EmbeddedEnv, EmbeddedEnvConfig
from sim_bridges.embedded.render.rig import RigConfig
from sim_bridges.embedded.world import DT, World

SUITE = "closed_loop"


@dataclass
class ClosedLoopBenchConfig:
    """Sizes of the closed-loop benchmark (``configs/bench/closed_loop.yaml``).

    Attributes:
        route: the route driven (``<family>/<seed>``).
        min_reactive: the route's scenario must hold at least this many reactive road users.
        replan_intervals: replanning intervals measured without sensors [s] (0.1: one world step per env step).
        steps: timed env steps per repeat without sensors.
        rig_steps: timed env steps per repeat with the camera rig.
        speed_fraction: the route follower's speed, a fraction of the speed limit.
    """

    route: str = "lead_vehicle/0"
    min_reactive: int = 30
    replan_intervals: list[float] = field(default_factory=lambda: [0.1, 0.5])
    steps: int = 100
    rig_steps: int = 10
    speed_fraction: float = 0.5

    def __post_init__(self) -> None:
        require_at_least(self, ("min_reactive", "steps", "rig_steps"), 1)
        if not 0 < self.speed_fraction <= 1:
            raise ValueError(f"bench.speed_fraction: expected in (0, 1], got {self.speed_fraction}")


def reactive_road_users(world: World) -> int:
    """Road users that drive by IDM among the others (not the ego, life beside the road or parked objects)."""
    return sum(1 for u in world.road_users if u.reactive and not u.background and not u.is_static)


def route_follower(env: EmbeddedEnv, speed: float) -> Trajectory:
    """The route's centreline ahead of the ego at ``speed`` [m/s], relative to the ego's rear axle."""
    route, ego = env.route, env.ego.rear_axle
    along = route.distances[np.argmin(np.hypot(*(route.poses[:, :2] - ego[:2]).T))]
    s = along + speed * DEFAULT_SAMPLING.times
    xy = np.stack([np.interp(s, route.distances, route.poses[:, c]) for c in (SE2Index.X, SE2Index.Y)], axis=1)
    heading = np.interp(s, route.distances, np.unwrap(route.poses[:, SE2Index.HEADING]))
    poses = absolute_to_relative(np.column_stack([xy, heading]), ego)
    return Trajectory(poses.astype(np.float32), DEFAULT_SAMPLING)


def _steps_per_second(
    env: EmbeddedEnv,
    cfg: ClosedLoopBenchConfig,
    steps: int,
    repeats: int,
    options: dict[Any, Any],
    read_observation: bool = False,
) -> tuple[float, float]:
    """Median env steps/s over ``repeats`` runs of ``steps`` steps (resets untimed): wall clock and thread CPU time.

    On a shared machine the CPU-time rate is the better estimate of one free core. The env builds an observation
    at its first read; ``read_observation`` reads each step's (as a learned agent does), inside the timed part.
    """
    env.reset(options=options)
    speed = cfg.speed_fraction * env.speed_limit
    wall_rates, cpu_rates = [], []
    for _ in range(repeats):
        wall = cpu = 0.0
        for _ in range(steps):
            plan = route_follower(env, speed)
            start, start_cpu = time.perf_counter(), time.thread_time()
            obs, _, terminated, truncated, _ = env.step(plan)
            if read_observation:
                _ = obs.ego_statuses
            wall += time.perf_counter() - start
            cpu += time.thread_time() - start_cpu
            if terminated or truncated:
                env.reset(options=options)
        wall_rates.append(steps / wall)
        cpu_rates.append(steps / cpu)
    return float(np.median(wall_rates)), float(np.median(cpu_rates))


def run(cfg: ClosedLoopBenchConfig, repeats: int) -> Iterator[dict[str, Any]]:
    """Yield one record per measurement."""
    options: dict[Any, Any] = {ResetOption.ROUTE: cfg.route}
    probe = EmbeddedEnv(EmbeddedEnvConfig(time_limit=600.0))
    probe.reset(options=options)
    reactive = reactive_road_users(probe.world)
    if reactive < cfg.min_reactive:
        raise ValueError(
            f"bench.route: {cfg.route} holds {reactive} reactive road users, fewer than bench.min_reactive="
            f"{cfg.min_reactive}"
        )
    common = {"route": cfg.route, "reactive_road_users": reactive, "road_users": len(probe.world.road_users)}
    for interval in cfg.replan_intervals:
        rates = {}
        for vectorised in (True, False):
            env_cfg = EmbeddedEnvConfig(replan_interval=interval, time_limit=600.0, vectorised=vectorised)
            rates[vectorised] = _steps_per_second(EmbeddedEnv(env_cfg), cfg, cfg.steps, repeats, options)
        env_cfg = EmbeddedEnvConfig(replan_interval=interval, time_limit=600.0)
        read_wall, read_cpu = _steps_per_second(EmbeddedEnv(env_cfg), cfg, cfg.steps, repeats, options, True)
        sim_steps = round(interval / DT)
        (wall, cpu), (loop_wall, loop_cpu) = rates[True], rates[False]
        yield record(
            SUITE,
            f"env_steps_no_sensors_{interval:g}s",
            items=cfg.steps,
            seconds=cfg.steps / wall,
            unit="env_steps",
            cpu_env_steps_per_s=round(cpu, 2),
            sim_steps_per_s=round(wall * sim_steps, 1),
            cpu_sim_steps_per_s=round(cpu * sim_steps, 1),
            loop_env_steps_per_s=round(loop_wall, 2),
            loop_cpu_env_steps_per_s=round(loop_cpu, 2),
            obs_read_env_steps_per_s=round(read_wall, 2),
            obs_read_cpu_env_steps_per_s=round(read_cpu, 2),
            replan_interval_s=interval,
            **common,
        )
    rig = RigConfig()
    sensors = SensorConfig(cameras={name: [3] for name in rig.calibrations()})
    env = EmbeddedEnv(EmbeddedEnvConfig(time_limit=600.0))
    # The cameras are rendered when the observation is read: read it (what an agent with cameras does).
    rig_options = {**options, ResetOption.SENSOR_CONFIG: sensors}
    wall, cpu = _steps_per_second(env, cfg, cfg.rig_steps, repeats, rig_options, read_observation=True)
    yield record(
        SUITE,
        "env_steps_default_rig",
        items=cfg.rig_steps,
        seconds=cfg.rig_steps / wall,
        unit="env_steps",
        cpu_env_steps_per_s=round(cpu, 2),
        cameras=len(sensors.cameras),
        resolution=f"{rig.width}x{rig.height}",
        replan_interval_s=env.step_interval,
        **common,
    )
