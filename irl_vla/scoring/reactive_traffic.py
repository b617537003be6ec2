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

import hashlib
import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import shapely

from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.vehicle import PACIFICA
from irl_vla.scoring.lane_path import BUFFER_STYLE, LanePath, PathTable, wrap_to_pi
from irl_vla.scoring.scene_cache import STEP, SceneCache, Tracks
from irl_vla.scoring.segment_grid import SegmentGrid
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


# ---------------------------------------------------------------------------------------------- cheap corridor tests
#: Margin of the cheap corridor tests, as a fraction of the corridor's half-width (at least 1 m of it). GEOS draws a
#: corridor's round joins as chords (0.12 % of the half-width inside the arc at 16 segments a quarter) and first
#: simplifies the buffered line by 1 % of the half-width; footprints are simplified by 1e-5 m. A test decided with
#: this margin therefore gives what shapely's exact ``intersects`` gives.
CORRIDOR_MARGIN = 0.05
#: Footprints a scene keeps for its rollouts before it starts afresh.
FOOTPRINT_CACHE_SIZE = 20_000
#: Rollouts a scene keeps, by the simulated ego states they reacted to (the oldest goes first).
ROLLOUT_CACHE_SIZE = 16
#: Slack [m] for the 1e-5 m simplification of footprints and rounding in the cover radii.
_SLACK = 1e-4
#: Points of the ego's box in the cheap tests: 4 corners and 5 points on its long axis (witnesses, in the box),
#: then the centres of 3 disks that cover it, one in the middle of each third of its length.
_AXIS = np.array([-0.5, -0.25, 0.0, 0.25, 0.5, -1.0 / 3.0, 0.0, 1.0 / 3.0])
_WITNESSES = 4 + 5


