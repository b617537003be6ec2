"""The bird's-eye view of one closed-loop step, drawn into an RGB array (no window, no pygame).

Layers, bottom to top: ground, drivable area (the route's roadblocks tinted), crosswalks, lane boundaries, stop
lines, the route's centreline, the ego's trail, traffic lights (a stub along each governed connector and a bar
across its lane at the stop line, in the route's connector's colour), road users by class, the ego, the K
candidates (by colour of their reward, best on top), the executed plan, a cross where each infraction of the
episode happened.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from irl_vla.data.enums import XY, BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import box_corners, points_to_local
from irl_vla.data.map import MapLayer
from irl_vla.data.map.map_api import Map
from irl_vla.data.scene import Annotations, Frame
from irl_vla.data.vehicle import PACIFICA
from irl_vla.envs.view import StepView
from irl_vla.viz import palette
from irl_vla.viz.projection import BevConfig

_DRIVABLE_LAYERS = (MapLayer.ROADBLOCK, MapLayer.ROADBLOCK_CONNECTOR, MapLayer.INTERSECTION, MapLayer.CARPARK_AREA)
_MAP_LAYERS = (*_DRIVABLE_LAYERS, MapLayer.CROSSWALK, MapLayer.LANE, MapLayer.STOP_LINE)
LIGHT_STUB = 5.0  # length of a light's stub along its connector [m]
LIGHT_BAR = 1.5  # half-length of a light's bar across the lane at the stop line [m]
LIGHT_WIDTH = 0.7  # width of a light's bar and stub [m]
INFRACTION_MARK = 1.0  # half-size of the cross marking an infraction [m]


def _points(config: BevConfig, local_xy: npt.NDArray[np.float64]) -> list[float]:
    """Pixel points of ego-frame points ``(N, 2)`` as PIL takes them (flat: column, row, column, row, ...)."""
    return config.to_pixels(local_xy).ravel().tolist()


def _polygon(draw: ImageDraw.ImageDraw, config: BevConfig, ring: npt.ArrayLike, ego: npt.NDArray, **kw: object) -> None:
    local = points_to_local(np.asarray(ring, dtype=np.float64)[:, XY], ego)  # (N, 2)
    if len(local) >= 3:
        draw.polygon(_points(config, local), **kw)


def _line(draw: ImageDraw.ImageDraw, config: BevConfig, local_xy: npt.NDArray, fill: tuple, width: int) -> None:
    if len(local_xy) >= 2:
        draw.line(_points(config, local_xy), fill=fill, width=width, joint="curve")


def draw_map(
    draw: ImageDraw.ImageDraw, config: BevConfig, map_api: Map, ego: npt.NDArray, route_ids: Iterable[str]
) -> None:
    """Drivable area (route roadblocks tinted), crosswalks, lane boundaries and stop lines around ``ego``."""
    near = map_api.query_radius(ego[XY], config.radius, _MAP_LAYERS)
    on_route = set(route_ids)
    for layer in _DRIVABLE_LAYERS:
        for obj in near[layer]:
            fill = palette.ROUTE_AREA if obj.id in on_route else palette.DRIVABLE
            _polygon(draw, config, obj.polygon.exterior.coords, ego, fill=fill)
    for obj in near[MapLayer.CROSSWALK]:
        _polygon(draw, config, obj.polygon.exterior.coords, ego, fill=palette.CROSSWALK)
    for lane in near[MapLayer.LANE]:
        for boundary in (lane.left_boundary, lane.right_boundary):
            _line(draw, config, points_to_local(boundary[:, XY], ego), palette.LANE_LINE, 1)
    for obj in near[MapLayer.STOP_LINE]:
        _polygon(draw, config, obj.polygon.exterior.coords, ego, fill=palette.STOP_LINE)


def draw_lights(
    draw: ImageDraw.ImageDraw,
    config: BevConfig,
    map_api: Map,
    ego: npt.NDArray,
    lights: list[tuple[str, bool]],
    route_ids: Iterable[str] = (),
) -> None:
    """Each light where its connector starts (on the stop line): a stub along the connector, a bar across the lane.

    Connectors leaving one lane start at one point. Their stubs diverge (red drawn over green where they
    overlap); the bar says what the route's connector shows when one of them is on the route, else red if any of
    them is red.
    """
    width = max(1, round(LIGHT_WIDTH * config.pixels_per_meter))
    on_route = set(route_ids)
    entries: dict[tuple[float, float], list[tuple[bool, bool, npt.NDArray[np.float64]]]] = {}
    for connector_id, is_red in sorted(lights, key=lambda light: light[1]):  # green first
        if not map_api.has(MapLayer.LANE_CONNECTOR, connector_id):
            continue
        connector = map_api.get_lane(connector_id)
        line = connector.centerline  # (N, 3) global
        if np.hypot(*(line[0, XY] - ego[XY])) > config.radius:
            continue
        along = np.cumsum(np.r_[0.0, np.hypot(*np.diff(line[:, XY], axis=0).T)])  # (N,) [m]
        colour = palette.LIGHT_RED if is_red else palette.LIGHT_GREEN
        _line(draw, config, points_to_local(line[along <= LIGHT_STUB, XY], ego), colour, width)
        key = (round(float(line[0, SE2Index.X]), 1), round(float(line[0, SE2Index.Y]), 1))
        entries.setdefault(key, []).append((is_red, connector.roadblock_id in on_route, line[0]))
    for members in entries.values():
        routed = [m for m in members if m[1]]
        red = any(m[0] for m in (routed or members))
        start, heading = members[0][2][XY], members[0][2][SE2Index.HEADING]
        left = np.array([-np.sin(heading), np.cos(heading)])
        bar = points_to_local(np.stack([start + LIGHT_BAR * left, start - LIGHT_BAR * left]), ego)
        _line(draw, config, bar, palette.LIGHT_RED if red else palette.LIGHT_GREEN, width)


def draw_agents(draw: ImageDraw.ImageDraw, config: BevConfig, annotations: Annotations) -> None:
    """Road users and objects (ego-frame boxes) filled by class, with a line to the front of each."""
    boxes = annotations.boxes
    if not len(boxes):
        return
    poses = boxes[:, [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]]  # (N, 3)
    corners = box_corners(poses, boxes[:, BoundingBoxIndex.LENGTH], boxes[:, BoundingBoxIndex.WIDTH])  # (N, 4, 2)
    for k, name in enumerate(annotations.names):
        draw.polygon(_points(config, corners[k]), fill=palette.agent_colour(name), outline=palette.OUTLINE)
        front = corners[k, [0, 3]].mean(axis=0)
        _line(draw, config, np.stack([poses[k, XY], front]), palette.OUTLINE, 1)


def draw_ego(draw: ImageDraw.ImageDraw, config: BevConfig) -> None:
    """The ego's box at the origin (the rear axle), with its front marked."""
    corners = box_corners([PACIFICA.rear_axle_to_center, 0.0, 0.0], PACIFICA.length, PACIFICA.width)  # (4, 2)
    draw.polygon(_points(config, corners), fill=palette.EGO, outline=palette.OUTLINE, width=2)
    _line(draw, config, corners[[0, 3]], palette.OUTLINE, 3)


