"""PDM-Closed: the privileged rule-based reference planner of NAVSIM's metric cache (``reference/navsim.md`` §1.13).

Fifteen proposals: the route centerline and two parallel paths (-1 m, +1 m) times five IDM target speeds
(fractions of the lane speed limit), each unrolled behind its leading object (``pdm_proposals``). What the
planner sees is navsim's forecast of the current detections: the nearest 50 vehicles, 25 pedestrians,
10 cyclists and 50 static objects within 100 m, road users moving at their speed along their heading, sampled
every 0.2 s and held in between, and the route lane connectors that are red now. Each proposal's path poses
(from the ego projected on its path at t = 0) are tracked by the LQR and bicycle model and scored against that
forecast with NAVSIM's planner weighting (EP over the batch, no history comfort, no EC); the best proposal is
unrolled on to 5 s and is the plan. It is EP's normaliser and a baseline agent.

``PDMClosedPlanner.plan(cache, tracks, red)`` plans against any given object tracks and red-light states (the
forecast when omitted), so the same planner runs against other traffic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from irl_vla.common.idm import IDMParams
from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.aggregation import EPDMS, aggregate
from irl_vla.scoring.pdm_proposals import PROPOSAL_IDM, LeaderSearch, LeaderWorld, PlanPath, unroll
from irl_vla.scoring.scene_cache import STEP, SceneCache, Tracks
from irl_vla.scoring.scorer import PDM_SAMPLING, Geometric, Scorer
from irl_vla.scoring.simulation import simulate
from irl_vla.scoring.states import POSE, FloatArray, StateIndex, footprint
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


@dataclass(frozen=True)
class PDMClosedConfig:
    """Constants of PDM-Closed (navsim's metric-cache planner).

    Attributes:
        lateral_offsets: offsets [m] (left positive) of the paths added after the centerline, in proposal order.
        speed_fractions: IDM target speeds as fractions of the speed limit.
        fallback_speed_limit: speed limit when the map has none (or 0) [m/s].
        idm: IDM of the proposals (navsim's form, ``pdm_proposals.proposal_acceleration``).
        leader_update_rate: the leader is searched every this many steps and held in between.
        forecast_hold: the forecast is sampled every this many steps and held in between.
        map_radius: objects farther from the ego's centre are not seen [m].
        max_objects: nearest objects seen per road-user class (``AgentClass`` value).
        max_static_objects: nearest static objects seen.
    """

    lateral_offsets: tuple[float, ...] = (-1.0, 1.0)
    speed_fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    fallback_speed_limit: float = 15.0
    idm: IDMParams = PROPOSAL_IDM
    leader_update_rate: int = 2
    forecast_hold: int = 2
    map_radius: float = 100.0
    max_objects: tuple[tuple[str, int], ...] = (("vehicle", 50), ("pedestrian", 25), ("bicycle", 10))
    max_static_objects: int = 50


@dataclass
class PDMClosedPlan:
    """The chosen proposal.

    Attributes:
        poses: relative poses ``(51, 3)`` at 0.1 s from t = 0 (the ego projected on the chosen path) to 5 s.
        proposal: index of the chosen proposal (paths outer, speeds inner).
        scores: planner score of every proposal ``(P,)``.
    """

    poses: FloatArray
    proposal: int
    scores: FloatArray


def forecast_tracks(
    tracks: Tracks, ego_center: FloatArray, num_steps: int, config: PDMClosedConfig = PDMClosedConfig()
) -> Tracks:
    """The forecast navsim's PDM-Closed makes of the objects detected at step 0, over ``num_steps`` steps of 0.1 s.

    Objects within ``map_radius`` of ``ego_center`` ``(2,)``, nearest first per class and capped, ordered static,
    vehicles, pedestrians, cyclists. Road users move at their speed along their heading (reversed when they
    drive backwards); the forecast is sampled every ``forecast_hold`` steps and held in between.
    """
    now = tracks.select(tracks.valid[0])
    centre = now.poses[0, :, XY]  # (N, 2)
    distance = np.sum((centre - ego_center) ** 2, axis=-1) ** 0.5
    names = np.array(now.names, dtype=object)
    near = distance <= config.map_radius
    order: list[int] = []
    groups = [(~now.is_agent, config.max_static_objects)]
    groups += [(names == name, cap) for name, cap in config.max_objects]
    for members, cap in groups:
        idx = np.flatnonzero(members & near)
        order.extend(idx[np.argsort(distance[idx])][:cap].tolist())
    now = now.select(np.asarray(order, dtype=int))
    heading = now.poses[0, :, SE2Index.HEADING]
    speed = np.where(now.is_agent, np.hypot(*now.velocities[0].T), 0.0)
    course = np.arctan2(now.velocities[0, :, 1], now.velocities[0, :, 0])
    backwards = np.abs(np.arctan2(np.sin(heading - course), np.cos(heading - course))) >= np.pi / 2
    direction = np.where(backwards, heading + np.pi, heading)
    dxy = np.stack([np.cos(direction) * speed, np.sin(direction) * speed], axis=-1)  # (N, 2)
    sample_time = (np.arange(num_steps) // config.forecast_hold) * config.forecast_hold * STEP  # (T,)
    poses = np.repeat(now.poses[:1], num_steps, axis=0)
    poses[..., XY] += sample_time[:, None, None] * dxy[None]
    velocities = np.repeat(dxy[None], num_steps, axis=0)
    valid = np.ones((num_steps, len(now)), dtype=bool)
    return Tracks(poses, velocities, now.sizes, valid, now.names, now.tokens)


def _steps(tracks: Tracks, num_steps: int) -> Tracks:
    """The first ``num_steps`` steps of ``tracks``."""
    return Tracks(
        tracks.poses[:num_steps],
        tracks.velocities[:num_steps],
        tracks.sizes,
        tracks.valid[:num_steps],
        tracks.names,
        tracks.tokens,
    )


class PDMClosedPlanner:
    """Plans the PDM-Closed trajectory of a cached scene.

    Args:
        scorer: scores the proposals (a ``FastScorer`` in practice).
        config: planner constants.
    """

    def __init__(self, scorer: Scorer, config: PDMClosedConfig | None = None) -> None:
        self.scorer = scorer
        self.config = PDMClosedConfig() if config is None else config

    def target_speeds(self, cache: SceneCache) -> FloatArray:
        """IDM target speeds [m/s] ``(S,)`` (fractions of the lane limit, the fallback without one)."""
        limit = cache.speed_limit or self.config.fallback_speed_limit
        return np.asarray(self.config.speed_fractions, dtype=np.float64) * limit

    def paths(self, cache: SceneCache) -> list[PlanPath]:
        """The lateral paths: the centerline, then its parallels at ``lateral_offsets``."""
        center = PlanPath(cache.centerline)
        return [center, *(center.offset(d) for d in self.config.lateral_offsets)]

    def forecast(self, cache: SceneCache) -> tuple[Tracks, np.ndarray]:
        """What the planner sees by default: forecast tracks and red states ``(51, C)`` (red now, held)."""
        num_steps = self._num_output_steps + 1
        centre = footprint(cache.initial_state[POSE])[4]
        tracks = forecast_tracks(cache.tracks, centre, num_steps, self.config)
        red = np.repeat(cache.red[:1], num_steps, axis=0)
        return tracks, red

    @property
    def _num_output_steps(self) -> int:
        assert PDM_SAMPLING.num_poses is not None
        return PDM_SAMPLING.num_poses

    def unroll(self, cache: SceneCache, world: LeaderWorld) -> tuple[list[PlanPath], FloatArray, FloatArray]:
        """Paths and the progress and speed ``(P, 51)`` of every proposal (paths outer, speeds inner)."""
        cfg = self.config
        dt = PDM_SAMPLING.interval_length or STEP
        targets = self.target_speeds(cache)
        ego = cache.initial_state
        horizon = float(np.max(np.abs(targets))) * self._num_output_steps * dt
        paths = self.paths(cache)
        progress, speed = [], []
        for path in paths:
            s0 = float(path.project(ego[XY]))
            corridor = path.corridor(s0, s0 + horizon, PACIFICA.width / 2)
            search = LeaderSearch(world, path, corridor, PACIFICA)
            s, v = unroll(
                path,
                s0,
                float(ego[StateIndex.VELOCITY_X]),
                targets,
                search,
                cfg.idm,
                self._num_output_steps,
                dt,
                cfg.leader_update_rate,
            )
            progress.append(s)
            speed.append(v)
        return paths, np.concatenate(progress), np.concatenate(speed)

    def plan(self, cache: SceneCache, tracks: Tracks | None = None, red: np.ndarray | None = None) -> PDMClosedPlan:
        """Plan against given objects and red lights, by default the forecast of the current detections.

        Args:
            cache: the scene (ego state, route centerline, speed limit, map, red-light polygons).
            tracks: objects over at least 51 steps of 0.1 s from t = 0; default ``forecast``.
            red: which of the cache's red-light polygons are red per step ``(>= 51, C)``; default ``forecast``.

        Raises:
            ValueError: naming the scene on tracks or red states that cover too few steps or the wrong lights.
        """
        if tracks is None or red is None:
            default_tracks, default_red = self.forecast(cache)
            tracks = default_tracks if tracks is None else tracks
            red = default_red if red is None else red
        need = self._num_output_steps + 1
        if tracks.poses.shape[0] < need or red.shape[0] < need or red.shape[1] != len(cache.red_light_polygons):
            raise ValueError(
                f"scene {cache.token}: PDM-Closed needs tracks over {need} steps and red states "
                f"({need}, {len(cache.red_light_polygons)}), got {tracks.poses.shape[0]} steps and {red.shape}"
            )
        ego = cache.initial_state
        world = LeaderWorld.build(_steps(tracks, need), cache.red_light_polygons, red[:need], ego[POSE])
        paths, progress, _ = self.unroll(cache, world)
        per_path = len(self.config.speed_fractions)
        poses = np.stack([paths[p // per_path].interpolate(progress[p]) for p in range(len(progress))])  # (P, 51, 3)
        scores = self.score(cache, world, poses)
        best = int(np.argmax(scores))
        relative = absolute_to_relative(poses[best], ego[POSE])
        return PDMClosedPlan(relative, best, scores)

    def score(self, cache: SceneCache, world: LeaderWorld, poses: FloatArray) -> FloatArray:
        """Planner scores ``(P,)`` of proposals with global path poses ``(P, >= NUM_STEPS, 3)``.

        The path poses from t = 0 are the tracker's reference; objects the ego overlaps at t = 0 are not scored
        against. EP is the masked progress over the batch's best (1, or 0 where a multiplier is 0, when that best
        is within the progress threshold); HC is 1 (the planner has no history) and EC is left out.
        """
        num_states = self.scorer.simulation.num_states
        states = simulate(poses[:, :num_states], cache.initial_state, self.scorer.simulation)
        seen = _steps(world.tracks, num_states).select(~world.ignored)
        view = dataclasses.replace(cache, tracks=seen, red=world.red[:num_states], _derived={})
        geo = self.scorer.geometric_metrics(view, states)
        sub = np.full((len(poses), NUM_SUB_SCORES), np.nan)
        for name in ("NC", "DAC", "DDC", "TLC", "TTC", "LK"):
            sub[:, SubScore[name]] = geo[:, Geometric[name]]
        multiplier = np.prod(sub[:, EPDMS.multiplicative_indices], axis=1)
        masked = geo[:, Geometric.PROGRESS] * multiplier
        best = masked.max()
        if best > self.scorer.config.progress_distance_threshold:
            sub[:, SubScore.EP] = masked / best
        else:
            sub[:, SubScore.EP] = np.where(multiplier == 0.0, 0.0, 1.0)
        sub[:, SubScore.HC] = 1.0
        return aggregate(sub, EPDMS)  # EC is NaN: its weight is dropped


def plan_scene(cache: SceneCache, planner: PDMClosedPlanner) -> SceneCache:
    """Fill the cache's PDM-Closed plan: ``pdm_start`` (t = 0) and ``pdm_plan`` (0.1 ... 5 s); returns the cache."""
    result = planner.plan(cache)
    cache.pdm_start = result.poses[0]
    cache.pdm_plan = result.poses[1:]
    return cache


__all__ = ["PDMClosedConfig", "PDMClosedPlan", "PDMClosedPlanner", "forecast_tracks", "plan_scene"]
