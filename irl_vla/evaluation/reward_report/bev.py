"""A bird's-eye picture of a scored candidate, drawn from its scene's metric cache (what the scorer saw).

Ego frame with x forward drawn upwards and y left drawn to the left: the drivable polygons (roadblocks,
intersections and car parks filled, lanes and connectors outlined), lane connectors with a red light, the other
objects at t = 0 with their 4 s paths, the ego's footprint, the route centerline, the logged expert's plan and
the candidate.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.patches import Polygon as PolygonPatch

from irl_vla.data.enums import XY, AgentClass, SE2Index
from irl_vla.data.geometry import points_to_local
from irl_vla.evaluation.reward_report.figures import png_bytes
from irl_vla.scoring.scene_cache import DRIVABLE_KINDS, LANE_KINDS, SceneCache
from irl_vla.scoring.states import CORNERS, POSE, footprint

#: Drawn area in the ego frame: x_min, x_max, y_min, y_max [m].
BEV_RANGE = (-15.0, 55.0, -30.0, 30.0)
#: Fill colour of each object class (matplotlib colours).
CLASS_COLOURS: dict[str, str] = {
    AgentClass.VEHICLE.value: "tab:blue",
    AgentClass.PEDESTRIAN.value: "tab:orange",
    AgentClass.BICYCLE.value: "gold",
    AgentClass.TRAFFIC_CONE.value: "darkorange",
    AgentClass.BARRIER.value: "silver",
    AgentClass.CZONE_SIGN.value: "peru",
    AgentClass.GENERIC_OBJECT.value: "sienna",
}
CANDIDATE_COLOUR, EXPERT_COLOUR, ROUTE_COLOUR = "crimson", "limegreen", "deepskyblue"


def _screen(xy: np.ndarray) -> np.ndarray:
    """Ego-frame points ``(..., 2)`` to drawing coordinates (y left to the left, x forward up)."""
    return np.stack([-xy[..., 1], xy[..., 0]], axis=-1)


def _polygon(ax: plt.Axes, xy: np.ndarray, **kw: object) -> None:
    ax.add_patch(PolygonPatch(_screen(xy), closed=True, **kw))


def bev_png(cache: SceneCache, candidate: npt.ArrayLike, expert: npt.ArrayLike | None = None, title: str = "") -> bytes:
    """PNG of the scene with ``candidate`` ``(T, 3)`` and ``expert`` ``(T', 3)`` (relative rear-axle poses).

    Args:
        cache: the scene's metric cache.
        candidate: the scored candidate.
        expert: the logged expert's plan (default: the cache's ``human_plan`` when it has one).
        title: picture title (e.g. the scene token and both EPDMS).
    """
    ego = np.asarray(cache.initial_state[POSE], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.2, 4.6))
    ax.set_facecolor((0.36, 0.42, 0.32))
    for kind, poly in zip(cache.polygon_kinds, cache.polygons, strict=True):
        xy = points_to_local(np.asarray(poly.exterior.coords), ego)
        if kind in DRIVABLE_KINDS:
            _polygon(ax, xy, fc=(0.42, 0.42, 0.45), ec="none", zorder=1)
        elif kind in LANE_KINDS:
            _polygon(ax, xy, fc="none", ec=(0.8, 0.8, 0.75), lw=0.4, zorder=2)
    red_now = cache.red[0] if cache.red.size else np.zeros(len(cache.red_light_polygons), dtype=bool)
    for poly, red in zip(cache.red_light_polygons, red_now, strict=True):
        if red:
            xy = points_to_local(np.asarray(poly.exterior.coords), ego)
            _polygon(ax, xy, fc=(0.9, 0.1, 0.1, 0.35), ec="red", lw=0.6, zorder=3)
    if len(cache.centerline):
        line = _screen(points_to_local(cache.centerline[:, XY], ego))
        ax.plot(line[:, 0], line[:, 1], color=ROUTE_COLOUR, lw=0.8, ls=":", zorder=4)
    tracks = cache.tracks
    if len(tracks):
        corners = tracks.corners()  # (T, N, 4, 2)
        for n, name in enumerate(tracks.names):
            colour = CLASS_COLOURS.get(name, "grey")
            seen = np.flatnonzero(tracks.valid[:, n])
            if not len(seen):
                continue
            path = _screen(points_to_local(tracks.poses[seen, n][:, XY], ego))
            ax.plot(path[:, 0], path[:, 1], color=colour, lw=0.6, alpha=0.5, zorder=5)
            _polygon(ax, points_to_local(corners[seen[0], n], ego), fc=colour, ec="black", lw=0.4, zorder=6)
    ego_box = footprint(np.zeros(len(SE2Index)))[CORNERS]  # (4, 2) in the ego frame
    _polygon(ax, ego_box, fc="white", ec="black", lw=0.6, zorder=7)
    plans = [
        (expert if expert is not None else cache.human_plan, EXPERT_COLOUR, "expert"),
        (candidate, CANDIDATE_COLOUR, "candidate"),
    ]
    for plan, colour, label in plans:
        if plan is None:
            continue
        xy = _screen(np.vstack([np.zeros((1, 2)), np.asarray(plan, dtype=np.float64)[:, XY]]))
        ax.plot(xy[:, 0], xy[:, 1], "o-", color=colour, lw=1.6, ms=2.5, label=label, zorder=8)
    x0, x1, y0, y1 = BEV_RANGE
    ax.set_xlim(-y1, -y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    return png_bytes(fig)
