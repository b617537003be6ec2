"""The compiled loops (numba, CPU, no GPU) of the closed-loop world's road-user update (``vector_update``).

``kernel``: the road users' accelerations of one world step. ``vector_update.accelerations`` gathers a world's
state into flat arrays and calls it once per step; it makes, road user by road user, the decisions of
``World.accelerations`` (the recorder's per-user loop): the nearby objects (same radius and "not behind" test),
the leader on the user's path (each nearby object's centre projected on the user's path window, the
lateral-overlap rules of a planned manoeuvre), people about to cross (their predicted walk projected likewise),
the stop-line gap (given, computed by the world), the curve speed and the IDM/ACC model.

``integrate``: the movers' speeds, arc lengths and accelerations after one step, in place in the world's state
columns (``World.step``'s integration, in its order of arithmetic: bit for bit the same).

``pose_kernel``: every road user's pose on its path at its arc length and lateral offset (``Path.pose_at``).

Each step of arithmetic is written in the order of the numpy and scalar code it replaces, so that the results
equal the per-user loop's within float tolerance (``tests/sim_bridges/embedded/test_vector_update.py``).
Why compiled: the same rules on numpy arrays of ~30 road users by ~120 objects cost a few hundred numpy calls of a
few microseconds each per step; one compiled loop over the few thousand (user, object) pairs is far cheaper.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
from numba import njit

from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.vector_update import ENDED, IDM_FIELDS, MOVED, TURNING, Column

#: The state matrix's columns and the IDM parameters' (compile-time constants of the loops below).
S, SPEED, ACCEL, LATERAL, TARGET_SPEED = (
    int(c) for c in (Column.S, Column.SPEED, Column.ACCEL, Column.LATERAL, Column.TARGET_SPEED)
)
START_TIME, REACTIVE = int(Column.START_TIME), int(Column.REACTIVE)
MANOEUVRING, MANOEUVRE_S0, MANOEUVRE_LENGTH, MANOEUVRE_START, MANOEUVRE_END = (
    int(c)
    for c in (
        Column.MANOEUVRING,
        Column.MANOEUVRE_S0,
        Column.MANOEUVRE_LENGTH,
        Column.MANOEUVRE_START,
        Column.MANOEUVRE_END,
    )
)
MIN_GAP, HEADWAY, ACCEL_MAX, DECEL_COMFORT, DELTA, DECEL_MAX = (
    IDM_FIELDS.index(name) for name in ("min_gap", "headway", "accel_max", "decel_comfort", "delta", "decel_max")
)
#: Margins [m] added to the half widths: people may step into the lane; vehicles.
VULNERABLE_MARGIN, VEHICLE_MARGIN = 1.2, 0.3
#: Slack [m] of the projection's chunk pruning against rounding (bounds and distances are exact to ~1e-12 m).
PRUNE_SLACK = 1e-6


@njit(cache=True)
def _count_vertices(vertex_s: np.ndarray, path: int, x: float, strict: bool) -> int:
    """Vertices of ``path`` with arc length ``<= x`` (``< x`` when ``strict``): a binary search of its row."""
    row = vertex_s[path]
    lo, hi = 0, row.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if (row[mid] < x) if strict else (row[mid] <= x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _scan(
    px: float,
    py: float,
    first: int,
    k0: int,
    k1: int,
    ax: np.ndarray,
    ay: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    len2: np.ndarray,
    best: np.ndarray,
) -> None:
    """Update ``best`` ``(d2, k, t, raw, rx, ry)`` with segments ``[k0, k1)``: the nearest, the lowest index on ties."""
    for k in range(k0, k1):
        g = first + k
        rx, ry = px - ax[g], py - ay[g]
        raw = (rx * dx[g] + ry * dy[g]) / len2[g]
        t = min(max(raw, 0.0), 1.0)
        ex, ey = rx - t * dx[g], ry - t * dy[g]
        d2 = ex * ex + ey * ey
        if d2 < best[0] or (d2 == best[0] and k < best[1]):
            best[0], best[1], best[2], best[3], best[4], best[5] = d2, k, t, raw, rx, ry


@njit(cache=True)
def _finish(
    best: np.ndarray,
    first: int,
    count: int,
    dx: np.ndarray,
    dy: np.ndarray,
    seg_len: np.ndarray,
    s0: np.ndarray,
    s_before_last: float,
) -> tuple[float, float]:
    """Arc length [m] and signed lateral [m] on the nearest segment ``best``, extended straight beyond both ends."""
    best_k, best_t, best_raw, best_rx, best_ry = int(best[1]), best[2], best[3], best[4], best[5]
    g = first + best_k
    s = s0[g] + best_t * seg_len[g]
    cross = dx[g] * best_ry - dy[g] * best_rx
    sign = 1.0 if cross > 0.0 else (-1.0 if cross < 0.0 else 0.0)
    lat = sign * math.sqrt(best[0])
    if best_k == 0 and best_raw < 0:
        s = best_raw * seg_len[first]
    if best_k == count - 1 and best_raw > 1:
        s = s_before_last + best_raw * seg_len[g]
    return s, lat


@njit(cache=True)
def _project(
    px: float,
    py: float,
    first: int,
    count: int,
    k0: int,
    k1: int,
    ax: np.ndarray,
    ay: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    len2: np.ndarray,
    seg_len: np.ndarray,
    s0: np.ndarray,
    s_before_last: float,
) -> tuple[float, float]:
    """Arc length [m] and signed lateral [m] of a point on segments ``[k0, k1)`` of the path starting at ``first``.

    ``Path.project``'s arithmetic: the nearest segment (the first on ties), extended straight beyond both ends.
    """
    best = np.array([np.inf, k0, 0.0, 0.0, 0.0, 0.0])
    _scan(px, py, first, k0, k1, ax, ay, dx, dy, len2, best)
    return _finish(best, first, count, dx, dy, seg_len, s0, s_before_last)


@njit(cache=True)
def _chunk_bound(px: float, py: float, g: int, cx: np.ndarray, cy: np.ndarray, cdx: np.ndarray, cdy: np.ndarray,
                 dev: np.ndarray) -> float:  # fmt: skip
    """A lower bound [m] of the point's distance to chunk ``g``'s segments: to its chord, less how far they stray.

    The chord distance is the root of the squared sum (``hypot`` would scale against overflow, slower; the two
    differ by about one ulp, far inside the ``PRUNE_SLACK`` its callers keep).
    """
    rx, ry = px - cx[g], py - cy[g]
    t = min(max((rx * cdx[g] + ry * cdy[g]) / max(cdx[g] * cdx[g] + cdy[g] * cdy[g], 1e-12), 0.0), 1.0)
    ex, ey = rx - t * cdx[g], ry - t * cdy[g]
    return math.sqrt(ex * ex + ey * ey) - dev[g]


@njit(cache=True)
def _project_pruned(
    px: float,
    py: float,
    first: int,
    count: int,
    k0: int,
    k1: int,
    chunk_first: int,
    chunk: int,
    floats: tuple,
    s_before_last: float,
    scratch: np.ndarray,
) -> tuple[float, float]:
    """``_project``'s result, scanning only the chunks of segments that may hold the nearest one.

    ``scratch``: working memory of at least 6 + the window's chunks floats (no allocation per call).

    The chunk nearest by its bound is scanned first; any other is skipped when its bound (less ``PRUNE_SLACK``)
    already exceeds the best distance found, so every skipped segment is strictly farther than the nearest. Ties
    keep the lowest segment index, as the full scan in index order does: the same segment, the same arithmetic.
    """
    ax, ay, dx, dy, len2, seg_len, s0 = floats[0], floats[1], floats[2], floats[3], floats[4], floats[5], floats[6]
    cx, cy, cdx, cdy, dev = floats[8], floats[9], floats[10], floats[11], floats[12]
    c0, c1 = k0 // chunk, (k1 - 1) // chunk + 1
    best, bounds = scratch[:6], scratch[6:]
    nearest = 0
    for c in range(c0, c1):
        bounds[c - c0] = _chunk_bound(px, py, chunk_first + c, cx, cy, cdx, cdy, dev)
        if bounds[c - c0] < bounds[nearest]:
            nearest = c - c0
    best[0], best[1] = np.inf, k0
    order = c0 + nearest
    _scan(px, py, first, max(order * chunk, k0), min((order + 1) * chunk, k1), ax, ay, dx, dy, len2, best)
    for c in range(c0, c1):
        if c == order:
            continue
        margin = bounds[c - c0] - PRUNE_SLACK
        if margin > 0.0 and margin * margin > best[0]:
            continue  # every segment of this chunk is farther than the nearest found
        _scan(px, py, first, max(c * chunk, k0), min((c + 1) * chunk, k1), ax, ay, dx, dy, len2, best)
    return _finish(best, first, count, dx, dy, seg_len, s0, s_before_last)


@njit(cache=True)
def _may_reach(
    px: float,
    py: float,
    chunk_first: int,
    k0: int,
    k1: int,
    chunk: int,
    cx: np.ndarray,
    cy: np.ndarray,
    cdx: np.ndarray,
    cdy: np.ndarray,
    dev: np.ndarray,
    limit: float,
) -> bool:
    """Whether a chunk of segments ``[k0, k1)`` may come within ``limit`` [m] of the point.

    A chunk's lower bound of the distance is its chord's distance less how far its ``chunk`` segments stray from
    it; the first chunk whose bound is at most ``limit`` decides (the minimum over chunks is not needed). The
    chord distance is compared squared, without ``_chunk_bound``'s root: the two roundings differ by about 1e-15 m,
    far inside the slack the caller adds to ``limit``, so a point ruled out here is still farther than ``limit``
    less that slack.
    """
    for c in range(k0 // chunk, (k1 - 1) // chunk + 1):
        g = chunk_first + c
        rx, ry = px - cx[g], py - cy[g]
        t = min(max((rx * cdx[g] + ry * cdy[g]) / max(cdx[g] * cdx[g] + cdy[g] * cdy[g], 1e-12), 0.0), 1.0)
        ex, ey = rx - t * cdx[g], ry - t * cdy[g]
        reach = limit + dev[g]
        if ex * ex + ey * ey <= reach * reach:
            return True
    return False


@njit(cache=True)
def _acc(speed: float, target: float, gap: float, lead_speed: float, lead_accel: float, p: np.ndarray, coolness: float):
    """``idm.acc_acceleration`` (IDM, blended with constant-acceleration heuristics when a leader is finite)."""
    s0, headway, a_max, b = p[MIN_GAP], p[HEADWAY], p[ACCEL_MAX], p[DECEL_COMFORT]
    delta, b_max = p[DELTA], p[DECEL_MAX]
    finite = math.isfinite(gap)
    v0 = max(target, 1e-3)
    s = max(gap, 1e-3)
    dv = speed - lead_speed
    s_star = s0 + max(0.0, speed * headway + speed * dv / (2.0 * math.sqrt(a_max * b)))
    ratio = s_star / s
    interaction = ratio * ratio if finite else 0.0
    a_idm = min(max(a_max * (1.0 - (speed / v0) ** delta - interaction), -b_max), a_max)
    if not finite:
        return a_idm
    a_lead = min(lead_accel, a_max)
    if lead_speed * dv <= -2.0 * s * a_lead:
        denom = lead_speed * lead_speed - 2.0 * s * a_lead
        cah = speed * speed * a_lead / denom if denom > 1e-9 else a_lead
    else:
        cah = a_lead - (dv * dv if dv > 0 else 0.0) / (2.0 * s)
    if a_idm >= cah:
        return a_idm
    blended = (1 - coolness) * a_idm + coolness * (cah + b * math.tanh((a_idm - cah) / b))
    return min(max(blended, -b_max), a_max)


@njit(cache=True)
def kernel(
    idx: np.ndarray,
    poses: np.ndarray,
    cols: np.ndarray,
    user_path: np.ndarray,
    length: np.ndarray,
    width: np.ndarray,
    interacting: np.ndarray,
    vulnerable: np.ndarray,
    crossing: np.ndarray,
    idm: np.ndarray,
    futures: np.ndarray,
    stop: np.ndarray,
    table_ints: tuple,
    table_floats: tuple,
    rules: np.ndarray,
    curve_preview: np.ndarray,
) -> np.ndarray:
    """Accelerations [m/s^2] ``(U,)`` of the active road users ``idx`` ``(U,)`` (indices into everyone ``(N,)``).

    Args:
        idx: the users to decide, in index order.
        poses: box-centre poses of everyone ``(N, 3)``.
        cols: ``vector_update.state_columns`` of everyone ``(N, C)``.
        user_path: each one's path in the path table ``(N,)``.
        length: box lengths [m] ``(N,)``.
        width: box widths [m] ``(N,)``.
        interacting: ``UserTable.interacting`` ``(N,)``.
        vulnerable: ``UserTable.vulnerable`` ``(N,)``.
        crossing: ``UserTable.crossing`` ``(N,)``.
        idm: IDM parameters ``(N, len(IDM_FIELDS))``.
        futures: predicted centres of the people crossing on their own paths ``(N, T, 2)`` (rows of others unused).
        stop: the stop-line gap of each decided user [m] ``(U,)`` (``World._stop_gap``).
        table_ints: the ``PathTable``'s ``(offset, count, chunk_offset, kappa_offset, kappa_count)``.
        table_floats: its ``(ax, ay, dx, dy, len2, seg_len, s0, s_before_last, cx, cy, cdx, cdy, dev, vertex_s,
            kappa, grid, heading, box_x0, box_y0, box_x1, box_y1, frames)``.
        rules: ``(look_ahead, search_behind, chunk, bound_slack, lateral_accel_comfort, curvature_margin,
            curvature_step, acc_coolness)``.
        curve_preview: distances ahead checked for curvature [m] ``(P,)``.
    """
    offset, count, chunk_offset, kappa_offset, kappa_count = table_ints
    s_before_last, cx, cy, cdx, cdy, dev = table_floats[7:13]
    vertex_s, kappa, grid = table_floats[13], table_floats[14], table_floats[15]
    box_x0, box_y0, box_x1, box_y1 = table_floats[17], table_floats[18], table_floats[19], table_floats[20]
    look_ahead, search_behind, chunk_f, bound_slack = rules[0], rules[1], rules[2], rules[3]
    lateral_accel_comfort, curvature_margin, curvature_step, coolness = rules[4], rules[5], rules[6], rules[7]
    chunk = int(chunk_f)
    radius2 = (look_ahead + 10) ** 2
    others = np.flatnonzero(interacting)  # the objects anyone reacts to, in index order
    out = np.zeros(idx.shape[0])
    scratch = np.empty(6 + (count.max() if count.shape[0] else 0) // chunk + 2)  # the projections' working memory
    for u in range(idx.shape[0]):
        i = idx[u]
        path = user_path[i]
        full = count[path]
        first = offset[path]
        s_user = cols[i, S]
        lateral_u = cols[i, LATERAL]
        manoeuvring = cols[i, MANOEUVRING] > 0
        m_s0, m_len = cols[i, MANOEUVRE_S0], cols[i, MANOEUVRE_LENGTH]
        m_start, m_end = cols[i, MANOEUVRE_START], cols[i, MANOEUVRE_END]
        span_lo, span_hi = min(lateral_u, m_end), max(lateral_u, m_end)
        reach_u = max(abs(lateral_u), max(abs(m_start), abs(m_end)))
        heading = poses[i, 2]
        ch, sh = math.cos(heading), math.sin(heading)
        # The path window searched: [s - behind, s + ahead + behind] as segment indices [k0, k1).
        k0 = min(max(_count_vertices(vertex_s, path, s_user - search_behind, False) - 1, 0), full - 1)
        k1 = max(min(_count_vertices(vertex_s, path, s_user + look_ahead + search_behind, True) + 1, full), k0 + 1)
        at_end = k0 == 0 or k1 == full
        # The bounding box of the window's chunks: a point farther from it than from every chunk's chord bound can
        # be ruled out with one test (the same objects are ruled out: see the pair loop).
        wx0 = wy0 = np.inf
        wx1 = wy1 = -np.inf
        for c in range(k0 // chunk, (k1 - 1) // chunk + 1):
            g = chunk_offset[path] + c
            wx0, wy0 = min(wx0, box_x0[g]), min(wy0, box_y0[g])
            wx1, wy1 = max(wx1, box_x1[g]), max(wy1, box_y1[g])
        any_near = False
        best_gap, lead = np.inf, -1
        best_cross = np.inf
        for jj in range(others.shape[0]):
            j = others[jj]
            if j == i:
                continue
            rx, ry = poses[j, 0] - poses[i, 0], poses[j, 1] - poses[i, 1]
            along = rx * ch + ry * sh
            if not (rx * rx + ry * ry < radius2) or not (along > -search_behind):
                continue
            any_near = True
            half_len = (length[i] + length[j]) / 2
            if crossing[j]:
                # A person about to cross: the nearest point of the predicted walk inside the user's lateral span.
                limit = (width[i] + width[j]) / 2 + 1.0
                nearest = np.inf
                for k in range(futures.shape[1]):
                    s_f, lat_f = _project_pruned(
                        futures[j, k, 0], futures[j, k, 1], first, full, k0, k1, chunk_offset[path], chunk,
                        table_floats, s_before_last[path], scratch,
                    )  # fmt: skip
                    outside = abs(lat_f - min(max(lat_f, span_lo), span_hi))
                    if outside < limit and s_f > s_user:
                        nearest = min(nearest, s_f)
                if nearest < np.inf:
                    best_cross = min(best_cross, nearest - s_user - half_len)
            margin = VULNERABLE_MARGIN if vulnerable[j] else VEHICLE_MARGIN
            shift = cols[j, MANOEUVRE_END] - cols[j, LATERAL]
            if not at_end:
                reach = reach_u + (width[i] + width[j]) / 2 + margin + abs(shift)
                # Farther than ``reach`` (and the slack) from the window's box is farther from every segment in it,
                # as a chord bound beyond ``reach`` says below: the projection's lateral offset, that distance, would
                # fail the lateral test. (Not at the path's ends: there a point on the end segment's line beyond
                # it projects with a lateral offset of 0, whatever its distance; the rollouts differ if the box test
                # runs there.)
                ox = max(wx0 - poses[j, 0], 0.0, poses[j, 0] - wx1)
                oy = max(wy0 - poses[j, 1], 0.0, poses[j, 1] - wy1)
                limit = reach + bound_slack
                if ox * ox + oy * oy > limit * limit:
                    continue
                if not _may_reach(
                    poses[j, 0], poses[j, 1], chunk_offset[path], k0, k1, chunk, cx, cy, cdx, cdy, dev,
                    reach + bound_slack,
                ):  # fmt: skip
                    continue  # laterally out of reach everywhere in the window
            s_p, lat_p = _project_pruned(
                poses[j, 0], poses[j, 1], first, full, k0, k1, chunk_offset[path], chunk, table_floats,
                s_before_last[path], scratch,
            )  # fmt: skip
            ds = s_p - s_user
            if not (ds > 0.0 and ds <= look_ahead):
                continue
            # Where the user will be laterally when its front reaches the other's rear (its planned manoeuvre).
            v = min(max((s_user + max(ds - length[j] / 2, 0.0) - m_s0) / m_len, 0.0), 1.0)
            own = m_start + (m_end - m_start) * 0.5 * (1.0 - math.cos(math.pi * v))
            lo, hi = min(lateral_u, own), max(lateral_u, own)
            if manoeuvring and ds - half_len > 0.5:
                lo = hi = own  # not alongside yet: only the planned position counts
            o_lo, o_hi = min(lat_p, lat_p + shift), max(lat_p, lat_p + shift)
            half = (width[i] + width[j]) / 2 + margin
            if o_hi < lo - half or o_lo > hi + half:
                continue
            gap = ds - half_len
            if gap < best_gap:
                best_gap, lead = gap, j
        gap, lead_speed, lead_accel = best_gap, 0.0, 0.0
        if lead >= 0 and gap < best_cross:
            cos = math.cos(poses[lead, 2] - heading)
            lead_speed = max(0.0, cols[lead, SPEED] * cos)
            lead_accel = cols[lead, ACCEL] * cos if lead_speed > 0 else 0.0
        else:
            gap = best_cross if any_near else np.inf
        if stop[u] < gap:
            gap, lead_speed, lead_accel = stop[u], 0.0, 0.0
        # Curves ahead: the highest speed from which every curve speed is reachable with comfortable braking.
        decel = idm[i, DECEL_COMFORT]
        nk = kappa_count[path]
        base = kappa_offset[path]
        end = base + nk - 1
        lowest = np.inf  # the least squared reachable speed: the square root of the least is the least root
        for p in range(curve_preview.shape[0]):
            s = s_user + curve_preview[p]
            x = (s + curvature_margin) / curvature_step
            k = min(max(math.floor(x), 0), nk - 2)
            x0, x1 = grid[base + k], grid[base + k + 1]
            f0, f1 = kappa[base + k], kappa[base + k + 1]
            value = (f1 - f0) / (x1 - x0) * (s - x0) + f0
            if s <= grid[base]:
                value = kappa[base]
            if s >= grid[end]:
                value = kappa[end]
            v_curve = math.sqrt(lateral_accel_comfort / max(abs(value), 1e-4))
            room = max(curve_preview[p] - length[i] / 2, 0.0)
            lowest = min(lowest, v_curve * v_curve + decel * room)
        v0 = min(cols[i, TARGET_SPEED], math.sqrt(lowest))
        out[u] = _acc(cols[i, SPEED], v0, gap, lead_speed, lead_accel, idm[i], coolness)
    return out


@njit(cache=True)
def decided_users(
    interacting: np.ndarray, cols: np.ndarray, now: float, skip_ego: bool, steady: np.ndarray, home: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The road users whose accelerations ``kernel`` decides now, and their stop-line gaps where plainly inf.

    Args:
        interacting: the users others react to, in index order ``(I,)``.
        cols: the state of everyone ``(N, C)``.
        now: the world time [s].
        skip_ego: leave the ego (row 0) out.
        steady: ``UserTable.steady`` ``(N,)``: never a stop line nor a hold point.
        home: ``UserTable.home_lateral`` ``(N,)`` [m].

    Returns:
        the decided users ``(U,)`` (moving: not ``target <= 0``; started; reactive), their stop gaps ``(U,)`` (inf
        where plainly inf: steady, and changing lanes or within 1 m of its home offset; NaN where the world's rules
        must answer) and how many are NaN.
    """
    idx = np.empty(interacting.shape[0], dtype=np.int64)
    stop = np.empty(interacting.shape[0])
    m = asked = 0
    for r in range(interacting.shape[0]):
        k = interacting[r]
        if cols[k, TARGET_SPEED] <= 0.0 or not (now >= cols[k, START_TIME]) or not (cols[k, REACTIVE] > 0):
            continue
        if skip_ego and k == 0:
            continue
        idx[m] = k
        if steady[k] and (cols[k, MANOEUVRING] > 0 or abs(cols[k, LATERAL] - home[k]) <= 1.0):
            stop[m] = np.inf
        else:
            stop[m] = np.nan
            asked += 1
        m += 1
    return idx[:m], stop[:m], asked


