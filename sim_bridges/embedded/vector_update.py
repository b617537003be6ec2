"""The road users' accelerations of one world step, decided for every road user at once.

``World.accelerations`` decides each road user's IDM/ACC acceleration in a Python loop: look for the leader on
its path (every nearby object projected on the path), people about to cross, stop lines, curves. Here the same
decisions are made for all of them in one call, for the closed-loop env (``World.vectorised``):

* what never changes about the road users and their paths is held as arrays (``UserTable``, ``PathTable``: every
  path's segments, chunk chords for a lateral pre-check, vertex arc lengths, curvature tables);
* what changes is read in one pass (``state_columns``), the people crossing get their predicted walk and each
  decided user its stop-line gap (the world's own ``_stop_gap``: lights, give-way, lane ends);
* ``road_user_kernels.kernel`` (compiled with numba) makes the leader, crossing, curve and ACC decisions in one
  loop over the (road user, object) pairs, with ``Path.project``'s arithmetic.

A vectorised world also steps here (``step``): its road users' changing state is held as columns (``WorldState``)
that the compiled loops read and the integration (``road_user_kernels.integrate``) updates in place; the objects
get their arc lengths, speeds and accelerations written back each step, and ``poses`` and the env's snapshot read
the columns.

The recorded logs keep the scalar loop (byte-identical splits); ``tests/sim_bridges/embedded/test_vector_update.py``
proves both agree within float tolerance on rollouts of every family.
"""

from __future__ import annotations

import math
import operator
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass, SE2Index
from sim_bridges.embedded.paths import Path
from sim_bridges.embedded.road_users import RoadUser

