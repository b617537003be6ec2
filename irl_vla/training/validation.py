"""The trainer's validation hook: the policy scored on held-out scenes by the real EPDMS scorer.

It is ``irl-vla eval`` in miniature: ``max_scenes`` scenes spread evenly over a held-out split, their metric caches
(built once, shared with ``irl-vla eval`` under ``<data_root>/metric_cache/<split>``), the policy run as its
agent (the same code path ``agent=vla`` / ``agent=ego_mlp`` takes, so it reads only what the agent reads),
one-stage scoring with log replay (EC paired with the agent's plan one frame earlier), the human filter, and
failed scenes counting 0.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from irl_vla.agents.agent import Agent
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.common.progress import ProgressBar
from irl_vla.data.source import SourceFactory
from irl_vla.data.split import spread
from irl_vla.evaluation.open_loop import AgentEvaluator, evaluate_one_stage
from irl_vla.evaluation.runner import make_scorer
from irl_vla.scoring.metric_cache import MetricCacheStore, build_metric_cache
from irl_vla.scoring.scene_aggregation import mean_defined
from irl_vla.scoring.sub_scores import SubScore


class Validator:
    """Scores agents on ``max_scenes`` scenes spread evenly over a split (builds their metric caches once).

    Args:
        source: opens the held-out split (with a renderer when the agent reads sensors).
        cache_root: the split's metric-cache directory.
        max_scenes: scenes scored, evenly spread over the split's order (``None``: all). The first scenes of a
            split are its first families' logs, so they would not stand for the split.
        executor: where missing metric caches are built.
        progress: show progress bars.

    Raises:
        ValueError: when the split has no scenes.
    """

    def __init__(
        self,
        source: SourceFactory,
        cache_root: str | os.PathLike[str],
        max_scenes: int | None,
        executor: ExecutorConfig,
        progress: bool = True,
    ) -> None:
        self.loader = source()
        tokens = list(self.loader.tokens)
        self.tokens = tokens if max_scenes is None else spread(tokens, max_scenes)
        if not self.tokens:
            raise ValueError(f"validation split {self.loader.name}: no scenes")
        self.progress = progress
        with ProgressBar(f"metric cache {Path(cache_root).name}", progress, unit="scene", leave=False) as bar:
            build_metric_cache(source, cache_root, [(t, False) for t in self.tokens], executor, bar)
        self.store = MetricCacheStore(cache_root)
        self.scorer = make_scorer("fast")

    def __call__(self, agent: Agent) -> dict[str, float]:
        """EPDMS (failed scenes 0), its mean over valid scenes, failures and the mean of every sub-score."""
        sensors = agent.get_sensor_config()
        evaluator = AgentEvaluator(agent, self.scorer, self.store.load)
        with ProgressBar(f"validate {agent.name()}", self.progress, unit="scene", leave=False) as bar:
            results = evaluate_one_stage(
                self.tokens,
                partial(self.loader.get_scene, sensors=sensors),
                partial(self.loader.get_previous_scene, sensors=sensors),
                evaluator,
                bar,
            )
        valid = [r for r in results if r.valid]
        sub = mean_defined([r.sub_scores for r in valid])
        metrics = {
            "epdms": float(np.mean([r.split_score for r in results])),
            "epdms_valid_only": float(np.mean([r.score for r in valid])) if valid else float("nan"),
            "num_failed": float(len(results) - len(valid)),
        }
        metrics.update({s.name: float(sub[s]) for s in SubScore})
        return metrics