@njit(cache=True)
def integrate(
    rows: np.ndarray,
    acc: np.ndarray,
    cols: np.ndarray,
    background: np.ndarray,
    path_length: np.ndarray,
    wait: np.ndarray,
    now: float,
    dt: float,
) -> tuple[np.ndarray, int]:
    """One step of ``dt`` [s] of the road users ``rows`` ``(R,)``, in place in ``cols`` (``World.step``'s integration).

    A static or not yet started user only has its acceleration zeroed; background life keeps its target speed (0
    from the end of its path on); a person crossing on its own path (not reactive) keeps its pace unless it waits
    (``wait`` ``(N,)``); every other user takes its acceleration ``acc`` ``(N,)`` [m/s^2], never reversing. The
    arc length advances by the mean of the old and new speeds; the arithmetic is the scalar loop's, in its order.

    Returns:
        the flags of each row ``(R,)`` (``vector_update.MOVED``, ``ENDED``: its target speed set to 0, ``TURNING``:
        moved with a lateral manoeuvre under way) and their union.
    """
    out = np.zeros(rows.shape[0], dtype=np.int8)
    seen = 0
    for r in range(rows.shape[0]):
        k = rows[r]
        if cols[k, TARGET_SPEED] <= 0.0 or now < cols[k, START_TIME]:
            cols[k, ACCEL] = 0.0
            continue
        flags = MOVED
        speed = cols[k, SPEED]
        if background[k]:
            if cols[k, S] >= path_length[k]:
                cols[k, TARGET_SPEED] = 0.0
                flags |= ENDED
            new_speed = cols[k, TARGET_SPEED]
        elif not cols[k, REACTIVE] > 0:
            new_speed = 0.0 if wait[k] else cols[k, TARGET_SPEED]
        else:
            v = speed + acc[k] * dt
            new_speed = v if v > 0.0 else 0.0  # ``max(0.0, v)``
        cols[k, S] += 0.5 * (speed + new_speed) * dt
        cols[k, ACCEL] = (new_speed - speed) / dt
        cols[k, SPEED] = new_speed
        if cols[k, MANOEUVRING] > 0:
            flags |= TURNING
        out[r] = flags
        seen |= flags
    return out, seen