def draw_infractions(draw: ImageDraw.ImageDraw, config: BevConfig, view: StepView, ego: npt.NDArray) -> None:
    """A cross where each infraction of the episode happened (the ego's rear axle at the event)."""
    if not view.infractions:
        return
    where = points_to_local(np.stack([event.position for event in view.infractions]), ego)  # (N, 2)
    r = INFRACTION_MARK * config.pixels_per_meter
    for col, row in config.to_pixels(where).tolist():
        draw.line((col - r, row - r, col + r, row + r), fill=palette.INFRACTION, width=3)
        draw.line((col - r, row + r, col + r, row - r), fill=palette.INFRACTION, width=3)


def _with_origin(poses: npt.NDArray) -> npt.NDArray[np.float64]:
    """Ego-frame positions ``(T + 1, 2)`` of a plan, starting at the rear axle."""
    return np.concatenate([np.zeros((1, 2)), np.asarray(poses, dtype=np.float64)[:, XY]])


def candidate_colours(view: StepView, value_range: tuple[float, float]) -> npt.NDArray[np.uint8] | None:
    """Colours ``(K, 3)`` of the candidates: by learned reward, else by the agent's score ranked to [0, 1].

    Returns None when the view has no candidates.

    Raises:
        ValueError: when the view's candidate rewards are not one per candidate.
    """
    if view.candidates is None or not len(view.candidates):
        return None
    if view.candidate_rewards is not None:
        rewards = np.asarray(view.candidate_rewards, dtype=np.float64)
        if rewards.shape != (len(view.candidates),):
            raise ValueError(
                f"StepView.candidate_rewards: expected one per candidate ({len(view.candidates)},), "
                f"got shape {rewards.shape} (route {view.route_id}, step {view.step})"
            )
        return palette.reward_colours(rewards, value_range)
    scores = np.asarray(view.candidates.scores, dtype=np.float64)
    span = scores.max() - scores.min()
    ranked = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
    return palette.reward_colours(ranked)