def _box_points(poses: FloatArray, sizes: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Corners ``(..., 4, 2)`` of boxes and their test points ``(..., 12, 2)`` (witnesses, then disk centres)."""
    corners = _boxes(poses, sizes)
    u = np.stack([np.cos(poses[..., SE2Index.HEADING]), np.sin(poses[..., SE2Index.HEADING])], axis=-1)
    along = sizes[..., 0, None, None] * u[..., None, :]  # (..., 1, 2) the length along the heading
    return corners, np.concatenate([corners, poses[..., None, XY] + _AXIS[:, None] * along], axis=-2)


def _box_radius(length: float, width: float) -> float:
    """Radius [m] of the disks that cover a box in ``_box_points``."""
    return float(np.hypot(length / 6, width / 2)) + _SLACK


def _heading_spread(path: LanePath, reach: float) -> float:
    """Largest spread [rad] of the vertex headings within ``reach`` [m] of progress along any one segment."""
    arc, heading = path.progress, path.heading
    m = len(arc)
    lo = np.maximum(np.searchsorted(arc, arc[:-1] - reach, side="right") - 1, 0)  # first vertex of each window
    hi = np.minimum(np.searchsorted(arc, arc[1:] + reach, side="left"), m - 1)  # and its last
    idx = lo[:, None] + np.arange(int((hi - lo).max()) + 1)
    inside = idx <= hi[:, None]
    values = heading[np.minimum(idx, m - 1)]
    return float((np.where(inside, values, -np.inf).max(1) - np.where(inside, values, np.inf).min(1)).max())


@dataclass
class _Lanes:
    """The agents' paths as segments with a grid, and how close each path comes to every vertex of the others.

    Attributes:
        start: segment start points [m] ``(S, 2)``.
        vec: segment vectors [m] ``(S, 2)``.
        len2: squared segment lengths [m^2] ``(S,)``.
        arc0: progress at the segment start [m] ``(S,)``.
        arc_len: progress along the segment [m] ``(S,)``.
        path: the agent whose path holds the segment ``(S,)``.
        last_start: progress of each path's second-to-last vertex, where a corridor from the path end starts ``(A,)``.
        last_start_xy: that vertex [m] ``(A, 2)``.
        last_xy: each path's last vertex [m] ``(A, 2)``.
        grid: segments near any point within the largest reach of a test.
        reach_arc: ``[a, o, j]``: the largest progress [m] on path ``a`` within ``D[a, o]`` of vertex ``j`` of path
            ``o``, ``-inf`` where none is (and as padding) ``(A, A, M)``. ``D[a, o]`` is ``a``'s half-width and
            margin plus ``o``'s cover radius: the box and footprint of ``o`` lie within that radius of the vertices
            around them on its path, so they meet ``a``'s corridor from progress ``s`` only if one of those
            vertices has a value >= ``s``.
    """

    start: FloatArray
    vec: FloatArray
    len2: FloatArray
    arc0: FloatArray
    arc_len: FloatArray
    path: np.ndarray
    last_start: FloatArray
    last_start_xy: FloatArray
    last_xy: FloatArray
    grid: SegmentGrid
    reach_arc: FloatArray

    @classmethod
    def of(cls, paths: list[LanePath], length: FloatArray, width: FloatArray, margin: FloatArray) -> _Lanes:
        """Segments of the ``paths`` of agents of ``length`` and ``width`` [m] with corridor test ``margin`` [m].

        An agent's cover radius is its half-width, plus half its path's longest segment (every path point is that
        close to a vertex), plus how far its box strays from the path: half its length times the spread of path
        headings within half its length (the box is straight, its path may bend).
        """
        xy = [p.xy for p in paths]
        arc = [p.progress for p in paths]
        vec = [np.diff(v, axis=0) for v in xy]
        spread = [_heading_spread(p, half) for p, half in zip(paths, length / 2, strict=True)]
        cover = width / 2 + np.array([np.hypot(*v.T).max() / 2 for v in vec]) + length / 2 * np.array(spread)
        cover = cover + _SLACK
        corridor = width / 2 + margin
        reach = float(corridor.max() + max(cover.max(), _box_radius(PACIFICA.length, PACIFICA.width)) + _SLACK)
        start, vecs = np.concatenate([v[:-1] for v in xy]), np.concatenate(vec)
        lanes = cls(
            start=start,
            vec=vecs,
            len2=np.einsum("si,si->s", vecs, vecs),
            arc0=np.concatenate([s[:-1] for s in arc]),
            arc_len=np.concatenate([np.diff(s) for s in arc]),
            path=np.concatenate([np.full(len(s) - 1, i) for i, s in enumerate(arc)]),
            last_start=np.array([s[-2] for s in arc]),
            last_start_xy=np.array([v[-2] for v in xy]),
            last_xy=np.array([v[-1] for v in xy]),
            grid=SegmentGrid(start, vecs, reach),
            reach_arc=np.zeros(0),
        )
        lanes.reach_arc = lanes._reach_arc(xy, corridor[:, None] + cover[None, :])
        return lanes

    def _reach_arc(self, xy: list[FloatArray], reach: FloatArray) -> FloatArray:
        """``reach_arc`` for vertices ``xy`` (one array per path) and distances ``reach[a, o]`` [m]."""
        a_n, m = len(xy), max(len(v) for v in xy)
        out = np.full((a_n, a_n, m), -np.inf)
        owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(xy)])
        index = np.concatenate([np.arange(len(v)) for v in xy])
        points = np.concatenate(xy)
        q, seg = self.grid.candidates(points)
        a = self.path[seg]
        other = a != owner[q]
        q, seg, a = q[other], seg[other], a[other]
        o = owner[q]
        # the points of segment seg within d of the vertex: fractions t in [b - root, b + root]
        rel = points[q] - self.start[seg]
        b = np.einsum("qi,qi->q", rel, self.vec[seg]) / self.len2[seg]
        d = reach[a, o] + _SLACK
        disc = b**2 - (np.einsum("qi,qi->q", rel, rel) - d**2) / self.len2[seg]
        root = np.sqrt(np.maximum(disc, 0.0))
        ok = (disc >= 0) & (b + root >= 0) & (b - root <= 1)
        arc = self.arc0[seg] + np.minimum(b + root, 1.0) * self.arc_len[seg] + _SLACK
        np.maximum.at(out, (a[ok], o[ok], index[q[ok]]), arc[ok])
        return out

    def distance(self, points: FloatArray, seg: np.ndarray) -> FloatArray:
        """Distance [m] of points ``(Q, 2)`` to segments ``seg`` ``(Q,)``."""
        rel = points - self.start[seg]
        vec = self.vec[seg]
        f = np.clip(np.einsum("qi,qi->q", rel, vec) / self.len2[seg], 0.0, 1.0)
        gap = rel - f[:, None] * vec
        return np.hypot(gap[:, 0], gap[:, 1])


@dataclass
class _EgoTests:
    """The ego's test points near the agents' paths, for every step: what does not change while agents move.

    Attributes:
        offsets: pairs of step ``t`` are ``offsets[t]:offsets[t + 1]`` ``(T + 1,)``.
        k: the candidate of each (point, segment) pair ``(Q,)``.
        a: the agent whose path holds the segment ``(Q,)``.
        arc0: progress at the segment's start [m] ``(Q,)``.
        arc1: progress at its end [m] ``(Q,)``.
        sure: a witness deep enough in the agent's corridor if the segment is ahead of the agent, and clear of
            the path's end ``(Q,)``.
        points: the points [m] ``(Q, 2)``.
    """

    offsets: np.ndarray
    k: np.ndarray
    a: np.ndarray
    arc0: FloatArray
    arc1: FloatArray
    sure: np.ndarray
    points: FloatArray

    @classmethod
    def of(cls, points: FloatArray, lanes: _Lanes, half_width: FloatArray, margin: FloatArray) -> _EgoTests:
        """Pairs of test points ``(K, T, 12, 2)`` near enough to matter to corridors of ``half_width`` [m] ``(A,)``."""
        t_n, p_n = points.shape[1:3]
        flat = points.reshape(-1, 2)
        q, seg = lanes.grid.candidates(flat)
        a = lanes.path[seg]
        dist = lanes.distance(flat[q], seg)
        witness = q % p_n < _WITNESSES
        radius = np.where(witness, 0.0, _box_radius(PACIFICA.length, PACIFICA.width))
        keep = dist <= half_width[a] + margin[a] + radius
        q, seg, a, dist, witness = q[keep], seg[keep], a[keep], dist[keep], witness[keep]
        clear = np.hypot(*(flat[q] - lanes.last_xy[a]).T) > half_width[a] + margin[a]
        t = (q // p_n) % t_n
        order = np.argsort(t, kind="stable")
        q, seg, a = q[order], seg[order], a[order]
        return cls(
            offsets=np.searchsorted(t[order], np.arange(t_n + 1)),
            k=q // (p_n * t_n),
            a=a,
            arc0=lanes.arc0[seg],
            arc1=lanes.arc0[seg] + lanes.arc_len[seg],
            sure=(witness & (dist <= half_width[a] - margin[a]) & clear)[order],
            points=flat[q],
        )


@dataclass
class _Candidates:
    """What may be in each agent's corridor this step, from the cheap tests.

    Entities ``E = A + 1``: the agents in order, then the ego. ``near`` is False only where the entity provably
    misses the corridor, ``inside`` True only where it provably meets it; the rest needs the exact test.

    Attributes:
        near: ``(K, A, E)``.
        inside: ``(K, A, E)``, a subset of ``near``.
    """

    near: np.ndarray
    inside: np.ndarray


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
    snapped_poses: FloatArray  # (A, 3) their centre poses
    snapped_bounds: FloatArray  # (A, 4)
    parked: np.ndarray  # (V,) vehicles shown frozen at t = 0 unless an agent's box overlaps them
    table: PathTable  # the paths as arrays
    lanes: _Lanes | None  # the paths' segments for the cheap corridor tests (None without agents)
    margin: FloatArray  # (A,) margin of the cheap tests of each agent's corridor [m]
    same_lane: np.ndarray  # (A, A) whether two agents drive the same lane segment (so the same path)
    footprints: dict[tuple[int, float, float], shapely.Geometry] = field(default_factory=dict)  # by (agent, p, v)

    @property
    def ends(self) -> FloatArray:
        """Path lengths ``(A,)`` [m]."""
        return self.table.end


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
    length, width = seed.vehicle_sizes[idx, 0], seed.vehicle_sizes[idx, 1]
    margin = CORRIDOR_MARGIN * np.maximum(width / 2, 1.0)
    return _Agents(
        vehicle=idx,
        paths=paths,
        length=length,
        width=width,
        desired=np.where(np.isfinite(limits) & (limits > 0), limits, cfg.target_velocity),
        progress=seed.vehicle_progress[idx],
        speed=np.hypot(*seed.vehicle_velocities[idx].T) if len(idx) else np.zeros(0),
        snapped=taken[1:],
        snapped_poses=seed.vehicle_snapped[idx],
        snapped_bounds=_bounds(snapped_corners[idx]),
        parked=parked,
        table=PathTable(paths),
        lanes=_Lanes.of(paths, length, width, margin) if paths else None,
        margin=margin,
        same_lane=seed.vehicle_segment[idx][:, None] == seed.vehicle_segment[idx][None, :],
    )


# ---------------------------------------------------------------------------------------------- IDM
def idm_step(
    progress: FloatArray | float,
    velocity: FloatArray | float,
    desired: FloatArray | float,
    lead_distance: FloatArray | float,
    lead_velocity: FloatArray | float,
    lead_rear: FloatArray | float,
    cfg: ReactiveTrafficConfig,
    dt: float = STEP,
) -> tuple[FloatArray | float, FloatArray | float]:
    """One forward-Euler IDM step of agents (nuPlan's form): new progress [m] and speed [m/s].

    The desired gap ``s0 + v T + v (v - v_lead) / (2 sqrt(a b))`` is not clamped (a much faster leader brakes
    too, through its square); the gap ``lead_distance - lead_rear`` is floored at ``s0``. ``velocity`` an array:
    every argument broadcasts; a plain float (one agent): every argument a plain float, the same arithmetic.
    """
    s_star = (
        cfg.min_gap
        + velocity * cfg.headway
        + velocity * (velocity - lead_velocity) / (2.0 * math.sqrt(cfg.accel_max * cfg.decel_max))
    )
    if isinstance(velocity, np.ndarray):
        gap = np.maximum(lead_distance - lead_rear, cfg.min_gap)
        accel = cfg.accel_max * (1.0 - (velocity / desired) ** cfg.delta - (s_star / gap) ** 2)
        return progress + dt * velocity, np.maximum(0.0, velocity + dt * np.clip(accel, -cfg.decel_max, cfg.accel_max))
    # one agent: the same operations on plain floats, without numpy's per-call cost
    gap = max(lead_distance - lead_rear, cfg.min_gap)
    accel = cfg.accel_max * (1.0 - (velocity / desired) ** cfg.delta - (s_star / gap) ** 2)
    return progress + dt * velocity, max(0.0, velocity + dt * min(max(accel, -cfg.decel_max), cfg.accel_max))


# ---------------------------------------------------------------------------------------------- simulation
class _Rollout:
    """The rollouts of ``K`` plans in one scene; ``run`` fills a ``TrafficBatch``.

    Each step, cheap tests (``_candidates``) settle for every (candidate, agent, other entity) whether the entity
    provably misses or provably meets the agent's corridor, with a margin that GEOS's approximations cannot cross:
    the ego's box points (witnesses in it, disks covering it) against the agent's path ahead, other agents through
    the per-scene table of how close the paths come to each other (and, on the same lane, by progress). Only the
    undecided get shapely's exact test, and only agents with something in their corridor measure polygon
    distances, so results equal testing every entity exactly.
    """

    def __init__(self, cache: SceneCache, agents: _Agents, ego_states: FloatArray, cfg: ReactiveTrafficConfig):
        self.cache, self.ag, self.cfg = cache, agents, cfg
        self.ego = ego_states  # (K, T, n_state)
        self.k, self.t = ego_states.shape[:2]
        a = len(agents.paths)
        self.p = np.tile(agents.progress, (self.k, 1))  # (K, A) progress at the start of the step
        self.v = np.tile(agents.speed, (self.k, 1))
        self.alive = np.ones((self.k, a), dtype=bool)
        self.table = agents.table
        self._corridors: dict[tuple[int, float], shapely.Geometry] = {}
        self.ego_size = np.array([PACIFICA.length, PACIFICA.width])
        self.sizes = np.stack([agents.length, agents.width], axis=1)  # (A, 2)
        # the ego as navsim shows it to the agents: its box centred on the rear axle, at every step
        self.ego_corners, ego_points = _box_points(ego_states[..., POSE], self.ego_size)  # (K, T, 4 | 12, 2)
        self.now = self.table.pose_at(self.p) if a else np.zeros((self.k, 0, 3))  # (K, A, 3) poses at p
        self._later = np.triu(np.ones((a, a), dtype=bool), k=1)  # [a, o]: o comes after a
        self._earlier = np.tri(a, k=-1, dtype=bool)  # [a, o]: o comes before a
        self._others = ~np.eye(a, dtype=bool)  # [a, o]: o is not a
        self.after_corners = np.zeros((self.k, a, 4, 2))  # boxes at the progress after this step's update
        self.before_corners = self.after_corners  # and before it (the previous step's after)
        if a:
            assert agents.lanes is not None
            self.ego_tests = _EgoTests.of(ego_points, agents.lanes, agents.width / 2, agents.margin)

    # -------------------------------------------------------------- geometry of one agent
    def footprints(self, keys: list[tuple[int, float, float]], corners: FloatArray) -> None:
        """Build the missing projected footprints of (agent, progress, speed) ``keys``, boxes ``corners`` ``(N, 4, 2)``.

        A footprint is the agent's box plus its path from ``length / 2`` behind to ``length / 2 + v T`` ahead,
        buffered by half its width, simplified. Footprints depend on nothing else, so the scene keeps them for
        every rollout; they are built together, one vectorised GEOS call per operation.
        """
        cache = self.ag.footprints
        todo = {key: i for i, key in enumerate(keys) if key not in cache}
        if not todo:
            return
        if len(cache) > FOOTPRINT_CACHE_SIZE:
            cache.clear()
        boxes = shapely.polygons(corners[list(todo.values())])
        lines, radius, which = [], [], []
        for i, (agent, progress, velocity) in enumerate(todo):
            path, half = self.ag.paths[agent], self.ag.length[agent] / 2
            start, end = path.clamp(progress - half), path.clamp(progress + half + velocity * self.cfg.headway)
            if end > start:
                lines.append(path.stretch(start, end))
                radius.append(self.ag.width[agent] / 2)
                which.append(i)
        if lines:
            index = np.repeat(np.arange(len(lines)), [len(line) for line in lines])
            tubes = shapely.buffer(shapely.linestrings(np.concatenate(lines), indices=index), radius, **BUFFER_STYLE)
            boxes[which] = shapely.union(tubes, boxes[which])
        geoms = shapely.simplify(boxes, self.cfg.simplify_tolerance, preserve_topology=True)
        cache.update(zip(todo, geoms, strict=True))

    def _build_states(self, mask: np.ndarray, progress: FloatArray, velocity: FloatArray, corners: FloatArray) -> None:
        """Build the footprints of the (candidate, agent) pairs in ``mask`` ``(K, A)`` at these states ``(K, A)``."""
        k, a = np.nonzero(mask)
        keys = [(int(i), float(p), float(v)) for i, p, v in zip(a, progress[k, a], velocity[k, a], strict=True)]
        self.footprints(keys, corners[k, a])

    def corridor(self, agent: int, progress: float) -> shapely.Geometry:
        """An agent's corridor from its (bounded) progress to its path's end."""
        key = (agent, progress)
        geom = self._corridors.get(key)
        if geom is None:
            geom = self._corridors[key] = self.ag.paths[agent].corridor(progress, self.ag.width[agent])
        return geom

    # -------------------------------------------------------------- cheap tests
    # -------------------------------------------------------------- cheap tests
    def _candidates(
        self, step: int, bounded: FloatArray, p_after: FloatArray, after: FloatArray, touches: np.ndarray | None
    ) -> _Candidates:
        """Cheap corridor tests of every (candidate, agent, entity) this step (see the class docstring).

        The entities are as the agent finds them in its turn: the ego's box centred on its rear axle at step - 1,
        earlier agents after their update at ``p_after`` (poses ``after``; their footprint ahead bounded by the
        largest speed the update can reach), later agents before it. At step 1 those are their snapped boxes,
        off their paths: there, ``touches`` (boxes that may touch the corridor's bounding box) stands in.
        """
        ag, cfg, lanes = self.ag, self.cfg, self.ag.lanes
        assert lanes is not None
        k_n, a_n = self.p.shape
        half, deep = ag.length / 2, ag.width / 2 + ag.margin  # (A,)
        at_end = bounded >= ag.ends  # (K, A) at its path's end, a corridor is the last segment
        window = np.where(at_end, lanes.last_start, bounded)  # where the corridor starts on the path
        start_xy = np.where(at_end[..., None], lanes.last_start_xy, self.now[..., XY])
        near = np.zeros((k_n, a_n, a_n + 1), dtype=bool)
        inside = np.zeros_like(near)
        # the ego: a pair counts where its segment reaches into the corridor
        ego = self.ego_tests
        rows = slice(ego.offsets[step - 1], ego.offsets[step])
        k, a = ego.k[rows], ego.a[rows]
        ahead = self.alive[k, a] & (ego.arc1[rows] > window[k, a])
        near[k[ahead], a[ahead], a_n] = True
        sure = np.flatnonzero(ahead & ego.sure[rows] & (ego.arc0[rows] >= window[k, a]) & ~at_end[k, a])
        k, a = k[sure], a[sure]
        sure = np.hypot(*(ego.points[rows][sure] - start_xy[k, a]).T) > deep[a]  # clear of the corridor's start
        inside[k[sure], a[sure], a_n] = True
        # the other agents [k, a, o]: earlier ones after their update, later ones before it
        earlier = self._earlier
        live = self.alive[:, :, None] & self.alive[:, None, :] & self._others
        progress = np.where(earlier, p_after[:, None, :], self.p[:, None, :])  # (K, A, A)
        fastest = np.where(earlier, self.v[:, None, :] + STEP * cfg.accel_max, self.v[:, None, :])
        centre = self.table.clamp(progress)
        reach = self.table.clamp(progress + half + fastest * cfg.headway)
        first = self.table.segment(centre - half)
        last = self.table.segment(np.maximum(centre + half, reach)) + 1
        idx = first[..., None] + np.arange(int((last - first).max(initial=0)) + 1)  # (K, A, A, W) vertices
        agents = np.arange(a_n)
        vertex = np.minimum(idx, lanes.reach_arc.shape[-1] - 1)
        arc = lanes.reach_arc[agents[:, None, None], agents[None, :, None], vertex]
        arc = np.where(idx <= last[..., None], arc, -np.inf).max(axis=-1, initial=-np.inf)
        on_path = (centre - half >= 0.0) & (centre + half <= ag.ends)  # the box has path vertices around it
        met = live & ((arc >= window[..., None]) | ~on_path)
        # on the same lane, an agent's box centre lies on the path ahead: in the corridor, clear of its ends
        xy = np.where(earlier[..., None], after[:, None, :, XY], self.now[:, None, :, XY])  # (K, A, A, 2)
        sure = live & ag.same_lane & ~at_end[..., None] & (centre > window[..., None])
        sure &= np.hypot(*np.moveaxis(xy - start_xy[:, :, None], -1, 0)) > deep[:, None]
        sure &= np.hypot(*np.moveaxis(xy - lanes.last_xy[:, None], -1, 0)) > deep[:, None]
        if step == 1:  # later agents are still in their snapped boxes
            met = np.where(earlier, met, live & touches)
            sure &= earlier
        near[..., :a_n] = met | sure
        inside[..., :a_n] = sure
        return _Candidates(near, inside)

    def _box_flags(self, bounded: FloatArray) -> tuple[np.ndarray, np.ndarray]:
        """Bounding-box tests of step 1: the pairs ``(K, A)`` to check, and the agents that may touch a corridor.

        The first are the (candidate, agent) pairs whose corridor's box meets another agent's or the ego's box:
        where such an agent's path misses its own snapped box, the scene fails, as it always has here. The second
        ``(K, A, A)`` are the agents whose boxes (before or after the update) meet each corridor's box.
        """
        ag, cfg = self.ag, self.cfg
        num_agents = len(ag.paths)
        corridor = self.table.bounds_ahead(bounded)  # (K, A, 4)
        corridor[..., :2] -= ag.width[:, None] / 2
        corridor[..., 2:] += ag.width[:, None] / 2
        ahead = STEP * self.v + ag.length / 2 + (self.v + STEP * cfg.accel_max) * cfg.headway
        reach = self.table.stretch_bounds(self.p - ag.length / 2, self.p + ahead)
        margin = np.hypot(ag.length / 2, ag.width / 2) + 1e-4  # (A,) box half-diagonal, simplification
        reach[..., :2] -= margin[:, None]
        reach[..., 2:] += margin[:, None]
        sb = np.broadcast_to(ag.snapped_bounds, reach.shape)  # the snapped box: the occupancy before the update
        reach[..., :2] = np.minimum(reach[..., :2], sb[..., :2])
        reach[..., 2:] = np.maximum(reach[..., 2:], sb[..., 2:])
        touches_agent = _overlap(corridor[:, :, None], reach[:, None]) & self.alive[:, None]  # (K, A, A)
        touches_agent[:, np.arange(num_agents), np.arange(num_agents)] = False
        touches_ego = _overlap(corridor, _bounds(self.ego_corners[:, 0])[:, None])  # (K, A)
        return self.alive & (touches_agent.any(-1) | touches_ego), touches_agent

    def step(self, step: int) -> tuple[FloatArray, FloatArray]:
        """Advance every agent by one step against ego state ``step - 1``; returns the new (p, v) ``(K, A)``."""
        ag, cfg = self.ag, self.cfg
        ego = self.ego[:, step - 1]  # (K, n_state)
        ego_speed = speed(ego)
        ego_heading = ego[:, StateIndex.HEADING]
        bounded = self.table.clamp(self.p)  # (K, A)
        heading = self.now[..., SE2Index.HEADING]
        gap = self.now[..., XY] - ego[:, None, XY]
        self.alive &= np.hypot(gap[..., SE2Index.X], gap[..., SE2Index.Y]) <= cfg.radius

        # free road for everyone; the pairs whose corridor something may reach are redone below, in agent order
        p_new, v_new = idm_step(self.p, self.v, ag.desired, self.table.end - self.p, 0.0, ag.length / 2, cfg)
        p_new = np.where(self.alive, p_new, self.p)
        v_new = np.where(self.alive, v_new, self.v)
        after = self.table.pose_at(p_new)  # (K, A, 3) every update moves an agent by its old speed
        self.after_corners = _boxes(after, np.broadcast_to(self.sizes, (*after.shape[:-1], 2)))
        check, touches = self._box_flags(bounded) if step == 1 else (np.zeros_like(self.alive), None)
        cand = self._candidates(step, bounded, p_new, after, touches)
        todo = cand.near.any(-1) | check
        num_agents = len(ag.paths)
        near_agents = cand.near[..., :num_agents]  # [k, a, o]: o may be in a's corridor
        if step > 1:  # the occupancies before the update that the agents will measure, built together
            need = (todo | (near_agents & self._later).any(axis=1)) & self.alive
            if need.any():
                self._build_states(need, self.p, self.v, self.before_corners)
        # each agent's footprint after its update: for later agents now, and for its own corridor test next step
        need_after = self.alive & (todo | (near_agents & self._earlier).any(axis=1))  # (K, A)
        for a in np.flatnonzero((todo | need_after).any(axis=0)):
            for k in np.flatnonzero(todo[:, a]):
                lead = self._leader(step, k, a, cand, bool(check[k, a]), bounded[k], p_new[k], v_new[k])
                if lead is None:
                    continue  # nothing in the corridor after all: the free-road update stands
                d, other = lead
                if other < 0:
                    lead_speed = ego_speed[k] * np.cos(wrap_to_pi(ego_heading[k] - heading[k, a]))
                else:
                    now_p = p_new[k, other] if other < a else self.p[k, other]
                    now_v = v_new[k, other] if other < a else self.v[k, other]
                    rel = ag.paths[other].pose_at(now_p)[SE2Index.HEADING] - heading[k, a]
                    lead_speed = now_v * np.cos(wrap_to_pi(rel))
                p_new[k, a], v_new[k, a] = idm_step(
                    float(self.p[k, a]), float(self.v[k, a]), float(ag.desired[a]), d, float(lead_speed), 0.0, cfg
                )
            if need_after[:, a].any():
                mask = np.zeros_like(self.alive)
                mask[:, a] = need_after[:, a]
                self._build_states(mask, p_new, v_new, self.after_corners)
        self.before_corners = self.after_corners
        self.p, self.v, self.now = p_new, v_new, after
        return p_new, v_new

    def _occupancy(
        self, step: int, k: int, agent: int, p_new: FloatArray, v_new: FloatArray, updated: bool
    ) -> shapely.Geometry:
        """What agent ``agent`` occupies in candidate ``k``: its new footprint once ``updated`` this step."""
        if updated:
            progress, velocity, corners = p_new[agent], v_new[agent], self.after_corners[k, agent]
        elif step == 1:
            return self.ag.snapped[agent]
        else:
            progress, velocity, corners = self.p[k, agent], self.v[k, agent], self.before_corners[k, agent]
        key = (agent, float(progress), float(velocity))
        if key not in self.ag.footprints:
            self.footprints([key], corners[None])
        return self.ag.footprints[key]

    def _leader(
        self,
        step: int,
        k: int,
        a: int,
        cand: _Candidates,
        check_own: bool,
        bounded: FloatArray,
        p_new: FloatArray,
        v_new: FloatArray,
    ) -> tuple[float, int] | None:
        """(distance, index; -1 for the ego) of agent ``a``'s leader in candidate ``k``, ``None`` on a free road."""
        own = self._occupancy(step, k, a, p_new, v_new, updated=False)
        if check_own and not shapely.intersects(self.corridor(a, float(bounded[a])), own):
            raise ValueError(
                f"scene {self.cache.token}: the path of vehicle {self.cache.traffic.vehicle_tokens[self.ag.vehicle[a]]}"  # type: ignore[union-attr]
                " misses its own snapped box (navsim fails such a token)"
            )
        ids = np.flatnonzero(cand.near[k, a])  # agents in order, then the ego (index A)
        if not len(ids):
            return None
        hit = cand.inside[k, a, ids]
        geoms: dict[int, shapely.Geometry] = {}

        def geometry(i: int) -> shapely.Geometry:
            if i not in geoms:
                if i == len(self.ag.paths):
                    geoms[i] = shapely.polygons(self.ego_corners[k, step - 1])
                else:
                    geoms[i] = self._occupancy(step, k, i, p_new, v_new, updated=bool(i < a))
            return geoms[i]

        unsure = np.flatnonzero(~hit)
        if len(unsure):
            corridor = self.corridor(a, float(bounded[a]))
            hit[unsure] = shapely.intersects(corridor, [geometry(int(ids[j])) for j in unsure])
        if not hit.any():
            return None
        found = ids[hit]
        dist = shapely.distance(own, [geometry(int(i)) for i in found])
        best = int(np.argmin(dist))  # first on ties: agents in order, the ego last
        other = int(found[best])
        return float(dist[best]), (-1 if other == len(self.ag.paths) else other)

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
            if len(ag.paths):
                _, v = self.step(step)
            else:
                v = self.v
            poses[:, step, col] = self.now
            speeds[:, step, col] = v
            valid[:, step, col] = self.alive
            is_idm[:, step, col] = self.alive
            if len(parked):
                valid[:, step, parked] = ~self._parked_hidden(parked_boxes, parked_bounds)
        # the scorer types collisions with each object's first occurrence
        first = np.argmax(valid, axis=1)  # (K, N)
        vel = np.concatenate([np.broadcast_to(seed.vehicle_velocities, (self.t, num_v, 2)), replay.velocities], 1)
        velocities = np.broadcast_to(vel[first, np.arange(n)][:, None], (self.k, self.t, n, 2))
        sizes = np.concatenate([seed.vehicle_sizes, replay.sizes])
        names = ["vehicle"] * num_v + list(replay.names)
        return TrafficBatch(poses, velocities, speeds, valid, sizes, names, seed.vehicle_tokens + replay.tokens, is_idm)

    def _parked_hidden(self, boxes: np.ndarray, bounds: FloatArray) -> np.ndarray:
        """Which parked vehicles ``(K, P)`` an agent's box after this step overlaps (they are absent from the frame)."""
        corners = self.after_corners  # (K, A, 4, 2)
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
    states = np.ascontiguousarray(ego_states, dtype=np.float64)
    # the same plan scored again (the human of the filter and the human agent, a second scorer or agent) gets the
    # rollout it got before: a rollout depends only on the scene, the constants and the simulated ego states
    rollouts, digest = _kept(cache, cfg), _digest(states)
    batch = rollouts.get(digest)
    if batch is None:
        batch = _Rollout(cache, agents, states, cfg).run()
        _keep(rollouts, digest, batch)
    return batch


def simulate_reactive_traffic_rows(
    cache: SceneCache, ego_states: FloatArray, config: ReactiveTrafficConfig | None = None
) -> None:
    """Roll traffic out for ``K`` ego rollouts ``(K, T, n_state)`` together and keep each as if rolled out alone.

    A later ``simulate_reactive_traffic`` of one row ``(1, T, n_state)`` then returns its rollout; rollouts of a
    batch equal those of its rows alone bit for bit (candidates never see each other), and one rollout of K plans
    costs much less than K rollouts. Rows already kept, and repeated rows, are rolled out once.
    """
    cfg = ReactiveTrafficConfig() if config is None else config
    states = np.ascontiguousarray(ego_states, dtype=np.float64)
    rollouts = _kept(cache, cfg)
    rows: dict[bytes, int] = {}
    for k in range(len(states)):
        digest = _digest(states[k : k + 1])
        if digest not in rollouts:
            rows.setdefault(digest, k)
    if not rows:
        return
    batch = simulate_reactive_traffic(cache, states[list(rows.values())], cfg)
    for i, digest in enumerate(rows):
        row = slice(i, i + 1)
        one = TrafficBatch(
            batch.poses[row],
            batch.velocities[row],
            batch.speeds[row],
            batch.valid[row],
            batch.sizes,
            batch.names,
            batch.tokens,
            batch.is_idm[row],
        )
        _keep(rollouts, digest, one)


def _kept(cache: SceneCache, cfg: ReactiveTrafficConfig) -> dict[bytes, TrafficBatch]:
    """The rollouts a scene keeps for these constants, by ``_digest`` of their ego states."""
    return cache._derived.setdefault(f"reactive_rollouts/{cfg}", {})


def _digest(states: FloatArray) -> bytes:
    """Key of contiguous float64 ego states: their bytes and shape."""
    return hashlib.blake2b(states.tobytes(), digest_size=16, person=str(states.shape).encode()[:16]).digest()


def _keep(rollouts: dict[bytes, TrafficBatch], digest: bytes, batch: TrafficBatch) -> None:
    """Keep a rollout (read-only), dropping the oldest beyond ``ROLLOUT_CACHE_SIZE``."""
    _freeze(batch)
    if len(rollouts) >= ROLLOUT_CACHE_SIZE:
        rollouts.pop(next(iter(rollouts)))
    rollouts[digest] = batch


def _freeze(batch: TrafficBatch) -> None:
    """Make a batch's arrays read-only: a kept rollout is handed out again, so nobody may change it."""
    for name in ("poses", "velocities", "speeds", "valid", "sizes", "is_idm"):
        getattr(batch, name).flags.writeable = False
