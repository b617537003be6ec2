"""``irl-vla rollout [overrides]``: drive an agent in closed loop on a simulator, live view, driving-score table.

``sim=embedded`` (the default) makes the embedded world's env from ``configs/sim/embedded.yaml`` (its
``_target_``); this tool layer is the only place that names a backend. Short forms: ``viz=true``,
``record=<path.mp4|.gif|dir>``, ``routes=[<family>/<seed>,...]``, ``episodes=N``, ``reward=<checkpoint>`` stand for
``rollout.<key>``; ``agent=expert`` drives the env's own expert (privileged: it reads the world).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import numpy.typing as npt
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from irl_vla.agents.agent import Agent
from irl_vla.agents.registry import make_agent, register_agent_group
from irl_vla.common.command import Command
from irl_vla.common.progress import ProgressBar
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import Trajectory
from irl_vla.envs.env import ClosedLoopEnv
from irl_vla.envs.statistics import format_table
from irl_vla.evaluation.closed_loop import ClosedLoopConfig, ClosedLoopRunner, EpisodeOutputs

log = logging.getLogger(__name__)

#: Short forms: ``<key>=...`` on the command line means ``rollout.<key>=...``.
SHORT_KEYS = ("viz", "record", "routes", "episodes", "reward", "seeds")
#: The agent that drives with the env's own expert (the env must offer ``expert_plan()``).
EXPERT = "expert"


@dataclass
class RolloutConfig:
    """Settings of ``irl-vla rollout`` (``rollout.<key>=...``; ``irl-vla rollout --help`` lists them).

    Attributes:
        agent: the agent by name (``configs/agent``; ``agent=<name>`` also selects its settings), or ``expert``:
            the env's own expert driver (privileged).
        routes: route ids of the backend (embedded: ``<family>/<seed>``), a list or comma-separated; ``None``:
            every scenario family (or ``sim.families``) with seeds ``0 .. seeds - 1``.
        seeds: scenario seeds per family when ``routes`` is not given.
        episodes: repetitions of every route (``_rep<k>``).
        seed: base seed of the env's resets (follows ``run.seed``).
        viz: open the live viewer window (pygame; ``SDL_VIDEODRIVER=dummy`` for a virtual one).
        record: record the viewer's frames to ``*.mp4``, ``*.gif`` or a folder of PNGs (without a window when
            ``viz`` is false).
        reward: a reward-model checkpoint (``irl-vla train stage=rwm``) whose learned reward is shown beside the
            simulator's verdicts and compared with them; ``None``: none.
        runner: the runner's settings (sub-scores, candidates, minimum-speed penalty, ...).
        viewer: the viewer's settings (``irl_vla.viz.viewer.ViewerConfig`` keys: ``min_step_time``, ``start_paused``,
            ``record_fps``, ...); ``window`` and ``record`` come from ``viz`` and ``record``.
        output_dir: where records and statistics go; ``None``: the run directory
            ``<output_root>/rollout/<timestamp>/``.
        progress: show a progress bar over episodes (follows ``run.progress``).
    """

    agent: str = "constant_velocity"
    routes: Any = None  # list[str] | str | None
    seeds: int = 1
    episodes: int = 1
    seed: int = 0
    viz: bool = False
    record: str | None = None
    reward: str | None = None
    runner: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)
    viewer: dict[str, Any] = field(default_factory=dict)
    output_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.seeds < 1:
            raise ValueError(f"RolloutConfig: episodes and seeds must be >= 1, got {self.episodes}, {self.seeds}")

    def route_list(self) -> list[str] | None:
        """The routes asked for, or None."""
        if self.routes is None:
            return None
        items = self.routes.split(",") if isinstance(self.routes, str) else list(self.routes)
        routes = [str(r).strip() for r in items if str(r).strip()]
        if not routes:
            raise ValueError("rollout.routes: no route ids given")
        return routes


register_agent_group()
COMMAND = Command(
    "rollout",
    RolloutConfig,
    key="rollout",
    summary="Drive an agent in closed loop on a simulator (sim=embedded), optionally with the live viewer "
    "(viz=true) and a recording (record=path.mp4); writes per-route records and the leaderboard statistics JSON "
    "into the run directory and prints the driving-score table.",
)


def rewrite_args(args: list[str]) -> list[str]:
    """Short forms: ``<key>=`` for ``SHORT_KEYS`` and ``agent=expert`` mean ``rollout.<key>=``.

    ``carla.<key>=`` means ``sim.<key>=`` (the CARLA backend's settings); ``scenario=<family> [seed=<n>]`` means
    ``routes=[<family>/<n>]``.
    """
    out = []
    scenario = next((a.split("=", 1)[1] for a in args if a.startswith("scenario=")), None)
    for a in args:
        key = a.split("=", 1)[0]
        if key in SHORT_KEYS or a == f"agent={EXPERT}":
            out.append(f"rollout.{a}")
        elif key.startswith("carla."):
            out.append(f"sim.{a[len('carla.') :]}")
        elif scenario is not None and key in ("scenario", "seed"):
            continue
        else:
            out.append(a)
    if scenario is not None:
        seed = next((a.split("=", 1)[1] for a in args if a.startswith("seed=")), "0")
        out.append(f"rollout.routes=[{scenario}/{seed}]")
    return out


class EnvExpertAgent(Agent):
    """Drives with the env's own expert plan (privileged: it reads the world through the env)."""

    def __init__(self, env: Any) -> None:
        super().__init__()
        if not callable(getattr(env, "expert_plan", None)):
            raise ValueError(f"agent={EXPERT}: the env {type(env).__name__} has no expert (no expert_plan())")
        self.env = env

    def name(self) -> str:
        """Inherited, see superclass."""
        return EXPERT

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """Inherited, see superclass."""
        return self.env.expert_plan()


class RewardModelFunction:
    """A trained reward world model as the runner's ``RewardFunction``."""

    def __init__(self, path: str) -> None:
        from irl_vla.models.reward.checkpoint import load_reward_model

        self.loaded = load_reward_model(path)
        if self.loaded.model.reads_future:
            # a closed-loop scene has no logged future: every object would be masked out, silently
            raise ValueError(
                f"rollout reward={path}: this reward model reads the log's future (the other road users' logged "
                "futures: model.inputs.use_agent_futures; the future light states: use_red_lights), which a "
                "closed-loop rollout does not have; use one without them"
            )
        self.sensor_config: SensorConfig = self.loaded.builders.sensor_config()

    def __call__(self, scene: Scene, plans: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Inherited, see ``RewardFunction``."""
        import torch

        features = self.loaded.builders.batch([scene])
        with torch.no_grad():
            reward = self.loaded.model.reward(features, torch.as_tensor(plans, dtype=torch.float32)[None])
        return reward[0].double().cpu().numpy()


def make_env(sim: DictConfig) -> ClosedLoopEnv:
    """The backend of the ``sim`` group (its ``_target_``; ``name`` labels the option)."""
    node = OmegaConf.to_container(sim, resolve=True)
    assert isinstance(node, dict)
    name = node.pop("name", "?")
    if "_target_" not in node:
        raise ValueError(f"sim={name}: configs/sim/{name}.yaml has no _target_ (the env factory to call)")
    return instantiate(node)


def default_routes(env: Any, seeds: int) -> list[str]:
    """Every family of the env with seeds ``0 .. seeds - 1`` (the env's ``route_ids``)."""
    if not callable(getattr(env, "route_ids", None)):
        raise ValueError(f"rollout.routes: the env {type(env).__name__} lists no routes; give routes=[...]")
    return list(env.route_ids(range(seeds)))


def make_viewers(config: RolloutConfig) -> list[Any]:
    """The live viewer and/or recorder asked for (none without ``viz`` or ``record``)."""
    if not config.viz and config.record is None:
        return []
    from irl_vla.common.config import to_dataclass
    from irl_vla.viz.viewer import ViewerConfig, make_viewer

    settings = {**config.viewer, "window": config.viz, "record": config.record}
    return [make_viewer(to_dataclass(settings, ViewerConfig, where="rollout.viewer"))]


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="rollout")
def main(cfg: DictConfig) -> None:
    """Drive the routes, print the driving-score table and every path written."""
    config = COMMAND.load(cfg)
    config.runner.episodes, config.runner.seed = config.episodes, config.seed
    env = make_env(cfg.sim)
    try:
        if config.agent == EXPERT and cfg.get("agent") is None:
            agent: Agent = EnvExpertAgent(env)
        else:
            spec = config.agent if cfg.get("agent") is None else OmegaConf.to_container(cfg.agent, resolve=True)
            agent = make_agent(spec)  # type: ignore[arg-type]
        routes = config.route_list() or default_routes(env, config.seeds)
        reward = RewardModelFunction(config.reward) if config.reward is not None else None
        run = COMMAND.start(cfg, config)
        output = Path(config.output_dir) if config.output_dir is not None else run.dir
        total = len(routes) * config.episodes
        with ProgressBar(f"rollout {agent.name()}", config.progress, unit="episode") as bar:
            done = [0]

            def on_episode(_: EpisodeOutputs) -> None:
                done[0] += 1
                bar(done[0], total)

            runner = ClosedLoopRunner(
                env,
                agent,
                config.runner,
                reward=reward,
                viewers=make_viewers(config),
                output_dir=output,
                on_episode=on_episode,
            )
            outputs = runner.run(routes)
    finally:
        env.close()
    print(format_table(outputs.results, total))
    if outputs.stopped_by_user:
        print(f"stopped by the viewer after {len(outputs.results)} of {total} episodes")
    written: list[Path | str] = []
    for episode in outputs.episodes:
        written += [p for p in (episode.record_json, episode.record_arrays) if p is not None]
    if outputs.statistics is not None:
        written.append(outputs.statistics)
    if config.record is not None:
        written.append(config.record)
    run.finish(written)
