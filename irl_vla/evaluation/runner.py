"""``irl-vla eval``: build missing metric caches, score agents on a split, write reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from irl_vla.agents.agent import AgentConfig, AgentContext
from irl_vla.agents.registry import AGENTS, make_agent, resolve_agent
from irl_vla.common.config_source import DataKind, SceneSelectionConfig
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.common.progress import ProgressBar
from irl_vla.data.source import SceneSources, SourceFactory
from irl_vla.data.split import embedded_sources, spread
from irl_vla.data.two_stage import TWO_STAGE_FILE, read_groups, two_stage_dir
from irl_vla.evaluation.open_loop import AgentEvaluator, AgentRun, evaluate_one_stage, evaluate_two_stage_agents
from irl_vla.evaluation.report import format_table, write_one_stage, write_two_stage
from irl_vla.scoring.aggregation import AggregationConfig
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.lqr import JERK_PENALTY_MATRICES, TrackerConfig
from irl_vla.scoring.metric_cache import MetricCacheStore, build_metric_cache
from irl_vla.scoring.reactive_traffic import TrafficMode
from irl_vla.scoring.reference_scorer import ReferenceScorer
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.scorer import Scorer, ScorerConfig
from irl_vla.scoring.simulation import SimulationConfig

SCORERS: dict[str, type[Scorer]] = {"fast": FastScorer, "reference": ReferenceScorer}


@dataclass
class EvalConfig(SceneSelectionConfig):
    """Settings of ``irl-vla eval`` (``eval.<key>=...``; ``irl-vla eval --help`` lists them with their defaults).

    The scene source's keys (``data_root``, ``navsim_root``, ``maps_root``, ``split_file``, ``sensor_cache``) are
    ``SceneSourceConfig``'s.

    Attributes:
        split: the split to score: ``synth_navtest`` (one stage) or ``synth_navhard`` (two stage).
        agents: agents by name (``configs/agent``), each with its yaml's settings; ``agent=<name>`` instead
            evaluates that one agent with its settings overridable as ``agent.<key>=...``.
        scorer: ``fast`` | ``reference`` (identical scores; the reference is slower).
        mode: ``auto`` (two-stage where ``<split>_two_stage`` exists), ``one_stage`` or ``two_stage``.
        max_scenes: score only N tokens (or two-stage groups) spread evenly over the split, the first and the last
            included (a split's head is its first family's logs); ``None``: all.
        workers: processes building metric caches, or CPUs of a local Ray instance (follows ``run.workers``).
        backend: where metric caches are built: ``sequential`` | ``process`` | ``ray`` (follows ``run.backend``).
        ray_address: with ``backend=ray``: ``None`` starts a local Ray instance, else a running cluster's address.
        human_penalty_filter: forgive sub-scores the logged human also fails (NAVSIM's filter).
        jerk_penalty_matrix: the tracker's speed fit: ``navsim`` (as the leaderboard runs it) or ``difference``
            (nuPlan's true jerk); metric caches always use ``navsim``.
        traffic: two-stage scoring: ``reactive`` (vehicles react to the plan, navsim's two-stage script) or
            ``non_reactive`` (log replay); one-stage scoring is always log replay.
        aggregation: how sub-scores become a score (the ``aggregation`` group: ``epdms`` or ``pdms``).
        output_dir: where the reports go; ``None``: the run directory
            ``<output_root>/eval/<split>/<timestamp>/`` (one folder per agent inside).
        progress: show progress bars (follows ``run.progress``).
        source: ``embedded`` or ``navsim`` (read ``<split>`` from a NAVSIM data root, one stage).
    """

    agents: Any = field(default_factory=lambda: ["constant_velocity", "human", "pdm_closed"])  # list[str]; one
    # name without brackets (eval.agents=constant_velocity) is read as a one-element list
    scorer: str = "fast"
    mode: str = "auto"
    workers: int = 2
    backend: str = "process"
    ray_address: str | None = None
    human_penalty_filter: bool = True
    jerk_penalty_matrix: str = "navsim"
    traffic: str = "reactive"
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    output_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.agents, str):
            self.agents = [self.agents]
        if not isinstance(self.agents, list | tuple) or not all(isinstance(a, str) and a for a in self.agents):
            raise ValueError(f"EvalConfig.agents: expected a list of agent names, got {self.agents!r}")
        if not self.agents:
            raise ValueError("EvalConfig.agents: empty; name at least one agent, e.g. eval.agents=[constant_velocity]")
        self.agents = list(self.agents)
        if self.jerk_penalty_matrix not in JERK_PENALTY_MATRICES:
            raise ValueError(
                f"EvalConfig.jerk_penalty_matrix: {self.jerk_penalty_matrix!r} is not one of {JERK_PENALTY_MATRICES}"
            )
        if self.traffic not in [m.value for m in TrafficMode]:
            raise ValueError(f"EvalConfig.traffic: {self.traffic!r} is not one of {[m.value for m in TrafficMode]}")
        if self.source == "navsim" and self.mode == "two_stage":
            raise ValueError("EvalConfig.mode: two-stage scoring reads embedded stage-2 scenes; use source=embedded")
        if self.scorer not in SCORERS:
            raise ValueError(f"EvalConfig.scorer: {self.scorer!r} is not one of {sorted(SCORERS)}")
        if self.mode not in ("auto", "one_stage", "two_stage"):
            raise ValueError(f"EvalConfig.mode: {self.mode!r} is not auto, one_stage or two_stage")


def make_scorer(
    name: str,
    human_penalty_filter: bool = True,
    jerk_penalty_matrix: str = "navsim",
    traffic: str = "non_reactive",
    aggregation: AggregationConfig | None = None,
) -> Scorer:
    """The scorer implementation called ``name``.

    ``jerk_penalty_matrix`` is the tracker's (``lqr.TrackerConfig``); ``traffic`` is ``non_reactive`` or ``reactive``;
    ``aggregation`` turns sub-scores into the score (default EPDMS).
    """
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; available: {sorted(SCORERS)}")
    simulation = SimulationConfig(tracker=TrackerConfig(jerk_penalty_matrix=jerk_penalty_matrix))
    config = ScorerConfig(
        human_penalty_filter=human_penalty_filter, traffic=traffic, aggregation=aggregation or AggregationConfig()
    )
    return SCORERS[name](config, simulation)


def _cached(
    source: SourceFactory | Path, root: Path, tokens: list[str], cfg: EvalConfig, previous: bool
) -> MetricCacheStore:
    """The store of ``tokens`` (and their previous-frame windows if ``previous``), building what is missing."""
    keys = [(t, False) for t in tokens] + ([(t, True) for t in tokens] if previous else [])
    bar = ProgressBar(f"metric cache {root.name}", cfg.progress, unit="scene", leave=False)
    build_metric_cache(source, root, keys, ExecutorConfig(cfg.backend, cfg.workers, cfg.ray_address), bar)
    bar.close()
    return MetricCacheStore(root)


def run_eval(
    cfg: EvalConfig,
    sources: SceneSources | None = None,
    agents: list[str | Mapping[str, Any] | AgentConfig] | None = None,
) -> tuple[str, list[Path]]:
    """Evaluate agents on ``cfg.split``; returns the printed table and the written paths.

    Each agent gets the scenes with exactly the sensors its ``get_sensor_config`` asks for.

    Args:
        cfg: settings.
        sources: opens the split's scenes (and its stage-2 scenes): ``irl-vla eval`` passes the embedded split
            with its renderer, or the NAVSIM reader. ``None`` reads the embedded split ``<data_root>/<split>``
            without a renderer (agents that read sensors are then refused).
        agents: the agents, by name or settings (``configs/agent``); ``None``: the names in ``cfg.agents``.
    """
    if cfg.output_dir is None:
        raise ValueError("EvalConfig.output_dir: not set (irl-vla eval sets it to the run directory)")
    data = Path(cfg.data_root)
    split_dir = data / cfg.split
    stage_two_dir = two_stage_dir(split_dir)
    mode = cfg.mode
    if sources is None:
        if cfg.source != "embedded":
            raise ValueError(f"run_eval: source={cfg.source} needs its reader (irl-vla eval passes it)")
        sources = embedded_sources(split_dir)
    if mode == "auto":
        mode = "two_stage" if sources.stage_two is not None else "one_stage"
    if mode == "two_stage" and sources.stage_two is None:
        raise ValueError(f"run_eval: two-stage scoring of {cfg.split} needs its stage-2 scenes ({stage_two_dir})")
    # unknown names and bad settings fail before any caching
    configs = [resolve_agent(a) for a in (cfg.agents if agents is None else agents)]
    factory: SourceFactory = sources.split
    loader = factory()
    # navsim: two-stage scoring with reactive traffic (eval.traffic), one-stage with log replay
    traffic = cfg.traffic if mode == "two_stage" else TrafficMode.NON_REACTIVE.value
    scorer = make_scorer(cfg.scorer, cfg.human_penalty_filter, cfg.jerk_penalty_matrix, traffic, cfg.aggregation)
    cache_root = data / DataKind.METRIC_CACHE
    if mode == "one_stage":
        tokens = list(loader.tokens) if cfg.max_scenes is None else spread(list(loader.tokens), cfg.max_scenes)
        # an agent that plans from the cache needs the previous frame's cache too for its EC plan
        needs_previous = any(AGENTS[c.name].agent.requires_metric_cache for c in configs)
        store = _cached(factory, cfg.metric_caches(), tokens, cfg, previous=needs_previous)

        def cache_of(token: str) -> SceneCache:
            return store.load(token)

    else:
        groups = read_groups(stage_two_dir / TWO_STAGE_FILE)
        groups = groups if cfg.max_scenes is None else spread(groups, cfg.max_scenes)
        assert sources.stage_two is not None
        stage_two = sources.stage_two()
        store = _cached(factory, cfg.metric_caches(), [g.orig for g in groups], cfg, previous=True)
        s2_tokens = [t for g in groups for pair in g.pairs for t in pair]
        store_two = _cached(sources.stage_two, cache_root / stage_two_dir.name, s2_tokens, cfg, previous=False)

        def cache_of(token: str) -> SceneCache:
            return store.load(token) if store.has(token) else store_two.load(token)

    summaries, paths = [], []
    context = AgentContext(metric_cache=cache_of)
    two_stage_runs: list[tuple[AgentRun, Path, dict[str, Any]]] = []
    for config in configs:
        name = config.name
        agent = make_agent(config, context)
        agent.initialize()
        evaluator = AgentEvaluator(agent, scorer, cache_of)
        sensors = agent.get_sensor_config()  # every scene comes with exactly these
        scene_of = partial(loader.get_scene, sensors=sensors)
        previous_of = partial(loader.get_previous_scene, sensors=sensors)
        out = Path(cfg.output_dir) / name
        meta = {
            "agent": name,
            "split": cfg.split,
            "scorer": cfg.scorer,
            "traffic": traffic,
            "aggregation": cfg.aggregation.name,
        }
        if mode == "one_stage":
            bar = ProgressBar(f"eval {name}", cfg.progress, leave=False)
            # NAVSIM splits pair EC frames as navsim does: only with a previous frame that is itself listed
            listed_only = cfg.source == "navsim"
            results = evaluate_one_stage(tokens, scene_of, previous_of, evaluator, bar, pair_listed_only=listed_only)
            summaries.append(write_one_stage(results, out, meta))
            bar.close()
        else:  # scored below, every agent group by group, so that each group's caches serve them all
            stage_two_of = partial(stage_two.get_scene, sensors=sensors)
            two_stage_runs.append((((scene_of, previous_of), stage_two_of, evaluator), out, meta))
        paths += [out / "scores.csv", *([out / "groups.csv"] if mode == "two_stage" else []), out / "summary.json"]
    if two_stage_runs:
        bar = ProgressBar(f"eval {', '.join(c.name for c in configs)}", cfg.progress, leave=False)
        per_agent = evaluate_two_stage_agents(groups, [run for run, _, _ in two_stage_runs], bar)
        bar.close()
        for (_, out, meta), group_results in zip(two_stage_runs, per_agent, strict=True):
            summaries.append(write_two_stage(group_results, out, meta))
    return format_table(summaries), paths
