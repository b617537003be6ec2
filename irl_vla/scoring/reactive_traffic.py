"""Reactive traffic for two-stage scoring: vehicles as IDM agents on their lanes, reacting to the scored plan.

The rules are navsim's ``reactive`` traffic policy (``reference/navsim.md`` §8), quirks included:

- **Agents** (§8.4): every vehicle of the current frame, in annotation order, whose centre lies on a lane
  segment (``traffic_seed``) within ``snap_threshold`` of its baseline, snapped onto the baseline's nearest
  pose; a snapped box touching the ego's true t = 0 box or an earlier agent's snapped box is rejected (the
  earlier vehicle wins). Speed: the magnitude of the logged velocity; desired speed: the segment's speed
  limit, else ``target_velocity``. Each agent drives its **one** starting segment (``lane_path``): no
  successor is ever appended, so the segment's end acts as a stopped car.
- **One step** k = 1..40 (§8.6) sees the ego's simulated state k - 1 (the reaction lags a step) as a box
  **centred on the rear axle** (1.461 m behind the true box). Agents farther than ``radius`` from the ego's
  rear axle are removed for good. Then each agent in order, updated in place (later agents see earlier agents'
  new footprints and speeds): its corridor is its path ahead buffered by half its width (flat ends, round
  joins); if any other entry (the ego box, other agents' footprints) intersects it, the leader is the one at the
  smallest polygon distance from the agent's own footprint (ties: the earlier agent, the ego last), at that
  distance and with its speed projected on the agent's heading; otherwise the path's end, at rest. IDM with an
  unclamped desired gap, the gap floored at ``min_gap``, acceleration clipped to [-decel_max, accel_max],
  forward Euler at 0.1 s. The agent's footprint becomes its path from half a length behind to half a length
  plus ``speed * headway`` ahead, buffered, unioned with its box, simplified at 1e-5 m.
- **Frames** (§8.7-8.8): frame 0 is the current frame's log, every object (nothing removed under the ego);
  frames 1..40 hold the agents (original box sizes, on their lane), the open-loop parked vehicles (stationary
  and outside lanes and junctions, or farther than the snap threshold from their lane), frozen at t = 0 and
  absent where an agent's box overlaps them, and every non-vehicle object replayed from the log. Other
  vehicles vanish. Lights are not seen by the agents, nor are pedestrians, parked cars or static objects.
- The scorer types a collision with the object's velocity at its first occurrence (the logged t = 0 one),
  while polygons come from the simulated frame, as navsim's scorer does; ``TrafficBatch.velocities`` carries
  those velocities and ``TrafficBatch.speeds`` the simulated ones.

Every candidate plan gets its own rollout. Work is vectorised over candidates and agents: a conservative
bounding-box test finds the (candidate, agent) pairs whose corridor nothing can reach this step, and those
take the free-road update in bulk; only the others run the exact shapely tests, in agent order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.lane_path import BUFFER_STYLE, LanePath, PathTable, wrap_to_pi
from irl_vla.scoring.scene_cache import STEP, SceneCache, Tracks
from irl_vla.scoring.states import POSE, FloatArray, StateIndex, footprint, speed
from irl_vla.scoring.traffic_seed import TrafficSeed


class TrafficMode(str, Enum):
    """How other vehicles move while plans are scored."""

    NON_REACTIVE = "non_reactive"  # log replay, minus objects under the initial ego box
    REACTIVE = "reactive"  # vehicles as IDM agents reacting to the scored plan, the rest replayed


@dataclass(frozen=True)
class ReactiveTrafficConfig:
    """Constants of reactive traffic (navsim's ``navsim_IDM_traffic_agents`` values).

    Attributes:
        target_velocity: desired speed where the lane has no speed limit [m/s].
        min_gap: IDM jam distance, also the floor of the gap [m].
        headway: IDM time gap, also the forward extension of footprints [s].
        accel_max: IDM acceleration, upper clip [m/s^2].
        decel_max: IDM comfortable deceleration, lower clip [m/s^2].
        delta: IDM acceleration exponent.
        radius: agents farther than this from the ego's rear axle are removed [m].
        snap_threshold: largest centre-to-baseline distance of an agent [m].
        add_parked_vehicles: show the open-loop parked vehicles.
        stationary_speed: a vehicle slower than this at t = 0 is stationary [m/s].
        simplify_tolerance: footprints are simplified with this tolerance [m].
    """

    target_velocity: float = 10.0
    min_gap: float = 1.0
    headway: float = 1.5
    accel_max: float = 1.0
    decel_max: float = 2.0
    delta: float = 4.0
    radius: float = 100.0
    snap_threshold: float = 3.0
    add_parked_vehicles: bool = True
    stationary_speed: float = 0.1
    simplify_tolerance: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("target_velocity", "min_gap", "headway", "accel_max", "decel_max", "delta", "radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ReactiveTrafficConfig.{name}: expected > 0, got {getattr(self, name)}")
        if self.snap_threshold < 0 or self.stationary_speed < 0 or self.simplify_tolerance < 0:
            raise ValueError("ReactiveTrafficConfig: snap_threshold, stationary_speed, simplify_tolerance must be >= 0")


@dataclass
class TrafficBatch:
    """Other objects at 10 Hz for each of ``K`` candidate plans, global frame; objects are the same for all.

    Attributes:
        poses: box-centre poses ``(K, T, N, 3)``.
        velocities: the velocity the scorer types collisions with: each object's first occurrence ``(K, T, N, 2)``.
        speeds: simulated speed [m/s] ``(K, T, N)``.
        valid: whether the object is in frame t ``(K, T, N)``.
        sizes: (length, width) [m] ``(N, 2)``.
        names: class names.
        tokens: track tokens.
        is_idm: which objects are vehicles driven as IDM agents in frame t ``(K, T, N)``.
    """

    poses: FloatArray
    velocities: FloatArray
    speeds: FloatArray
    valid: np.ndarray
    sizes: FloatArray
    names: list[str]
    tokens: list[str]
    is_idm: np.ndarray

    def __len__(self) -> int:
        return self.poses.shape[0]

    def candidate(self, k: int) -> Tracks:
        """The tracks candidate ``k`` is scored against."""
        return Tracks(self.poses[k], self.velocities[k], self.sizes, self.valid[k], self.names, self.tokens)

    def index(self, token: str) -> int:
        """Object column of a track token."""
        return self.tokens.index(token)


# ---------------------------------------------------------------------------------------------- setup
def _boxes(poses: FloatArray, sizes: FloatArray) -> FloatArray:
    """Corners ``(..., 4, 2)`` of boxes with centre poses ``(..., 3)`` and sizes ``(..., 2)``."""
    h = poses[..., SE2Index.HEADING]
    cos, sin = np.cos(h)[..., None], np.sin(h)[..., None]
    lon = np.array([1.0, -1.0, -1.0, 1.0]) * sizes[..., 0, None] / 2
    lat = np.array([1.0, 1.0, -1.0, -1.0]) * sizes[..., 1, None] / 2
    return np.stack(
        [poses[..., SE2Index.X, None] + lon * cos - lat * sin, poses[..., SE2Index.Y, None] + lon * sin + lat * cos],
        axis=-1,
    )


def _bounds(corners: FloatArray) -> FloatArray:
    """Axis-aligned bounds (min x, min y, max x, max y) ``(..., 4)`` of corners ``(..., 4, 2)``."""
    return np.concatenate([corners.min(axis=-2), corners.max(axis=-2)], axis=-1)


def _overlap(a: FloatArray, b: FloatArray) -> np.ndarray:
    """Whether axis-aligned bounds ``(..., 4)`` overlap (touching counts), broadcasting."""
    return (a[..., 0] <= b[..., 2]) & (b[..., 0] <= a[..., 2]) & (a[..., 1] <= b[..., 3]) & (b[..., 1] <= a[..., 3])


@dataclass
class _Agents:
    """The IDM agents of a scene (fixed for every plan) and its open-loop parked vehicles."""

    vehicle: np.ndarray  # (A,) column of each agent among the seed's vehicles
    paths: list[LanePath]
    length: FloatArray  # (A,)
    width: FloatArray  # (A,)
    desired: FloatArray  # (A,) desired speed v0 [m/s]
    progress: FloatArray  # (A,) initial progress [m]
    speed: FloatArray  # (A,) initial speed [m/s]
    snapped: list[shapely.Geometry]  # (A,) snapped t = 0 boxes
    snapped_bounds: FloatArray  # (A, 4)
    parked: np.ndarray  # (V,) vehicles shown frozen at t = 0 unless an agent's box overlaps them


def _agents(cache: SceneCache, cfg: ReactiveTrafficConfig) -> _Agents:
    """Snap and accept the vehicles of the current frame (§8.4) and find the open-loop parked ones (§8.7)."""
    seed = cache.traffic
    if seed is None:
        raise ValueError(f"scene {cache.token}: the metric cache has no reactive traffic inputs; rebuild it")
    ego_box = shapely.polygons(footprint(cache.initial_state)[:4])
    taken: list[shapely.Geometry] = [ego_box]
    accepted: list[int] = []
    tokens: set[str] = set()
    snapped_corners = _boxes(seed.vehicle_snapped, seed.vehicle_sizes)  # (V, 4, 2), NaN without a segment
    for i in range(len(seed)):
        if seed.vehicle_tokens[i] in tokens or seed.vehicle_segment[i] < 0:
            continue
        if seed.vehicle_deviation[i] > cfg.snap_threshold:
            continue
        box = shapely.polygons(snapped_corners[i])
        if shapely.intersects(box, taken).any():
            continue
        taken.append(box)
        accepted.append(i)
        tokens.add(seed.vehicle_tokens[i])
    idx = np.asarray(accepted, dtype=np.int64)
    limits = seed.segment_speed_limits[seed.vehicle_segment[idx]] if len(idx) else np.zeros(0)
    paths = [
        LanePath(
            seed.segment_baselines[seed.vehicle_segment[i]],
            f"scene {cache.token}: lane {seed.segment_ids[seed.vehicle_segment[i]]} (vehicle {seed.vehicle_tokens[i]})",
        )
        for i in idx
    ]
    deviation = np.nan_to_num(seed.vehicle_deviation, nan=-np.inf)
    stationary = np.hypot(*seed.vehicle_velocities.T) < cfg.stationary_speed if len(seed) else np.zeros(0, bool)
    parked = (stationary & ~seed.vehicle_in_lanes) | (deviation > cfg.snap_threshold)
    parked[idx] = False
    if not cfg.add_parked_vehicles:
        parked[:] = False
    return _Agents(
        vehicle=idx,
        paths=paths,
        length=seed.vehicle_sizes[idx, 0],
        width=seed.vehicle_sizes[idx, 1],
        desired=np.where(np.isfinite(limits) & (limits > 0), limits, cfg.target_velocity),
        progress=seed.vehicle_progress[idx],
        speed=np.hypot(*seed.vehicle_velocities[idx].T) if len(idx) else np.zeros(0),
        snapped=taken[1:],
        snapped_bounds=_bounds(snapped_corners[idx]),
        parked=parked,
    )


# ---------------------------------------------------------------------------------------------- IDM
def idm_step(
    progress: FloatArray,
    velocity: FloatArray,
    desired: FloatArray,
    lead_distance: FloatArray,
    lead_velocity: FloatArray,
    lead_rear: FloatArray,
    cfg: ReactiveTrafficConfig,
    dt: float = STEP,
) -> tuple[FloatArray, FloatArray]:
    """One forward-Euler IDM step of agents (nuPlan's form): new progress [m] and speed [m/s].

    The desired gap ``s0 + v T + v (v - v_lead) / (2 sqrt(a b))`` is not clamped (a much faster leader brakes
    too, through its square); the gap ``lead_distance - lead_rear`` is floored at ``s0``.
    """
    s_star = (
        cfg.min_gap
        + velocity * cfg.headway
        + velocity * (velocity - lead_velocity) / (2.0 * np.sqrt(cfg.accel_max * cfg.decel_max))
    )
    gap = np.maximum(lead_distance - lead_rear, cfg.min_gap)
    accel = cfg.accel_max * (1.0 - (velocity / desired) ** cfg.delta - (s_star / gap) ** 2)
    new_velocity = np.maximum(0.0, velocity + dt * np.clip(accel, -cfg.decel_max, cfg.accel_max))
    return progress + dt * velocity, new_velocity


# ---------------------------------------------------------------------------------------------- simulation
class _Rollout:
    """The rollouts of ``K`` plans in one scene; ``run`` fills a ``TrafficBatch``."""

    def __init__(self, cache: SceneCache, agents: _Agents, ego_states: FloatArray, cfg: ReactiveTrafficConfig):
        self.cache, self.ag, self.cfg = cache, agents, cfg
        self.ego = ego_states  # (K, T, n_state)
        self.k, self.t = ego_states.shape[:2]
        a = len(agents.paths)
        self.p = np.tile(agents.progress, (self.k, 1))  # (K, A) progress at the start of the step
        self.v = np.tile(agents.speed, (self.k, 1))
        self.alive = np.ones((self.k, a), dtype=bool)
        self.table = PathTable(agents.paths)
        self._footprints: dict[tuple[int, float, float], shapely.Geometry] = {}
        self._corridors: dict[tuple[int, float], shapely.Geometry] = {}
        self.ego_size = np.array([PACIFICA.length, PACIFICA.width])

    # -------------------------------------------------------------- geometry of one agent
    def pose(self, agent: int, progress: FloatArray) -> FloatArray:
        """Poses ``(..., 3)`` of an agent at (bounded) progress values."""
        return self.ag.paths[agent].pose_at(progress)

    def box(self, agent: int, progress: float) -> shapely.Geometry:
        """An agent's box at a progress."""
        size = np.array([self.ag.length[agent], self.ag.width[agent]])
        return shapely.polygons(_boxes(self.pose(agent, progress), size))

    def footprint(self, agent: int, progress: float, velocity: float) -> shapely.Geometry:
        """An agent's projected footprint: box plus the path ``length / 2`` behind to ``length / 2 + v T`` ahead."""
        key = (agent, progress, velocity)
        geom = self._footprints.get(key)
        if geom is None:
            path, half = self.ag.paths[agent], self.ag.length[agent] / 2
            box = self.box(agent, progress)
            start, end = path.clamp(progress - half), path.clamp(progress + half + velocity * self.cfg.headway)
            if end > start:
                line = shapely.linestrings(path.stretch(start, end))
                box = shapely.union(shapely.buffer(line, self.ag.width[agent] / 2, **BUFFER_STYLE), box)
            geom = shapely.simplify(box, self.cfg.simplify_tolerance, preserve_topology=True)
            self._footprints[key] = geom
        return geom

    def corridor(self, agent: int, progress: float) -> shapely.Geometry:
        """An agent's corridor from its (bounded) progress to its path's end."""
        key = (agent, progress)
        geom = self._corridors.get(key)
        if geom is None:
            geom = self._corridors[key] = self.ag.paths[agent].corridor(progress, self.ag.width[agent])
        return geom

    # -------------------------------------------------------------- one step
    def _reach(self, first: bool) -> FloatArray:
        """Bounds ``(K, A, 4)`` covering each agent's occupancy before and after this step's update.

        Both footprints lie on the path from half a length behind the progress to half a length plus the
        headway at the grown speed beyond this step's travel; boxes stay within their half-diagonal of the path.
        """
        ag, cfg = self.ag, self.cfg
        ahead = STEP * self.v + ag.length / 2 + (self.v + STEP * cfg.accel_max) * cfg.headway
        reach = self.table.stretch_bounds(self.p - ag.length / 2, self.p + ahead)
        margin = np.hypot(ag.length / 2, ag.width / 2) + 1e-4  # (A,) box half-diagonal, simplification
        reach[..., :2] -= margin[:, None]
        reach[..., 2:] += margin[:, None]
        if first:  # the snapped box is the occupancy before the first update
            sb = np.broadcast_to(ag.snapped_bounds, reach.shape)
            reach[..., :2] = np.minimum(reach[..., :2], sb[..., :2])
            reach[..., 2:] = np.maximum(reach[..., 2:], sb[..., 2:])
        return reach

    def step(self, step: int) -> tuple[FloatArray, FloatArray]:
        """Advance every agent by one step against ego state ``step - 1``; returns the new (p, v) ``(K, A)``."""
        ag, cfg = self.ag, self.cfg
        num_agents = len(ag.paths)
        ego = self.ego[:, step - 1]  # (K, n_state)
        ego_speed = speed(ego)
        ego_heading = ego[:, StateIndex.HEADING]
        # the ego as navsim shows it to the agents: its box centred on the rear axle
        ego_corners = _boxes(ego[:, POSE], np.broadcast_to(self.ego_size, (self.k, 2)))
        bounded = self.table.clamp(self.p)  # (K, A)
        now = self.table.pose_at(bounded)  # (K, A, 3)
        heading = now[..., SE2Index.HEADING]
        gap = now[..., XY] - ego[:, None, XY]
        self.alive &= np.hypot(gap[..., SE2Index.X], gap[..., SE2Index.Y]) <= cfg.radius

        corridor = self.table.bounds_ahead(bounded)  # (K, A, 4)
        corridor[..., :2] -= ag.width[:, None] / 2
        corridor[..., 2:] += ag.width[:, None] / 2
        reach = self._reach(step == 1)
        touches_agent = _overlap(corridor[:, :, None], reach[:, None]) & self.alive[:, None]  # (K, A, A)
        touches_agent[:, np.arange(num_agents), np.arange(num_agents)] = False
        touches_ego = _overlap(corridor, _bounds(ego_corners)[:, None])  # (K, A)
        exact = self.alive & (touches_agent.any(-1) | touches_ego)

        # free road for everyone; the pairs whose corridor something may reach are redone below, in agent order
        p_new, v_new = idm_step(self.p, self.v, ag.desired, self.table.end - self.p, 0.0, ag.length / 2, cfg)
        p_new = np.where(self.alive, p_new, self.p)
        v_new = np.where(self.alive, v_new, self.v)
        for a in np.flatnonzero(exact.any(axis=0)):
            for k in np.flatnonzero(exact[:, a]):
                others = np.flatnonzero(touches_agent[k, a])
                lead = self._leader(step, k, a, others, bool(touches_ego[k, a]), bounded[k], p_new[k], v_new[k])
                if lead is None:
                    continue  # nothing in the corridor after all: the free-road update stands
                d, other = lead
                if other < 0:
                    lead_speed = ego_speed[k] * np.cos(wrap_to_pi(ego_heading[k] - heading[k, a]))
                else:
                    now_p = p_new[k, other] if other < a else self.p[k, other]
                    now_v = v_new[k, other] if other < a else self.v[k, other]
                    rel = self.pose(other, now_p)[SE2Index.HEADING] - heading[k, a]
                    lead_speed = now_v * np.cos(wrap_to_pi(rel))
                p_new[k, a], v_new[k, a] = idm_step(self.p[k, a], self.v[k, a], ag.desired[a], d, lead_speed, 0.0, cfg)
        self.p, self.v = p_new, v_new
        return p_new, v_new

    def _occupancy(
        self, step: int, k: int, agent: int, p_new: FloatArray, v_new: FloatArray, updated: bool
    ) -> shapely.Geometry:
        """What agent ``agent`` occupies in candidate ``k``: its new footprint once ``updated`` this step."""
        if updated:
            return self.footprint(agent, float(p_new[agent]), float(v_new[agent]))
        if step == 1:
            return self.ag.snapped[agent]
        return self.footprint(agent, float(self.p[k, agent]), float(self.v[k, agent]))

    def _leader(
        self,
        step: int,
        k: int,
        a: int,
        others: np.ndarray,
        with_ego: bool,
        bounded: FloatArray,
        p_new: FloatArray,
        v_new: FloatArray,
    ) -> tuple[float, int] | None:
        """(distance, index; -1 for the ego) of agent ``a``'s leader in candidate ``k``, ``None`` on a free road."""
        corridor = self.corridor(a, float(bounded[a]))
        own = self._occupancy(step, k, a, p_new, v_new, updated=False)
        if step == 1 and not shapely.intersects(corridor, own):
            raise ValueError(
                f"scene {self.cache.token}: the path of vehicle {self.cache.traffic.vehicle_tokens[self.ag.vehicle[a]]}"  # type: ignore[union-attr]
                " misses its own snapped box (navsim fails such a token)"
            )
        geoms = [self._occupancy(step, k, int(o), p_new, v_new, updated=bool(o < a)) for o in others]
        ids = [int(o) for o in others]
        if with_ego:
            corners = _boxes(self.ego[k, step - 1, POSE], self.ego_size)
            geoms.append(shapely.polygons(corners))
            ids.append(-1)
        if not geoms:
            return None
        hit = shapely.intersects(corridor, geoms)
        if not hit.any():
            return None
        dist = shapely.distance(own, [g for g, h in zip(geoms, hit, strict=True) if h])
        best = int(np.argmin(dist))  # first on ties: agents in order, the ego last
        return float(dist[best]), [i for i, h in zip(ids, hit, strict=True) if h][best]

    # -------------------------------------------------------------- frames
    def run(self) -> TrafficBatch:
        """All frames of all candidates."""
        seed: TrafficSeed = self.cache.traffic  # type: ignore[assignment]
        ag = self.ag
        num_v, replay = len(seed), seed.replay
        n = num_v + len(replay)
        poses = np.zeros((self.k, self.t, n, 3))
        speeds = np.zeros((self.k, self.t, n))
        valid = np.zeros((self.k, self.t, n), dtype=bool)
        is_idm = np.zeros((self.k, self.t, n), dtype=bool)
        logged_speed = np.hypot(*seed.vehicle_velocities.T) if num_v else np.zeros(0)
        # frame 0: the current frame's log, every object
        poses[:, :, :num_v] = seed.vehicle_poses
        speeds[:, :, :num_v] = logged_speed
        valid[:, 0, :num_v] = True
        poses[:, :, num_v:] = replay.poses
        speeds[:, :, num_v:] = np.hypot(replay.velocities[..., 0], replay.velocities[..., 1])
        valid[:, 0, num_v:] = seed.replay_current
        valid[:, 1:, num_v:] = replay.valid[1:]
        parked = np.flatnonzero(ag.parked)
        parked_boxes = shapely.polygons(_boxes(seed.vehicle_poses[parked], seed.vehicle_sizes[parked]))
        parked_bounds = shapely.bounds(parked_boxes).reshape(-1, 4)
        col = ag.vehicle
        for step in range(1, self.t):
            p, v = self.step(step) if len(ag.paths) else (self.p, self.v)
            poses[:, step, col] = self.table.pose_at(p)
            speeds[:, step, col] = v
            valid[:, step, col] = self.alive
            is_idm[:, step, col] = self.alive
            if len(parked):
                valid[:, step, parked] = ~self._parked_hidden(step, parked_boxes, parked_bounds, poses[:, step, col])
        # the scorer types collisions with each object's first occurrence
        first = np.argmax(valid, axis=1)  # (K, N)
        vel = np.concatenate([np.broadcast_to(seed.vehicle_velocities, (self.t, num_v, 2)), replay.velocities], 1)
        velocities = np.broadcast_to(vel[first, np.arange(n)][:, None], (self.k, self.t, n, 2))
        sizes = np.concatenate([seed.vehicle_sizes, replay.sizes])
        names = ["vehicle"] * num_v + list(replay.names)
        return TrafficBatch(poses, velocities, speeds, valid, sizes, names, seed.vehicle_tokens + replay.tokens, is_idm)

    def _parked_hidden(self, step: int, boxes: np.ndarray, bounds: FloatArray, agent_poses: FloatArray) -> np.ndarray:
        """Which parked vehicles ``(K, P)`` an agent's current box overlaps (they are absent from the frame)."""
        sizes = np.stack([self.ag.length, self.ag.width], axis=1)
        corners = _boxes(agent_poses, np.broadcast_to(sizes, (*agent_poses.shape[:-1], 2)))  # (K, A, 4, 2)
        near = _overlap(bounds[None, :, None], _bounds(corners)[:, None]) & self.alive[:, None]  # (K, P, A)
        hidden = np.zeros(near.shape[:2], dtype=bool)
        k, q, a = np.nonzero(near)
        if len(k):
            hit = shapely.intersects(boxes[q], shapely.polygons(corners[k, a]))
            hidden[k[hit], q[hit]] = True
        return hidden


def simulate_reactive_traffic(
    cache: SceneCache, ego_states: FloatArray, config: ReactiveTrafficConfig | None = None
) -> TrafficBatch:
    """Traffic reacting to each of ``K`` simulated ego rollouts ``(K, T, n_state)`` in a cached scene.

    Raises:
        ValueError: naming the scene when its cache has no traffic inputs, or where navsim fails the token (a
            lane too short for a path, an agent whose path misses its own snapped box).
    """
    cfg = ReactiveTrafficConfig() if config is None else config
    key = f"reactive_agents/{cfg}"
    agents = cache._derived.get(key)
    if agents is None:
        agents = cache._derived[key] = _agents(cache, cfg)
    return _Rollout(cache, agents, np.asarray(ego_states, dtype=np.float64), cfg).run()
