"""PDM-Closed: the privileged rule-based reference planner of NAVSIM's metric cache (``reference/navsim.md`` §1.13).

Fifteen proposals: three lateral paths (the route centerline shifted by -1, 0 and +1 m) times five IDM target
speeds (fractions of the lane speed limit). Other objects are forecast at constant velocity from the current
detections; red lights stop the ego where its path enters a red lane connector. Each proposal is simulated with
the LQR tracker and bicycle model and scored by the suite's scorer against the forecast; the best is the plan
(5 s at 0.1 s). It is EP's normaliser and a baseline agent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import shapely

from irl_vla.common.idm import IDMParams, idm_acceleration
from irl_vla.data.enums import SE2Index
from irl_vla.data.geometry import absolute_to_relative, path_arc_length, wrap_angle
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.scene_cache import NUM_STEPS, STEP, SceneCache, Tracks
from irl_vla.scoring.scorer import PDM_SAMPLING, Scorer
from irl_vla.scoring.states import FloatArray


@dataclass(frozen=True)
class PDMClosedConfig:
    """Constants of PDM-Closed.

    Attributes:
        lateral_offsets: path offsets from the centerline [m], left positive.
        speed_fractions: IDM target speeds as fractions of the speed limit.
        fallback_speed_limit: speed limit when the map has none [m/s].
        idm: IDM of the proposals: gap 1 m, headway 1.5 s, a 1.5 m/s^2, b 3 m/s^2; braking capped at 6 m/s^2
            (the tracker follows what it can).
    """

    lateral_offsets: tuple[float, ...] = (-1.0, 0.0, 1.0)
    speed_fractions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    fallback_speed_limit: float = 15.0
    idm: IDMParams = field(
        default_factory=lambda: IDMParams(
            min_gap=1.0, headway=1.5, accel_max=1.5, decel_comfort=3.0, delta=4.0, decel_max=6.0
        )
    )


def forecast_tracks(tracks: Tracks, num_steps: int = NUM_STEPS, dt: float = STEP) -> Tracks:
    """Objects detected at the current step moved at constant velocity and heading over ``num_steps``."""
    detected = tracks.valid[0]
    now = tracks.select(detected)
    t = np.arange(num_steps) * dt
    poses = np.repeat(now.poses[:1], num_steps, axis=0)
    poses[..., : SE2Index.HEADING] += t[:, None, None] * now.velocities[0][None]
    velocities = np.repeat(now.velocities[:1], num_steps, axis=0)
    valid = np.ones((num_steps, len(now)), dtype=bool)
    return Tracks(poses, velocities, now.sizes, valid, now.names, now.tokens)


def _offset_path(centerline: FloatArray, offset: float) -> FloatArray:
    """The centerline shifted sideways by ``offset`` [m] (left positive) ``(M, 3)``."""
    h = centerline[:, SE2Index.HEADING]
    out = centerline.copy()
    out[:, SE2Index.X] -= offset * np.sin(h)
    out[:, SE2Index.Y] += offset * np.cos(h)
    return out


class PDMClosedPlanner:
    """Plans the PDM-Closed trajectory of a cached scene.

    Args:
        scorer: scores the proposals (a ``FastScorer`` in practice).
        config: planner constants.
    """

    def __init__(self, scorer: Scorer, config: PDMClosedConfig | None = None) -> None:
        self.scorer = scorer
        self.config = PDMClosedConfig() if config is None else config

    def proposals(self, cache: SceneCache) -> FloatArray:
        """All proposals as relative plans at 0.1 s over 5 s ``(P, 50, 3)``, paths outer, speeds inner."""
        cfg = self.config
        assert PDM_SAMPLING.num_poses is not None
        num_steps = PDM_SAMPLING.num_poses + 1
        dt = PDM_SAMPLING.interval_length or STEP
        limit = cache.speed_limit or cfg.fallback_speed_limit
        ego = cache.initial_state
        origin = ego[: SE2Index.HEADING + 1]
        forecast = forecast_tracks(cache.tracks, num_steps, dt)
        plans = []
        for offset in cfg.lateral_offsets:
            path = _offset_path(cache.centerline, offset)
            arc = path_arc_length(path[:, : SE2Index.HEADING])
            line = shapely.LineString(path[:, : SE2Index.HEADING])
            s0 = float(line.project(shapely.Point(origin[:2])))
            obstacles = self._obstacles(cache, forecast, line, path, arc)  # (T, J, 2): arc position, speed
            for fraction in cfg.speed_fractions:
                s = self._idm(s0, float(np.hypot(*ego[3:5])), fraction * limit, obstacles, dt, num_steps)
                xs = np.interp(s, arc, path[:, SE2Index.X])
                ys = np.interp(s, arc, path[:, SE2Index.Y])
                hs = np.interp(s, arc, np.unwrap(path[:, SE2Index.HEADING]))
                poses = np.stack([xs, ys, wrap_angle(hs)], axis=1)[1:]
                plans.append(absolute_to_relative(poses, origin))
        return np.stack(plans)

    def _obstacles(
        self, cache: SceneCache, forecast: Tracks, line: shapely.LineString, path: FloatArray, arc: FloatArray
    ) -> FloatArray:
        """Obstacles on the path per step: (arc position of their rear [m], speed along the path [m/s])."""
        half_width = PACIFICA.width / 2
        num_steps = forecast.poses.shape[0]
        rows = []
        if len(forecast):
            centers = forecast.poses[..., : SE2Index.HEADING].reshape(-1, 2)
            pts = shapely.points(centers)
            s_obj = shapely.line_locate_point(line, pts).reshape(num_steps, -1)
            lateral = shapely.distance(line, pts).reshape(num_steps, -1)
            path_heading = np.interp(s_obj, arc, np.unwrap(path[:, SE2Index.HEADING]))
            vel = forecast.velocities
            along = vel[..., 0] * np.cos(path_heading) + vel[..., 1] * np.sin(path_heading)
            reach = half_width + np.hypot(forecast.sizes[:, 0], forecast.sizes[:, 1])[None] / 2
            on_path = lateral < reach
            rear = s_obj - forecast.sizes[:, 0][None] / 2
            rows.append(np.where(on_path, rear, np.inf))
            rows.append(np.where(on_path, np.maximum(along, 0.0), 0.0))
        positions = [rows[0]] if rows else []
        speeds = [rows[1]] if rows else []
        for c, polygon in enumerate(cache.red_light_polygons):
            if not cache.red[0, c]:
                continue
            crossing = line.intersection(polygon)
            if crossing.is_empty:
                continue
            coords = shapely.get_coordinates(crossing)
            stop = float(np.min(shapely.line_locate_point(line, shapely.points(coords))))
            positions.append(np.full((num_steps, 1), stop))
            speeds.append(np.zeros((num_steps, 1)))
        if not positions:
            return np.zeros((num_steps, 0, 2))
        return np.stack([np.concatenate(positions, 1), np.concatenate(speeds, 1)], axis=-1)

    def _idm(self, s0: float, v0: float, target: float, obstacles: FloatArray, dt: float, num_steps: int) -> FloatArray:
        """Arc positions of the ego's rear axle over ``num_steps`` under IDM behind the nearest obstacle."""
        cfg = self.config
        s = np.zeros(num_steps)
        s[0], v = s0, v0
        front = PACIFICA.front_length
        for i in range(1, num_steps):
            gap, lead_speed = np.inf, 0.0
            if obstacles.shape[1]:
                pos, speed = obstacles[i - 1, :, 0], obstacles[i - 1, :, 1]
                gaps = pos - (s[i - 1] + front)
                ahead = gaps > -front  # obstacles whose rear is past our rear axle
                if ahead.any():
                    j = int(np.argmin(np.where(ahead, gaps, np.inf)))
                    gap, lead_speed = float(gaps[j]), float(speed[j])
            accel = float(idm_acceleration(v, target, gap, lead_speed, cfg.idm))
            v = max(0.0, v + accel * dt)
            s[i] = s[i - 1] + v * dt
        return s

    def plan(self, cache: SceneCache) -> FloatArray:
        """The best proposal ``(50, 3)``, scored against the constant-velocity forecast."""
        proposals = self.proposals(cache)
        forecast = dataclasses.replace(cache, tracks=forecast_tracks(cache.tracks), _derived={})
        result = self.scorer.score(forecast, proposals, PDM_SAMPLING, normalizer="batch")
        return proposals[int(np.argmax(result.score))]  # EC is undefined here: its weight is dropped