if TYPE_CHECKING:
    from sim_bridges.embedded.world import World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Segments per chunk of the lateral pre-check (``road_user_kernels``'s distance bound).
CHUNK = 16
#: Slack [m] of the lateral pre-check against rounding.
BOUND_SLACK = 1e-6
#: ``road_user_kernels.integrate``'s flags per row: moved, its target speed set to 0 (the end of a background
#: path), moved while a lateral manoeuvre is under way.
MOVED, ENDED, TURNING = 1, 2, 4
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
    values: list[float] = []
    for u in users:
        m = u.manoeuvre
        if m is None:
            values += (u.s, u.speed, u.accel, u.lateral, u.target_speed, u.start_time, u.reactive, 0.0, 0.0, 1.0,
                       u.lateral, u.lateral)  # fmt: skip
        else:
            values += (u.s, u.speed, u.accel, u.lateral, u.target_speed, u.start_time, u.reactive, 1, m.s0, m.length,
                       m.start, m.end)  # fmt: skip
    return np.fromiter(values, np.float64, len(values)).reshape(-1, len(Column))


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
        # (P, V + 2) vertex arc lengths, +inf past each path's end (binary-searched per row by the kernels)
        self.vertex_s = np.full((len(paths), int(counts.max()) + 2), np.inf)
        for k, p in enumerate(paths):
            self.vertex_s[k, : len(p.s)] = p.s
        for p in paths:
            p.curvature_ahead(0.0)  # builds the curvature table
        tables = [p._curvature_table for p in paths]
        assert all(t is not None for t in tables)
        self.kappa_offset = np.concatenate([[0], np.cumsum([len(t[1]) for t in tables])[:-1]])  # type: ignore[index]
        self.kappa_count = np.array([len(t[1]) for t in tables])  # type: ignore[index]
        self.kappa = np.concatenate([t[1] for t in tables])  # type: ignore[index]
        self.grid = np.concatenate([t[0] for t in tables])  # type: ignore[index]

    def kernel_arrays(self) -> tuple[tuple[IntArray, ...], tuple[FloatArray, ...]]:
        """The arrays ``road_user_kernels.kernel`` reads, made once.

        ``(offset, count, chunk_offset, kappa_offset, kappa_count)`` and ``(ax, ay, dx, dy, len2, seg_len, s0,
        s_before_last, cx, cy, cdx, cdy, dev, vertex_s, kappa, grid, heading, box_x0, box_y0, box_x1, box_y1,
        frames)`` (``frames``: ``road_user_kernels.segment_frames``, ``(G, 4)``).
        """
        cached = getattr(self, "_kernel_arrays", None)
        if cached is None:
            from sim_bridges.embedded.road_user_kernels import segment_frames

            ints = tuple(
                np.ascontiguousarray(a, dtype=np.int64)
                for a in (self.offset, self.count, self.chunk_offset, self.kappa_offset, self.kappa_count)
            )
            names = ("ax", "ay", "dx", "dy", "len2", "seg_len", "s0", "s_before_last", "cx", "cy", "cdx", "cdy", "dev")
            floats = tuple(np.ascontiguousarray(getattr(self, n), dtype=np.float64) for n in names)
            floats += tuple(
                np.ascontiguousarray(a, dtype=np.float64)
                for a in (self.vertex_s, self.kappa, self.grid, self.heading, *self.chunk_boxes)
            )
            floats += (segment_frames(ints[0], ints[1], floats[16]),)
            cached = self._kernel_arrays = (ints, floats)
        return cached

    def _chunks(self, paths: list[Path]) -> None:
        """Chords of every ``CHUNK`` consecutive segments and the farthest the segments stray from them [m].

        Also each chunk's bounding box ``chunk_boxes``: min x, min y, max x, max y of its vertices [m].
        """
        cx, cy, cdx, cdy, dev, boxes = [], [], [], [], [], []
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
                boxes.append((*xy.min(axis=0), *xy.max(axis=0)))
                total += 1
        pad = np.zeros(-(-int(self.count.max()) // CHUNK) + 1)
        self.cx, self.cy = np.concatenate([cx, pad]), np.concatenate([cy, pad])
        self.cdx, self.cdy = np.concatenate([cdx, pad]), np.concatenate([cdy, pad])
        self.dev = np.concatenate([dev, pad])
        box = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        self.chunk_boxes = tuple(np.concatenate([box[:, k], pad]) for k in range(4))  # 4 x (chunks + pad,)

    def pose_batch(self, paths: IntArray, s: FloatArray, lateral: FloatArray) -> FloatArray:
        """``Path.pose_at(s, lateral)`` of one arc length per row on paths ``(N,)``: poses ``(N, 3)``.

        ``road_user_kernels.pose_kernel`` (the arithmetic of ``Path._pose_at_scalar`` in one compiled loop).
        """
        from sim_bridges.embedded.road_user_kernels import pose_kernel

        ints, floats = self.kernel_arrays()
        return pose_kernel(
            np.ascontiguousarray(paths, dtype=np.int64), np.ascontiguousarray(s, dtype=np.float64),
            np.ascontiguousarray(lateral, dtype=np.float64), ints, floats,
        )  # fmt: skip


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
        self.interacting_index = np.flatnonzero(self.interacting)
        self.vulnerable = np.array([u.agent_class in (AgentClass.PEDESTRIAN, AgentClass.BICYCLE) for u in users])
        self.crossing = self.vulnerable & np.array([not u.reactive for u in users])  # people on their own paths
        self.idm = {name: np.array([getattr(u.idm, name) for u in users]) for name in IDM_FIELDS}
        self.idm_matrix = np.column_stack([self.idm[name] for name in IDM_FIELDS]).reshape(len(users), -1)  # (N, 6)
        self.crossing_index = np.flatnonzero(self.crossing & self.interacting).tolist()
        # What ``World.step`` must visit. Schedules and scripted lane changes are set when a scenario is built and
        # only consumed by the step; a parked user (static, unscheduled, at rest: not the ego) stays exactly as it
        # is, since only a schedule or the end of a background path changes a target speed.
        self.scheduled_index = [k for k, u in enumerate(users) if u.speed_schedule or u.lane_change_at is not None]
        parked = {
            k
            for k, u in enumerate(users)
            if k > 0 and u.target_speed <= 0.0 and u.accel == 0.0 and k not in self.scheduled_index
        }
        self.mover_index = [k for k in range(len(users)) if k not in parked]
        self.mover_rows = np.array(self.mover_index, dtype=np.intp)  # (M,)
        self.mover_paths = self.path[self.mover_rows]  # (M,)
        self.parked_rows = np.array(sorted(parked), dtype=np.intp)  # (N - M,)
        self.parked_poses: FloatArray | None = None  # (N, 3) the parked users' rows, made at the first ``poses`` call
        #: ``(world time, ego, list of the others, its length)`` when ``user_table`` last checked the users.
        self.seen: tuple[float, RoadUser, list[RoadUser], int] | None = None
        # Users whose pose is not their path's at (s, lateral) (``ego_control.FreeEgo``).
        self.own_pose = np.array([type(u).pose is not RoadUser.pose for u in users])
        self.own_pose_index = np.flatnonzero(self.own_pose).tolist()
        # What ``step`` reads: the people crossing on their own paths among the movers (they wait for vehicles),
        # background life, each path's length.
        self.walker_rows = [k for k in self.mover_index if not users[k].reactive and not users[k].background]
        self.background = np.array([u.background for u in users], dtype=np.bool_)
        self.no_wait = np.zeros(len(users), dtype=np.bool_)  # nobody waits (read only)
        # The rows ``step`` integrates and their road users: every mover, or all but a free ego (its controller
        # moves it).
        free_rows = self.mover_rows[self.mover_rows != 0]
        self.integrated = {
            flag: (rows, [self.users[k] for k in rows.tolist()])
            for flag, rows in ((False, self.mover_rows), (True, free_rows))
        }
        # Users that never have a stop line or a hold point: none now, no schedule and not the ego (whose hold
        # point the expert sets); only a schedule changes a home lateral offset.
        scheduled = set(self.scheduled_index)
        self.steady = np.array(
            [k > 0 and not u.stops and u.hold_s == math.inf and k not in scheduled for k, u in enumerate(users)],
            dtype=np.bool_,
        )
        self.home_lateral = np.array([u.home_lateral for u in users], dtype=np.float64)
        self.interacting_index = np.ascontiguousarray(self.interacting_index, dtype=np.int64)
        #: The people crossing's predicted centres ``(N, T, 2)`` (``accelerations`` rewrites their rows each step).
        self.futures = np.zeros((len(users), len(CROSSING_TIMES), 2))
        self.path_length = np.array([u.path.length for u in users], dtype=np.float64)


def _point_segment_distance(points: FloatArray, start: FloatArray, d: FloatArray) -> FloatArray:
    """Distances [m] of points ``(M, 2)`` to the segment from ``start`` along ``d`` ``(2,)``."""
    rel = points - start
    t = np.clip(rel @ d / max(float(d @ d), 1e-12), 0.0, 1.0)
    return np.hypot(*(rel - t[:, None] * d).T)


def _poses_of(users: list[RoadUser], table: UserTable, rows: IntArray) -> FloatArray:
    """Poses ``(R, 3)`` of the road users ``rows`` ``(R,)`` (box centres, lateral manoeuvres' slopes included)."""
    chosen = [users[k] for k in rows.tolist()]
    s = np.fromiter([u.s for u in chosen], np.float64, len(chosen))
    lateral = np.fromiter([u.lateral for u in chosen], np.float64, len(chosen))
    out = table.paths.pose_batch(table.path[rows], s, lateral)
    for r in [r for r, u in enumerate(chosen) if u.manoeuvre is not None]:
        out[r, SE2Index.HEADING] += float(np.arctan(chosen[r].manoeuvre.slope(chosen[r].s)))  # type: ignore[union-attr]
    return out


def poses(world: World) -> FloatArray:
    """``World.poses`` of every road user at once ``(N, 3)`` (box centres, lateral manoeuvres' slopes included).

    The parked road users' poses (``UserTable``: the step never changes them) are made once per table; each call
    computes the others' (the same arithmetic row by row), from the world's state columns where they are current.
    """
    table = user_table(world)
    users = table.users
    state = current_state(world, table)
    if table.parked_poses is None:
        table.parked_poses = np.zeros((len(users), len(SE2Index)))
        table.parked_poses[table.parked_rows] = _poses_of(users, table, table.parked_rows)
    out = table.parked_poses.copy()
    if state is None:
        out[table.mover_rows] = _poses_of(users, table, table.mover_rows)
    else:
        from sim_bridges.embedded.road_user_kernels import state_poses

        ints, floats = table.paths.kernel_arrays()
        cols = state.cols
        turning = state_poses(table.mover_rows, cols, table.path, out, ints, floats)
        if turning:
            for k in table.mover_rows[cols[table.mover_rows, Column.MANOEUVRING] > 0].tolist():
                user = users[k]
                out[k, SE2Index.HEADING] += float(np.arctan(user.manoeuvre.slope(user.s)))  # type: ignore[union-attr]
    for k in table.own_pose_index:
        if users[k].manoeuvre is None:
            out[k] = users[k].pose  # a user with a pose of its own (the free ego)
    return out


def user_table(world: World) -> UserTable:
    """The world's ``UserTable``, rebuilt when its road users change (paths and sizes never do).

    Each road user is checked to be the table's once per world time (and when the ego, the list of road users or
    its length change); later calls at the same time trust that check, as ``World.poses``' cache does.
    """
    table: UserTable | None = world.__dict__.get("_user_table")
    others = world.road_users
    if table is not None and table.seen is not None:
        time, ego, listed, count = table.seen
        if time == world.time and ego is world.ego and listed is others and count == len(others):
            return table
    users = world.road_users_and_ego
    if table is None or len(table.users) != len(users) or not all(map(operator.is_, table.users, users)):
        table = UserTable(users, table.paths if table is not None else None)
        world._user_table = table  # type: ignore[attr-defined]
    table.seen = (world.time, world.ego, others, len(others))
    return table


def _stop_gap(world: World, user: RoadUser) -> float:
    """``World._stop_gap`` (lights, give-way, lane ends), answered without the call where it is plainly inf.

    That is for a user with no stop line and no hold point that is in its lane or changing lanes (most of the
    traffic between junctions): ``World._stop_gap`` returns inf for it too.
    """
    if (
        not user.stops
        and user.hold_s == math.inf
        and (user.manoeuvre is not None or abs(user.lateral - user.home_lateral) <= 1.0)
    ):
        return math.inf
    return world._stop_gap(user)


def _stop_gaps(world: World, table: UserTable, idx: IntArray, stop: FloatArray) -> FloatArray:
    """``_stop_gap`` of the users ``idx`` ``(U,)`` where ``stop`` ``(U,)`` is NaN (filled in place and returned).

    ``stop`` (``road_user_kernels.decided_users``) is inf already for a user that never has a stop line or a hold
    point (``UserTable.steady``: none when the table is made and no schedule to set one), in its lane or changing
    lanes; ``_stop_gap`` answers inf for it too.
    """
    users = table.users
    for u in np.flatnonzero(np.isnan(stop)).tolist():
        stop[u] = _stop_gap(world, users[int(idx[u])])
    return stop


#: The kernel's rule constants as one array, made at the first call (they are module constants).
_RULES: dict[str, FloatArray] = {}


def accelerations(
    world: World, skip_ego: bool, poses: FloatArray, cols: FloatArray | None = None, table: UserTable | None = None
) -> FloatArray:
    """``World.accelerations`` for every road user at once (see the module docstring).

    ``cols``: the state of every road user ``(N, C)`` (``WorldState.cols``), if the caller holds it (else it is read
    from the objects); ``table``: the world's ``user_table``, if the caller has it.
    """
    from sim_bridges.embedded.road_user_kernels import decided_users, kernel
    from sim_bridges.embedded.world import CURVE_PREVIEW

    everyone = world.road_users_and_ego
    acc = np.zeros(len(everyone))
    fixed = user_table(world) if table is None else table
    if cols is None:
        # Background life (parked off the road, walking beside it) reacts to no one and no one to it: only the
        # others' state is read (their rows of ``cols``; background rows stay zero and are never read).
        cols = np.zeros((len(everyone), len(Column)))  # (N, C)
        cols[fixed.interacting_index] = state_columns([everyone[k] for k in fixed.interacting_index])
    # The users decided (moving, started, reactive: not ``RoadUser.is_static``) and whose stop gap is plainly inf.
    idx, stop, asked = decided_users(
        fixed.interacting_index, cols, world.time, skip_ego, fixed.steady, fixed.home_lateral
    )  # (U,), (U,)
    if not len(idx):
        return acc
    # Predicted centres of the people crossing on their own paths (read only for those near a decided user; the
    # other rows stay zero).
    futures = fixed.futures  # (N, T, 2)
    for j in fixed.crossing_index:
        other = everyone[j]
        walking = np.maximum(0.0, CROSSING_TIMES - max(0.0, other.start_time - world.time))
        futures[j] = other.path.pose_at(other.s + other.speed * walking)[:, : SE2Index.HEADING]
    if asked:
        _stop_gaps(world, fixed, idx, stop)
    rules = _RULES.get("rules")
    if rules is None:
        from sim_bridges.embedded.idm import ACC_COOLNESS
        from sim_bridges.embedded.paths import CURVATURE_MARGIN, CURVATURE_STEP
        from sim_bridges.embedded.world import LATERAL_ACCEL_COMFORT, LOOK_AHEAD, SEARCH_BEHIND

        rules = _RULES["rules"] = np.array(
            [LOOK_AHEAD, SEARCH_BEHIND, CHUNK, BOUND_SLACK, LATERAL_ACCEL_COMFORT, CURVATURE_MARGIN, CURVATURE_STEP,
             ACC_COOLNESS]
        )  # fmt: skip
    ints, floats = fixed.paths.kernel_arrays()
    acc[idx] = kernel(
        idx, poses, cols, fixed.path, fixed.length, fixed.width, fixed.interacting, fixed.vulnerable,
        fixed.crossing, fixed.idm_matrix, futures, stop, ints, floats, rules, CURVE_PREVIEW,
    )  # fmt: skip
    return acc


class WorldState:
    """A vectorised world's road users' changing state as columns, valid at one world time.

    ``step`` integrates the movers in ``cols`` in place (``road_user_kernels.integrate``) and writes their arc
    lengths, speeds and accelerations back to the objects (which the recorder, the labels, the expert and the
    world's own rules read); ``poses`` and the env's snapshot read ``cols``. The rows whose objects change
    outside the compiled integration (the ego, scheduled users, lateral manoeuvres) are re-read from their objects
    where they change. Code that changes a road user's state between steps of a vectorised world makes the
    columns stale: ``invalidate`` (they are re-read from the objects at the next step).

    Attributes:
        table: the ``UserTable`` the rows follow.
        cols: ``state_columns`` of everyone ``(N, len(Column))``.
        time: the world time [s] at which ``cols`` holds the objects' state.
    """

    def __init__(self, table: UserTable, time: float) -> None:
        self.table = table
        self.cols = state_columns(table.users)
        self.time = time


def current_state(world: World, table: UserTable | None = None) -> WorldState | None:
    """The world's ``WorldState`` if it holds the state now (same road users, same time), else None."""
    state: WorldState | None = world.__dict__.get("_state")
    if state is None or state.time != world.time:
        return None
    return state if state.table is (user_table(world) if table is None else table) else None


def invalidate(world: World) -> None:
    """Drop the world's state columns: the next vectorised step re-reads them from the road users."""
    world.__dict__.pop("_state", None)


def _refresh(state: WorldState, rows: list[int]) -> None:
    """Re-read the rows ``rows`` of ``state.cols`` from their objects."""
    users = state.table.users
    if len(rows) == 1:
        state.cols[rows[0]] = state_columns([users[rows[0]]])[0]
    else:
        state.cols[rows] = state_columns([users[k] for k in rows])


def step(world: World, ego_accel: float | None) -> None:
    """``World.step`` of a vectorised world: the same rules and arithmetic, the movers integrated in columns.

    The schedules and the expert's lateral plan (Python, on the objects); the accelerations from the state columns
    (``kernel``); the people crossing wait for vehicles (``World._people_wait``); the integration of every mover in
    one compiled loop over the columns (``road_user_kernels.integrate``, ``World.step``'s arithmetic); arc
    lengths, speeds and accelerations written back to the objects; lateral manoeuvres advanced on the objects; the
    free ego's controller; the time.
    """
    from sim_bridges.embedded.expert import plan_lateral
    from sim_bridges.embedded.road_user_kernels import integrate
    from sim_bridges.embedded.world import DT

    table = user_table(world)
    users = table.users
    state = current_state(world, table)
    if state is None:
        state = world.__dict__["_state"] = WorldState(table, world.time)
    cols = state.cols
    if table.scheduled_index:
        world.run_schedules([users[k] for k in table.scheduled_index])
        _refresh(state, table.scheduled_index)
    if world.plans_lateral(ego_accel):
        plan_lateral(world, world.ego)
        _refresh(state, [0])
    free = world.ego_controller is not None
    poses = world.poses()  # (N, 3)
    acc = accelerations(world, ego_accel is not None or free, poses, cols, table)
    if ego_accel is not None:
        acc[0] = ego_accel
    now = world.time
    wait = table.no_wait  # (N,) people crossing who wait for a vehicle this step
    if table.walker_rows:
        wait = np.zeros(len(users), dtype=np.bool_)
        for k in table.walker_rows:
            if not (cols[k, Column.TARGET_SPEED] <= 0.0 or now < cols[k, Column.START_TIME]):
                wait[k] = world._people_wait(users[k], poses)
    rows, movers = table.integrated[free]
    moved, seen = integrate(rows, acc, cols, table.background, table.path_length, wait, now, DT)  # (R,), flags
    flat = cols[rows, : Column.ACCEL + 1].ravel().tolist()  # (s, speed, accel) of each row in turn
    for user, s, speed, accel in zip(movers, flat[0::3], flat[1::3], flat[2::3], strict=True):
        user.s, user.speed, user.accel = s, speed, accel
    if seen & ENDED:
        for k in rows[(moved & ENDED) > 0].tolist():  # background life at the end of its path
            users[k].target_speed = 0.0
    if seen & TURNING:  # lateral manoeuvres (a few users at a time) advance on the objects
        turning = rows[(moved & TURNING) > 0].tolist()
        for k in turning:
            users[k].advance_lateral()
        _refresh(state, turning)
    if world.ego_controller is not None:
        world.ego_controller(DT)
    world.time = round(world.time + DT, 9)
    _refresh(state, [0])
    state.time = world.time
    if table.seen is not None and table.seen[0] == now:  # the road users checked at the start are still the world's
        _, ego, others, count = table.seen
        table.seen = (world.time, ego, others, count)
