"""The road users' accelerations of one world step, vectorised over every road user with numpy.

``World.accelerations`` decides each road user's IDM/ACC acceleration in a Python loop: look for the leader on
its path (every nearby object projected on the path), people about to cross, stop lines, curves. Here the same
decisions are made for all of them at once, for the closed-loop env (``World.vectorised``):

* the nearby objects of every active road user form a ``(U, N)`` mask (same radius and "not behind" test);
* every (road user, object) point, the objects' centres and the crossing people's predicted positions, is
  projected on the road user's path in one batch over the padded segment windows of all paths
  (``project_batch``: the arithmetic of ``Path.project``, row by row);
* the leader, crossing and curve rules and the ACC model are evaluated on arrays; only the stop lines (a few per
  road user, with the junction's give-way logic) stay per road user, calling the world's own ``_stop_gap``.

The recorded logs keep the scalar loop (byte-identical splits); ``tests/sim_bridges/embedded/test_vector_update.py``
proves both agree within float tolerance on rollouts of every family.
"""

from __future__ import annotations

import operator
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass, SE2Index
from irl_vla.data.geometry import wrap_angle
from sim_bridges.embedded.idm import ACC_COOLNESS
from sim_bridges.embedded.paths import CURVATURE_MARGIN, CURVATURE_STEP, Path
from sim_bridges.embedded.road_users import RoadUser

if TYPE_CHECKING:
    from sim_bridges.embedded.world import World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Segments per chunk of the lateral pre-check (``PathTable.distance_bound``).
CHUNK = 16
#: Slack [m] of the lateral pre-check against rounding.
BOUND_SLACK = 1e-6
#: Times [s] at which people about to cross are predicted (``World._crossing_gap``'s horizon).
CROSSING_TIMES = np.arange(0.0, 4.0 + 1e-9, 0.5)


class Column(IntEnum):
    """Columns of ``state_columns``: what changes about a road user from step to step."""

    S = 0  # [m] arc length of its centre on its path
    SPEED = 1  # [m/s]
    ACCEL = 2  # [m/s^2]
    LATERAL = 3  # [m] offset left of its path
    TARGET_SPEED = 4  # [m/s]
    START_TIME = 5  # [s]
    REACTIVE = 6  # 1: drives by IDM among the others
    MANOEUVRING = 7  # 1: a lateral manoeuvre is under way
    MANOEUVRE_S0 = 8  # [m] the manoeuvre's start arc length (0 without one)
    MANOEUVRE_LENGTH = 9  # [m] its length (1 without one)
    MANOEUVRE_START = 10  # [m] its start offset (the lateral without one)
    MANOEUVRE_END = 11  # [m] its end offset (the lateral without one)


def state_columns(users: list[RoadUser]) -> FloatArray:
    """The state of every road user ``(N, len(Column))``, read in one pass over the objects."""
    rows = [
        (u.s, u.speed, u.accel, u.lateral, u.target_speed, u.start_time, u.reactive)
        + ((0.0, 0.0, 1.0, u.lateral, u.lateral) if (m := u.manoeuvre) is None else (1, m.s0, m.length, m.start, m.end))
        for u in users
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, len(Column))


IDM_FIELDS = ("min_gap", "headway", "accel_max", "decel_comfort", "delta", "decel_max")