def draw_plans(
    draw: ImageDraw.ImageDraw,
    config: BevConfig,
    view: StepView,
    show_candidates: bool,
    value_range: tuple[float, float],
) -> None:
    """The K candidates (worst first, so the best lies on top) and the executed plan over them."""
    colours = candidate_colours(view, value_range) if show_candidates else None
    if colours is not None and view.candidates is not None:
        values = view.candidate_rewards if view.candidate_rewards is not None else view.candidates.scores
        for k in np.argsort(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf), kind="stable"):
            fill = tuple(int(c) for c in colours[k])
            _line(draw, config, _with_origin(view.candidates.poses[k]), fill, config.candidate_width)
    if view.plan is not None:
        plan = _with_origin(view.plan.poses)
        _line(draw, config, plan, palette.PLAN, config.plan_width)
        r = config.plan_width * 0.8
        for col, row in config.to_pixels(plan[1:]).tolist():
            draw.ellipse((col - r, row - r, col + r, row + r), fill=palette.PLAN)


def draw_trail(
    draw: ImageDraw.ImageDraw, config: BevConfig, trail: npt.ArrayLike, ego: npt.NDArray[np.float64]
) -> None:
    """Where the ego has been: its global positions ``(N, 2)`` [m] at past steps, joined, with a dot each."""
    points = np.asarray(trail, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return
    local = points_to_local(points, ego)  # (N, 2)
    _line(draw, config, local, palette.TRAIL, 2)
    for col, row in config.to_pixels(local).tolist():
        draw.ellipse((col - 2, row - 2, col + 2, row + 2), fill=palette.TRAIL)


def draw_route(draw: ImageDraw.ImageDraw, config: BevConfig, view: StepView, ego: npt.NDArray) -> None:
    """The route's centreline near the ego."""
    route = view.route.poses[:, XY]  # (N, 2) global
    near = np.hypot(*(route - ego[XY]).T) <= config.radius + 5.0
    if near.sum() >= 2:
        idx = np.flatnonzero(near)
        _line(draw, config, points_to_local(route[idx[0] : idx[-1] + 1], ego), palette.ROUTE_LINE, config.route_width)


def render_bev(
    view: StepView,
    config: BevConfig | None = None,
    *,
    show_candidates: bool = True,
    value_range: tuple[float, float] = (0.0, 1.0),
    trail: npt.ArrayLike = (),
) -> npt.NDArray[np.uint8]:
    """The BEV of ``view`` centred on the ego (x forward up), as an RGB image ``(H, W, 3)``.

    Args:
        view: the step to draw.
        config: size and scale (default ``BevConfig()``).
        show_candidates: draw the K candidates.
        value_range: the rewards at the two ends of the candidates' colour map.
        trail: the ego's global positions ``(N, 2)`` [m] at the episode's past steps (drawn under the road users).
    """
    config = config or BevConfig()
    image = Image.new("RGB", (config.width, config.height), palette.BACKGROUND)
    draw = ImageDraw.Draw(image)
    frame: Frame = view.frame
    ego = frame.ego_status.ego_pose  # (3,) global
    route_ids = view.route.roadblock_ids or frame.roadblock_ids
    if view.map_api is not None:
        draw_map(draw, config, view.map_api, ego, route_ids)
    draw_route(draw, config, view, ego)
    draw_trail(draw, config, trail, ego)
    if view.map_api is not None:
        draw_lights(draw, config, view.map_api, ego, frame.traffic_lights, route_ids)
    draw_agents(draw, config, frame.annotations)
    draw_ego(draw, config)
    draw_plans(draw, config, view, show_candidates, value_range)
    draw_infractions(draw, config, view, ego)
    return np.asarray(image)  # (H, W, 3)
