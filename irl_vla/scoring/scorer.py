"""The scorer interface: plans in a cached scene -> NAVSIM v2 sub-scores and EPDMS, batched over candidates.

``Scorer.score`` simulates the plans (``simulation``), asks its implementation for the geometric sub-metrics
(ego-area flags, NC, DAC, DDC, TLC, TTC, LK and raw progress), normalises progress by the PDM-Closed reference
(§1.7 EP), adds history comfort and aggregates with the one aggregation function. Two implementations share
this class: ``ReferenceScorer`` (shapely, step by step, as the spec reads) and ``FastScorer`` (vectorised).
EC needs two consecutive frames and is filled in by ``scene_aggregation``; here it is NaN.

Traffic (``ScorerConfig.traffic``): ``non_reactive`` scores against the cached log replay; ``reactive``
(``reactive_traffic``) rolls the scene's vehicles out as IDM agents against each plan's simulated ego, and
scores that plan, and the PDM-Closed plan that normalises its EP, against that rollout (navsim's two-stage
rule: PDM-Closed sees the traffic reacting to the agent's plan, never to its own).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from irl_vla.data.trajectory import TrajectorySampling
from irl_vla.scoring.aggregation import AggregationConfig, aggregate
from irl_vla.scoring.comfort import ComfortBounds, ExtendedComfortBounds, history_comfort
from irl_vla.scoring.reactive_traffic import (
    ReactiveTrafficConfig,
    TrafficBatch,
    TrafficMode,
    simulate_reactive_traffic,
)
from irl_vla.scoring.scene_cache import SceneCache
from irl_vla.scoring.simulation import SimulationConfig, simulate_plans
from irl_vla.scoring.states import FloatArray
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

#: PDM-Closed plans are stored at this sampling (5 s at 0.1 s).
PDM_SAMPLING = TrajectorySampling(num_poses=50, interval_length=0.1)


class Geometric(IntEnum):
    """Columns of the geometric metrics an implementation returns ``(K, len(Geometric))``."""

    NC = 0
    DAC = 1
    DDC = 2
    TLC = 3
    TTC = 4
    LK = 5
    PROGRESS = 6  # raw progress along the centerline [m]


@dataclass(frozen=True)
class ScorerConfig:
    """Thresholds and weights of the scorer (NAVSIM v2 defaults; ``irl-vla eval`` sets ``aggregation`` and ``traffic``).

    Attributes:
        aggregation: multiplicative sub-scores and weights.
        driving_direction_horizon: DDC window [s].
        driving_direction_compliance: DDC progress below which it is 1 [m].
        driving_direction_violation: DDC progress from which it is 0 [m].
        stopped_speed_threshold: ego speed below which TTC skips a step [m/s].
        future_collision_horizon: TTC look-ahead [s].
        future_collision_stride: steps between TTC look-ahead offsets.
        progress_distance_threshold: EP is 1 when the best progress is below this [m].
        lane_keeping_deviation_limit: LK allowed distance to the centerline [m].
        lane_keeping_horizon: LK allowed time beyond the limit [s].
        human_penalty_filter: forgive sub-scores the human also fails (real scenes).
        collision_stopped_speed: speed at or below which the ego or an object counts as stopped [m/s].
        ahead_angle: an object within this angle of the ego heading is ahead [deg].
        behind_angle: an object beyond this angle of the ego heading is behind [deg].
        comfort: history comfort bounds.
        extended_comfort: two-frame comfort bounds.
        traffic: ``non_reactive`` (log replay) or ``reactive`` (IDM vehicles reacting to each plan).
        reactive: constants of reactive traffic.
    """

    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    driving_direction_horizon: float = 1.0
    driving_direction_compliance: float = 2.0
    driving_direction_violation: float = 6.0
    stopped_speed_threshold: float = 5e-3
    future_collision_horizon: float = 1.0
    future_collision_stride: int = 3
    progress_distance_threshold: float = 5.0
    lane_keeping_deviation_limit: float = 0.5
    lane_keeping_horizon: float = 2.0
    human_penalty_filter: bool = True
    collision_stopped_speed: float = 5e-2
    ahead_angle: float = 30.0
    behind_angle: float = 150.0
    comfort: ComfortBounds = field(default_factory=ComfortBounds)
    extended_comfort: ExtendedComfortBounds = field(default_factory=ExtendedComfortBounds)
    traffic: TrafficMode = TrafficMode.NON_REACTIVE
    reactive: ReactiveTrafficConfig = field(default_factory=ReactiveTrafficConfig)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "traffic", TrafficMode(self.traffic))
        except ValueError:
            modes = [m.value for m in TrafficMode]
            raise ValueError(f"ScorerConfig.traffic: {self.traffic!r} is not one of {modes}") from None

    def ttc_offsets(self, dt: float) -> np.ndarray:
        """TTC look-ahead offsets in steps, e.g. (0, 3, 6, 9)."""
        return np.arange(0, round(self.future_collision_horizon / dt), self.future_collision_stride)


@dataclass
class ScoreResult:
    """Scores of ``K`` plans in one scene.

    Attributes:
        sub_scores: ``(K, n_sub)`` by ``SubScore``; EC is NaN until paired with the previous frame.
        raw_progress: progress along the centerline [m] ``(K,)``.
        states: simulated states ``(K, T, n_state)`` (``StateIndex``, 0.1 s apart).
        aggregation: how ``score`` aggregates.
        traffic: the traffic each plan was scored against, with reactive traffic; ``None`` for log replay.
    """

    sub_scores: FloatArray
    raw_progress: FloatArray
    states: FloatArray
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    traffic: TrafficBatch | None = None

    @property
    def score(self) -> FloatArray:
        """Aggregated score (EPDMS by default) ``(K,)``."""
        return aggregate(self.sub_scores, self.aggregation)

    @property
    def multiplier(self) -> FloatArray:
        """Product of the multiplicative sub-scores ``(K,)``."""
        return np.prod(self.sub_scores[:, self.aggregation.multiplicative_indices], axis=1)


class Scorer(ABC):
    """Scores plans in cached scenes with NAVSIM v2 semantics.

    Args:
        config: thresholds and weights.
        simulation: ego simulation constants.
    """

    name = "abstract"

    def __init__(self, config: ScorerConfig | None = None, simulation: SimulationConfig | None = None) -> None:
        self.config = ScorerConfig() if config is None else config
        self.simulation = SimulationConfig() if simulation is None else simulation

    # -------------------------------------------------------------- implementation hook
    @abstractmethod
    def geometric_metrics(
        self, cache: SceneCache, states: FloatArray, traffic: TrafficBatch | None = None
    ) -> FloatArray:
        """NC, DAC, DDC, TLC, TTC, LK and raw progress ``(K, len(Geometric))`` of states ``(K, T, n_state)``.

        Objects come from ``traffic`` (one rollout per plan) when given, else from the cache's log replay.
        """

    # -------------------------------------------------------------- public API
    def simulate(
        self, cache: SceneCache, plans: FloatArray, sampling: TrajectorySampling, start: FloatArray | None = None
    ) -> FloatArray:
        """Simulated states ``(K, NUM_STEPS, n_state)`` of relative plans ``(K, T, 3)``; errors name the scene token.

        The reference starts at the relative pose ``start`` ``(3,)`` at t = 0 if given, else at the ego's pose.
        """
        return simulate_plans(
            plans, sampling, cache.initial_state, self.simulation, where=f"scene {cache.token}", start=start
        )

    def reference_states(self, cache: SceneCache) -> FloatArray:
        """Simulated states ``(1, T, n_state)`` of the PDM-Closed plan (cached per scene and scorer)."""
        key = f"pdm_states/{self.name}"
        if key not in cache._derived:
            if cache.pdm_plan is None:
                raise ValueError(f"scene {cache.token}: the metric cache has no PDM-Closed plan")
            cache._derived[key] = self.simulate(cache, cache.pdm_plan[None], PDM_SAMPLING, start=cache.pdm_start)
        return cache._derived[key]

    def reference_metrics(self, cache: SceneCache, traffic: TrafficBatch | None = None) -> FloatArray:
        """Geometric metrics of the PDM-Closed plan against log replay or each rollout of ``traffic``.

        Returns:
            ``(1, len(Geometric))`` against log replay (cached per scene and scorer), ``(K, len(Geometric))``
            against ``K`` rollouts.
        """
        if traffic is not None:
            states = np.repeat(self.reference_states(cache), len(traffic), axis=0)
            return self.geometric_metrics(cache, states, traffic)
        key = f"pdm_metrics/{self.name}"
        if key not in cache._derived:
            cache._derived[key] = self.geometric_metrics(cache, self.reference_states(cache))
        return cache._derived[key]

    def traffic(self, cache: SceneCache, states: FloatArray) -> TrafficBatch | None:
        """The traffic simulated ego states ``(K, T, n_state)`` are scored against; ``None`` for log replay."""
        if self.config.traffic == TrafficMode.REACTIVE:
            return simulate_reactive_traffic(cache, states, self.config.reactive)
        return None

    def score(
        self,
        cache: SceneCache,
        plans: FloatArray,
        sampling: TrajectorySampling,
        *,
        normalizer: str = "pdm",
        with_history: bool = True,
    ) -> ScoreResult:
        """Score relative plans ``(K, T, 3)`` in the scene.

        Args:
            cache: the scene.
            plans: relative plans ``(K, T, 3)``.
            sampling: their time sampling.
            normalizer: ``"pdm"``: EP of each plan against PDM-Closed (NAVSIM's two-proposal batch);
                ``"batch"``: against the best plan of this batch (PDM-Closed's own proposal selection, the
                human reference scored alone).
            with_history: prepend the logged history for HC (the human reference is scored without).
        """
        states = self.simulate(cache, plans, sampling)
        traffic = self.traffic(cache, states)
        geo = self.geometric_metrics(cache, states, traffic)
        sub = np.full((len(plans), NUM_SUB_SCORES), np.nan)
        for name in ("NC", "DAC", "DDC", "TLC", "TTC", "LK"):
            sub[:, SubScore[name]] = geo[:, Geometric[name]]
        mult_idx = [Geometric[SubScore(i).name] for i in self.config.aggregation.multiplicative_indices]
        raw = geo[:, Geometric.PROGRESS]
        masked = raw * np.prod(geo[:, mult_idx], axis=1)
        if normalizer == "pdm":
            ref = self.reference_metrics(cache, traffic)  # PDM-Closed against the traffic of each plan
            ref_masked = ref[:, Geometric.PROGRESS] * np.prod(ref[:, mult_idx], axis=1)
            norm = np.maximum(masked, ref_masked)
        elif normalizer == "batch":
            norm = np.full(len(plans), masked.max())
        else:
            raise ValueError(f"Scorer.score: normalizer must be 'pdm' or 'batch', got {normalizer!r}")
        gate = norm > self.config.progress_distance_threshold
        sub[:, SubScore.EP] = np.where(gate, np.clip(raw / np.where(gate, norm, 1.0), 0.0, 1.0), 1.0)
        history = cache.history_states if with_history else None
        sub[:, SubScore.HC] = history_comfort(states, history, self.simulation.dt, self.config.comfort)
        return ScoreResult(sub, raw, states, self.config.aggregation, traffic)