class PathTable:
    """Every path's segments concatenated, so points on many paths are projected in one batch.

    Args:
        paths: the paths (each once).
    """

    def __init__(self, paths: list[Path]) -> None:
        self.index = {id(p): k for k, p in enumerate(paths)}
        self.paths = paths
        counts = np.array([len(p._seg_len) for p in paths])
        self.offset = np.concatenate([[0], np.cumsum(counts)[:-1]])  # (P,) first segment of each path
        self.count = counts  # (P,) segments per path
        self.pad = max(int(counts.max()), 1)  # windows never exceed one path's segments
        # Segment starts, vectors, squared lengths, lengths and start arc lengths, concatenated and padded so that
        # any window of ``pad`` segments from a path's first segment is in bounds.
        pad = np.zeros(self.pad)
        self.ax = np.concatenate([*(p.xy[:-1, 0] for p in paths), pad])  # (G,)
        self.ay = np.concatenate([*(p.xy[:-1, 1] for p in paths), pad])
        self.dx = np.concatenate([*(p._seg_d[:, 0] for p in paths), pad])
        self.dy = np.concatenate([*(p._seg_d[:, 1] for p in paths), pad])
        self.len2 = np.concatenate([*(p._seg_len2 for p in paths), pad + 1.0])
        self.seg_len = np.concatenate([*(p._seg_len for p in paths), pad])
        self.s0 = np.concatenate([*(p.s[:-1] for p in paths), pad])
        self.heading = np.concatenate([*(p._seg_heading for p in paths), pad])
        self.s_before_last = np.array([p.s[-2] for p in paths])  # (P,)
        self._chunks(paths)
        # (P, V + 1) vertex arc lengths, +inf past each path's end (one spare column for ``count_vertices``)
        self.vertex_s = np.full((len(paths), int(counts.max()) + 2), np.inf)
        for k, p in enumerate(paths):
            self.vertex_s[k, : len(p.s)] = p.s
        self._flat_vertices(paths)
        for p in paths:
            p.curvature_ahead(0.0)  # builds the curvature table
        tables = [p._curvature_table for p in paths]
        assert all(t is not None for t in tables)
        self.kappa_offset = np.concatenate([[0], np.cumsum([len(t[1]) for t in tables])[:-1]])  # type: ignore[index]
        self.kappa_count = np.array([len(t[1]) for t in tables])  # type: ignore[index]
        self.kappa = np.concatenate([t[1] for t in tables])  # type: ignore[index]
        self.grid = np.concatenate([t[0] for t in tables])  # type: ignore[index]

    def _flat_vertices(self, paths: list[Path]) -> None:
        """Every path's vertex arc lengths in one sorted array, path ``k`` shifted by ``k * span``."""
        lo = min(float(p.s[0]) for p in paths)
        hi = max(float(p.s[-1]) for p in paths)
        self._s_clip = (lo - 1.0, hi + 1.0)  # a query clipped here counts the same vertices
        self._span = hi - lo + 4.0  # blocks (and their clipped queries) never meet
        self._shift = np.arange(len(paths)) * self._span  # (P,)
        self._flat = np.concatenate([p.s + k * self._span for k, p in enumerate(paths)])
        self._flat_start = np.concatenate([[0], np.cumsum([len(p.s) for p in paths])[:-1]])  # (P,)

    def count_vertices(self, paths: IntArray, x: FloatArray, *, strict: bool = False) -> IntArray:
        """Vertices of each row's path with arc length ``<= x`` (``< x`` when ``strict``) ``(N,)``: exact.

        One ``searchsorted`` over the shifted vertices of every path; the shift can misorder only a vertex within
        rounding of ``x`` (vertices are about a metre apart), so one comparison with the neighbours corrects it.
        """
        side = "left" if strict else "right"
        key = np.clip(x, *self._s_clip) + self._shift[paths]
        c = np.searchsorted(self._flat, key, side=side) - self._flat_start[paths]
        below = operator.lt if strict else operator.le
        c = np.where(below(self.vertex_s[paths, c], x), c + 1, c)
        return np.where((c > 0) & ~below(self.vertex_s[paths, np.maximum(c - 1, 0)], x), c - 1, c)

    def _chunks(self, paths: list[Path]) -> None:
        """Chords of every ``CHUNK`` consecutive segments and the farthest the segments stray from them [m]."""
        cx, cy, cdx, cdy, dev = [], [], [], [], []
        self.chunk_offset = np.zeros(len(paths), dtype=np.intp)
        total = 0
        for k, p in enumerate(paths):
            self.chunk_offset[k] = total
            for c in range(0, len(p._seg_len), CHUNK):
                xy = p.xy[c : min(c + CHUNK, len(p._seg_len)) + 1]  # the chunk's vertices
                d = xy[-1] - xy[0]
                dist = _point_segment_distance(xy, xy[0], d)
                cx.append(xy[0, 0])
                cy.append(xy[0, 1])
                cdx.append(d[0])
                cdy.append(d[1])
                dev.append(dist.max())
                total += 1
        pad = np.zeros(-(-int(self.count.max()) // CHUNK) + 1)
        self.cx, self.cy = np.concatenate([cx, pad]), np.concatenate([cy, pad])
        self.cdx, self.cdy = np.concatenate([cdx, pad]), np.concatenate([cdy, pad])
        self.dev = np.concatenate([dev, pad])

    def distance_bound(self, points: FloatArray, paths: IntArray, k0: IntArray, k1: IntArray) -> FloatArray:
        """A lower bound [m] of each point's distance to its path's segments ``[k0, k1)`` (``|lateral|``).

        The distance to a chunk's chord minus how far the chunk strays from it, over the chunks the window meets.
        """
        c0, c1 = k0 // CHUNK, (k1 - 1) // CHUNK + 1
        width = int((c1 - c0).max())
        start = self.chunk_offset[paths] + c0
        g = start[:, None] + np.arange(width)[None]  # (Q, W) global chunk indices (padded past the end)
        x, y, dx, dy = self.cx[g], self.cy[g], self.cdx[g], self.cdy[g]
        rx, ry = points[:, :1] - x, points[:, 1:] - y
        t = np.clip((rx * dx + ry * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        dist = np.hypot(rx - t * dx, ry - t * dy) - self.dev[g]
        return np.where(np.arange(width)[None] < (c1 - c0)[:, None], dist, np.inf).min(axis=1)

    def windows(self, paths: IntArray, lo: FloatArray, hi: FloatArray) -> tuple[IntArray, IntArray]:
        """Path-local segment range ``[k0, k1)`` of each arc-length window ``[lo, hi]``, as ``Path.project``'s.

        ``searchsorted`` of each path's vertex arc lengths (``count_vertices``, exact).
        """
        full = self.count[paths]
        k0 = np.minimum(np.maximum(self.count_vertices(paths, lo) - 1, 0), full - 1)
        k1 = np.maximum(np.minimum(self.count_vertices(paths, hi, strict=True) + 1, full), k0 + 1)
        return k0, k1

    def pose_batch(self, paths: IntArray, s: FloatArray, lateral: FloatArray) -> FloatArray:
        """``Path.pose_at(s, lateral)`` of one arc length per row on paths ``(N,)``: poses ``(N, 3)``.

        The arithmetic of ``Path._pose_at_scalar`` on arrays (segment by ``bisect_right``, headings blended over
        each segment, extended straight beyond the ends).
        """
        n = self.count[paths]
        i = np.clip(self.count_vertices(paths, s) - 1, 0, n - 1)  # (N,) path-local segment
        g = self.offset[paths] + i
        cur = self.heading[g]
        along = s - self.s0[g]
        x = self.ax[g] + along * np.cos(cur)
        y = self.ay[g] + along * np.sin(cur)
        h_start = np.where(i > 0, cur + 0.5 * wrap_angle(self.heading[np.maximum(g - 1, 0)] - cur), cur)
        h_end = np.where(i < n - 1, cur + 0.5 * wrap_angle(self.heading[g + 1] - cur), cur)
        alpha = np.clip(along / self.seg_len[g], 0.0, 1.0)
        h = wrap_angle(h_start + alpha * wrap_angle(h_end - h_start))
        return np.column_stack([x - lateral * np.sin(h), y + lateral * np.cos(h), h])

    def project_batch(
        self, points: FloatArray, paths: IntArray, k0: IntArray, k1: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """Arc length [m] and signed lateral offset [m] of points ``(Q, 2)``, each on its path's window.

        ``paths`` ``(Q,)`` indexes the table's paths; ``[k0, k1)`` ``(Q,)`` are the path-local segment windows.
        Row for row the arithmetic of ``Path.project`` (segments past a window's end are masked out).
        """
        if not len(points):
            return np.zeros(0), np.zeros(0)
        width = int((k1 - k0).max())
        start = self.offset[paths] + k0  # (Q,) global index of each window's first segment
        valid = np.arange(width)[None] < (k1 - k0)[:, None]  # (Q, W)

        g = start[:, None] + np.arange(width)[None]  # (Q, W) global segment indices (padded past the end)
        ax, ay, dx, dy = self.ax[g], self.ay[g], self.dx[g], self.dy[g]
        rx, ry = points[:, :1] - ax, points[:, 1:] - ay  # (Q, W)
        raw = (rx * dx + ry * dy) / self.len2[g]
        t = np.clip(raw, 0.0, 1.0)
        ex, ey = rx - t * dx, ry - t * dy
        dist2 = np.where(valid, ex * ex + ey * ey, np.inf)
        jl = np.argmin(dist2, axis=1)  # (Q,)
        q = np.arange(len(points))
        gj = start + jl
        j = k0 + jl  # path-local segment index
        s = self.s0[gj] + t[q, jl] * self.seg_len[gj]
        cross = dx[q, jl] * ry[q, jl] - dy[q, jl] * rx[q, jl]
        lat = np.sign(cross) * np.sqrt(dist2[q, jl])
        raw_t = raw[q, jl]
        first = self.offset[paths]
        s = np.where((j == 0) & (raw_t < 0), raw_t * self.seg_len[first], s)
        last = j == self.count[paths] - 1
        s = np.where(last & (raw_t > 1), self.s_before_last[paths] + raw_t * self.seg_len[gj], s)
        return s, lat

    def curvature_ahead(self, paths: IntArray, s: FloatArray) -> FloatArray:
        """``Path.curvature_ahead`` of arc lengths ``s`` ``(U, P)`` on paths ``(U,)`` (linear interpolation)."""
        n = self.kappa_count[paths][:, None]
        x = (s + CURVATURE_MARGIN) / CURVATURE_STEP
        i = np.clip(np.floor(x).astype(np.intp), 0, n - 2)
        base = self.kappa_offset[paths][:, None]
        x0, x1 = self.grid[base + i], self.grid[base + i + 1]
        f0, f1 = self.kappa[base + i], self.kappa[base + i + 1]
        value = (f1 - f0) / (x1 - x0) * (s - x0) + f0
        value = np.where(s <= self.grid[base[:, 0]][:, None], self.kappa[base[:, 0]][:, None], value)
        end = base[:, 0] + n[:, 0] - 1
        return np.where(s >= self.grid[end][:, None], self.kappa[end][:, None], value)


class UserTable:
    """What never changes about a world's road users (paths, sizes, classes, driving styles), as arrays.

    Args:
        users: the ego first, then the others (``World.road_users_and_ego``).
        paths: a ``PathTable`` holding every user's path, to reuse (a copied world shares its paths).
    """

    def __init__(self, users: list[RoadUser], paths: PathTable | None = None) -> None:
        self.users = list(users)
        if paths is None or any(id(u.path) not in paths.index for u in users):
            paths = PathTable(list({id(u.path): u.path for u in users}.values()))
        self.paths = paths
        self.path = np.array([self.paths.index[id(u.path)] for u in users])  # (N,)
        self.length = np.array([u.length for u in users])
        self.width = np.array([u.width for u in users])
        self.interacting = np.array([not u.background for u in users])  # background life is off the road
        self.vulnerable = np.array([u.agent_class in (AgentClass.PEDESTRIAN, AgentClass.BICYCLE) for u in users])
        self.crossing = self.vulnerable & np.array([not u.reactive for u in users])  # people on their own paths
        self.idm = {name: np.array([getattr(u.idm, name) for u in users]) for name in IDM_FIELDS}
        # Users whose pose is not their path's at (s, lateral) (``ego_control.FreeEgo``).
        self.own_pose = np.array([type(u).pose is not RoadUser.pose for u in users])
        self.own_pose_index = np.flatnonzero(self.own_pose).tolist()


def _point_segment_distance(points: FloatArray, start: FloatArray, d: FloatArray) -> FloatArray:
    """Distances [m] of points ``(M, 2)`` to the segment from ``start`` along ``d`` ``(2,)``."""
    rel = points - start
    t = np.clip(rel @ d / max(float(d @ d), 1e-12), 0.0, 1.0)
    return np.hypot(*(rel - t[:, None] * d).T)


def poses(world: World) -> FloatArray:
    """``World.poses`` of every road user at once ``(N, 3)`` (box centres, lateral manoeuvres' slopes included)."""
    users = world.road_users_and_ego
    table = user_table(world)
    s, lateral = np.array([(u.s, u.lateral) for u in users], dtype=np.float64).reshape(-1, 2).T
    out = table.paths.pose_batch(table.path, s, lateral)
    for k in [k for k, u in enumerate(users) if u.manoeuvre is not None]:
        out[k, SE2Index.HEADING] += float(np.arctan(users[k].manoeuvre.slope(users[k].s)))  # type: ignore[union-attr]
    for k in table.own_pose_index:
        if users[k].manoeuvre is None:
            out[k] = users[k].pose  # a user with a pose of its own (the free ego)
    return out


def user_table(world: World) -> UserTable:
    """The world's ``UserTable``, rebuilt when its road users change (paths and sizes never do)."""
    users = world.road_users_and_ego
    table = getattr(world, "_user_table", None)
    if table is None or len(table.users) != len(users) or not all(map(operator.is_, table.users, users)):
        table = UserTable(users, table.paths if table is not None else None)
        world._user_table = table  # type: ignore[attr-defined]
    return table


def acc_batch(
    speed: FloatArray,
    target: FloatArray,
    gap: FloatArray,
    lead_speed: FloatArray,
    lead_accel: FloatArray,
    params: dict[str, FloatArray],
) -> FloatArray:
    """``idm.acc_acceleration`` of arrays, each user with its own IDM ``params`` (name -> ``(U,)``)."""
    s0, headway, a_max, b = params["min_gap"], params["headway"], params["accel_max"], params["decel_comfort"]
    delta, b_max = params["delta"], params["decel_max"]
    finite = np.isfinite(gap)
    v0 = np.maximum(target, 1e-3)
    s = np.maximum(gap, 1e-3)
    dv = speed - lead_speed
    s_star = s0 + np.maximum(0.0, speed * headway + speed * dv / (2.0 * np.sqrt(a_max * b)))
    interaction = np.where(finite, (s_star / s) ** 2, 0.0)
    a_idm = np.clip(a_max * (1.0 - (speed / v0) ** delta - interaction), -b_max, a_max)
    a_lead = np.minimum(lead_accel, a_max)
    with np.errstate(divide="ignore", invalid="ignore"):  # infinite gaps take the IDM branch below
        free_case = lead_speed * dv <= -2.0 * s * a_lead
        denom = lead_speed**2 - 2.0 * s * a_lead
        cah_free = np.where(denom > 1e-9, speed**2 * a_lead / denom, a_lead)
    cah = np.where(free_case, cah_free, a_lead - np.where(dv > 0, dv**2, 0.0) / (2.0 * s))
    blended = (1 - ACC_COOLNESS) * a_idm + ACC_COOLNESS * (cah + b * np.tanh((a_idm - cah) / b))
    acc = np.where(a_idm >= cah, a_idm, np.clip(blended, -b_max, a_max))
    return np.where(finite, acc, a_idm)


def accelerations(world: World, skip_ego: bool, poses: FloatArray) -> FloatArray:
    """``World.accelerations`` for every road user at once (see the module docstring)."""
    from sim_bridges.embedded.world import LOOK_AHEAD, SEARCH_BEHIND

    everyone = world.road_users_and_ego
    n = len(everyone)
    acc = np.zeros(n)
    cols = state_columns(everyone)  # (N, C)
    moving = ~(cols[:, Column.TARGET_SPEED] <= 0.0)  # not ``RoadUser.is_static``
    idx = np.flatnonzero(moving & (world.time >= cols[:, Column.START_TIME]) & (cols[:, Column.REACTIVE] > 0))
    if skip_ego:
        idx = idx[idx != 0]
    if not len(idx):
        return acc
    users = [everyone[i] for i in idx]
    mine = cols[idx]  # (U, C)
    fixed = user_table(world)
    table = fixed.paths
    path_ids = fixed.path[idx]
    s_user = mine[:, Column.S]
    length, width, vulnerable, crossing = fixed.length, fixed.width, fixed.vulnerable, fixed.crossing
    speed_all, accel_all = cols[:, Column.SPEED], cols[:, Column.ACCEL]

    rel = poses[None, :, :2] - poses[idx, None, :2]  # (U, N, 2)
    heading = poses[idx, SE2Index.HEADING]
    along = rel[..., 0] * np.cos(heading)[:, None] + rel[..., 1] * np.sin(heading)[:, None]
    radius = np.einsum("unk,unk->un", rel, rel) < (LOOK_AHEAD + 10) ** 2
    near = fixed.interacting[None] & radius & (along > -SEARCH_BEHIND)
    near[np.arange(len(idx)), idx] = False  # (U, N)

    lo_s, hi_s = s_user - SEARCH_BEHIND, s_user + LOOK_AHEAD + SEARCH_BEHIND
    k0, k1 = table.windows(path_ids, lo_s, hi_s)

    # Points: every near object's centre, and the 9 predicted positions of every near crossing person.
    pu, pj = np.nonzero(near)  # pairs in (user, object) order, as the scalar loop meets them
    # Only objects that may be laterally within reach are projected: |lateral| must not exceed the user's widest
    # offset (lateral, manoeuvre start and end), half the two widths, the margin and the object's own shift.
    shift_all = cols[:, Column.MANOEUVRE_END] - cols[:, Column.LATERAL]  # 0 without a manoeuvre
    reach_u = np.abs(mine[:, [Column.LATERAL, Column.MANOEUVRE_START, Column.MANOEUVRE_END]]).max(axis=1)
    reach = reach_u[pu] + (width[idx[pu]] + width[pj]) / 2 + np.where(vulnerable[pj], 1.2, 0.3) + np.abs(shift_all[pj])
    bound = table.distance_bound(poses[pj, :2], path_ids[pu], k0[pu], k1[pu])
    # Past a path's ends ``Path.project`` gives a point straight ahead of the end segment a lateral of 0 (its
    # cross product vanishes): windows that reach an end are always projected.
    at_end = (k0[pu] == 0) | (k1[pu] == table.count[path_ids[pu]])
    keep = (bound <= reach + BOUND_SLACK) | at_end
    pu, pj = pu[keep], pj[keep]
    cu, cj = np.nonzero(near & crossing[None])
    futures = {}
    for j in np.unique(cj):
        other = everyone[j]
        moving = np.maximum(0.0, CROSSING_TIMES - max(0.0, other.start_time - world.time))
        futures[j] = other.path.pose_at(other.s + other.speed * moving)[:, : SE2Index.HEADING]  # (T, 2)
    horizon = len(CROSSING_TIMES)
    points = [poses[pj, :2]]
    owner = [pu]
    if len(cu):
        points.append(np.concatenate([futures[j] for j in cj]))
        owner.append(np.repeat(cu, horizon))
    pts, own_u = np.concatenate(points), np.concatenate(owner)
    s_all, lat_all = table.project_batch(pts, path_ids[own_u], k0[own_u], k1[own_u])

    # People about to cross: the nearest point of their predicted walk inside the user's lateral span.
    best_cross = np.full(len(idx), np.inf)
    if len(cu):
        s_c = s_all[len(pu) :].reshape(len(cu), horizon)
        lat_c = lat_all[len(pu) :].reshape(len(cu), horizon)
        span = np.array([users[u].lateral_span() for u in cu])  # (C, 2)
        outside = np.abs(lat_c - np.clip(lat_c, span[:, :1], span[:, 1:]))
        inside = (outside < (width[idx[cu]] + width[cj])[:, None] / 2 + 1.0) & (s_c > s_user[cu][:, None])
        first = np.where(inside, s_c, np.inf).min(axis=1) - s_user[cu] - (length[idx[cu]] + length[cj]) / 2
        np.minimum.at(best_cross, cu, np.where(inside.any(axis=1), first, np.inf))

    # Leaders: objects whose lateral span meets the user's (its planned manoeuvre included) ahead on its path.
    s_p, lat_p = s_all[: len(pu)], lat_all[: len(pu)]
    ds = s_p - s_user[pu]
    ahead = (ds > 0.0) & (ds <= LOOK_AHEAD)
    margin = np.where(vulnerable[pj], 1.2, 0.3)
    own = _manoeuvre_offset_pairs(mine[pu], s_user[pu] + np.maximum(ds - length[pj] / 2, 0.0))
    lateral_u = mine[pu, Column.LATERAL]
    lo, hi = np.minimum(lateral_u, own), np.maximum(lateral_u, own)
    manoeuvring = mine[pu, Column.MANOEUVRING] > 0
    planned_only = manoeuvring & (ds - (length[idx[pu]] + length[pj]) / 2 > 0.5)
    lo, hi = np.where(planned_only, own, lo), np.where(planned_only, own, hi)
    shift = shift_all[pj]
    o_lo, o_hi = np.minimum(lat_p, lat_p + shift), np.maximum(lat_p, lat_p + shift)
    half = (width[idx[pu]] + width[pj]) / 2 + margin
    overlaps = ~((o_hi < lo - half) | (o_lo > hi + half))
    gap_p = np.where(ahead & overlaps, ds - (length[idx[pu]] + length[pj]) / 2, np.inf)
    gaps = np.full(near.shape, np.inf)
    gaps[pu, pj] = gap_p
    lead = np.argmin(gaps, axis=1)  # (U,) first nearest, as the loop's strict "<"
    rows = np.arange(len(idx))
    gap = gaps[rows, lead]
    cos = np.cos(poses[lead, SE2Index.HEADING] - heading)
    lead_speed = np.maximum(0.0, speed_all[lead] * cos)
    lead_accel = np.where(lead_speed > 0, accel_all[lead] * cos, 0.0)
    take = gap < best_cross
    no_others = ~near.any(axis=1)
    gap = np.where(take, gap, np.where(no_others, np.inf, best_cross))
    lead_speed = np.where(take, lead_speed, 0.0)
    lead_accel = np.where(take, lead_accel, 0.0)

    # Stop lines (per user: lights, give-way, lane ends), then curves and the ACC model.
    stop = np.array([world._stop_gap(u) for u in users])
    at_stop = stop < gap
    gap = np.where(at_stop, stop, gap)
    lead_speed = np.where(at_stop, 0.0, lead_speed)
    lead_accel = np.where(at_stop, 0.0, lead_accel)
    decel = fixed.idm["decel_comfort"][idx]
    from sim_bridges.embedded.world import CURVE_PREVIEW, LATERAL_ACCEL_COMFORT

    kappa = np.abs(table.curvature_ahead(path_ids, s_user[:, None] + CURVE_PREVIEW[None]))  # (U, P)
    v_curve = np.sqrt(LATERAL_ACCEL_COMFORT / np.maximum(kappa, 1e-4))
    room = np.maximum(CURVE_PREVIEW[None] - length[idx][:, None] / 2, 0)
    reachable = np.sqrt(v_curve**2 + decel[:, None] * room).min(axis=1)
    v0 = np.minimum(mine[:, Column.TARGET_SPEED], reachable)
    params = {name: values[idx] for name, values in fixed.idm.items()}
    acc[idx] = acc_batch(speed_all[idx], v0, gap, lead_speed, lead_accel, params)
    return acc


def _manoeuvre_offset_pairs(cols: FloatArray, s: FloatArray) -> FloatArray:
    """``LateralManoeuvre.offset`` at ``s`` ``(M,)`` of each row's manoeuvre (``state_columns`` rows ``(M, C)``).

    Without a manoeuvre: its lateral (start = end = lateral).
    """
    s0, span = cols[:, Column.MANOEUVRE_S0], cols[:, Column.MANOEUVRE_LENGTH]
    start, end = cols[:, Column.MANOEUVRE_START], cols[:, Column.MANOEUVRE_END]
    v = np.clip((s - s0) / span, 0.0, 1.0)
    return start + (end - start) * 0.5 * (1.0 - np.cos(np.pi * v))