@njit(cache=True)
def _wrap(angle: float) -> float:
    """``geometry.wrap_angle`` of one angle [rad] into ``[-pi, pi)``."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True)
def segment_frames(offset: np.ndarray, count: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """What ``_pose_at`` reads of each segment ``(G, 4)``, from ``Path.pose_at``'s expressions.

    The cosine and sine of its heading, the heading its blend starts from and the wrapped change to where it ends.
    Rows past the paths' segments (the tables' padding) stay zero.
    """
    out = np.zeros((heading.shape[0], 4))
    for path in range(offset.shape[0]):
        n = count[path]
        for i in range(n):
            g = offset[path] + i
            cur = heading[g]
            h_start = cur + 0.5 * _wrap(heading[g - 1] - cur) if i > 0 else cur
            h_end = cur + 0.5 * _wrap(heading[g + 1] - cur) if i < n - 1 else cur
            out[g, 0] = math.cos(cur)
            out[g, 1] = math.sin(cur)
            out[g, 2] = h_start
            out[g, 3] = _wrap(h_end - h_start)
    return out


@njit(cache=True)
def _pose_at(
    path: int, s: float, lateral: float, out: np.ndarray, row: int, table_ints: tuple, table_floats: tuple
) -> None:
    """``out[row]``: the pose at arc length ``s`` and lateral offset ``lateral`` on ``path`` (``Path.pose_at``).

    ``table_ints`` and ``table_floats``: the ``PathTable``'s arrays (``kernel``'s). Each segment's trigonometry and
    heading blend come from ``segment_frames`` (the same values); the offset's sine and cosine are left out where
    they cannot change the result (no offset, and coordinates other than zero, whose sign a zero term could flip).
    """
    offset, count = table_ints[0], table_ints[1]
    ax, ay, seg_len, s0 = table_floats[0], table_floats[1], table_floats[5], table_floats[6]
    vertex_s, frames = table_floats[13], table_floats[21]
    n = count[path]
    i = min(max(_count_vertices(vertex_s, path, s, False) - 1, 0), n - 1)
    g = offset[path] + i
    along = s - s0[g]
    x = ax[g] + along * frames[g, 0]
    y = ay[g] + along * frames[g, 1]
    alpha = min(max(along / seg_len[g], 0.0), 1.0)
    h = _wrap(frames[g, 2] + alpha * frames[g, 3])
    if lateral == 0.0 and x != 0.0 and y != 0.0:
        out[row, 0], out[row, 1] = x, y  # x - 0 * sin(h), y + 0 * cos(h)
    else:
        out[row, 0] = x - lateral * math.sin(h)
        out[row, 1] = y + lateral * math.cos(h)
    out[row, 2] = h


@njit(cache=True)
def pose_kernel(
    user_path: np.ndarray, s: np.ndarray, lateral: np.ndarray, table_ints: tuple, table_floats: tuple
) -> np.ndarray:
    """Poses ``(N, 3)`` at arc lengths ``s`` and lateral offsets ``lateral`` ``(N,)`` on paths ``user_path``.

    ``Path.pose_at``'s arithmetic: the segment holding ``s`` (extended straight beyond the ends), the heading
    blended from the mean of the previous and this segment's to the mean of this and the next one's.
    """
    out = np.empty((s.shape[0], 3))
    for k in range(s.shape[0]):
        _pose_at(user_path[k], s[k], lateral[k], out, k, table_ints, table_floats)
    return out


@njit(cache=True)
def state_poses(
    rows: np.ndarray, cols: np.ndarray, user_path: np.ndarray, out: np.ndarray, table_ints: tuple, table_floats: tuple
) -> int:
    """``pose_kernel`` of the road users ``rows`` ``(R,)`` at their state columns' arc lengths and offsets.

    The poses go into their rows of ``out`` ``(N, 3)``; returns how many of them have a lateral manoeuvre under way
    (whose headings the caller turns by the manoeuvre's slope).
    """
    turning = 0
    for r in range(rows.shape[0]):
        k = rows[r]
        _pose_at(user_path[k], cols[k, S], cols[k, LATERAL], out, k, table_ints, table_floats)
        if cols[k, MANOEUVRING] > 0:
            turning += 1
    return turning


#: Each path's arrays as ``project_on_path`` passes them (contiguous copies, made once per path).
_PATH_ARRAYS: weakref.WeakKeyDictionary[Path, tuple[np.ndarray, ...]] = weakref.WeakKeyDictionary()


def project_on_path(path: Path, x: float, y: float, lo: float, hi: float) -> tuple[float, float]:
    """``Path.project`` of one point ``(x, y)`` [m] with ``around=(lo, hi)``: arc length [m], signed lateral [m].

    The same segment window and arithmetic in one compiled call (equal bit for bit).
    """
    arrays = _PATH_ARRAYS.get(path)
    if arrays is None:
        copy = np.ascontiguousarray
        arrays = (
            copy(path.s[None]), copy(path.xy[:-1, 0]), copy(path.xy[:-1, 1]), copy(path._seg_d[:, 0]),
            copy(path._seg_d[:, 1]), copy(path._seg_len2), copy(path._seg_len), copy(path.s[:-1]),
        )  # fmt: skip
        _PATH_ARRAYS[path] = arrays
    return _project_window(x, y, lo, hi, float(path.s[-2]), arrays)


@njit(cache=True)
def _project_window(x: float, y: float, lo: float, hi: float, s_before_last: float, arrays: tuple) -> tuple:
    """``project_on_path``'s window and projection in one compiled call (``arrays``: its per-path arrays)."""
    vertex_s, ax, ay, dx, dy, len2, seg_len, s0 = arrays
    full = seg_len.shape[0]
    k0 = min(max(_count_vertices(vertex_s, 0, lo, False) - 1, 0), full - 1)
    k1 = max(min(_count_vertices(vertex_s, 0, hi, True) + 1, full), k0 + 1)
    return _project(x, y, 0, full, k0, k1, ax, ay, dx, dy, len2, seg_len, s0, s_before_last)
