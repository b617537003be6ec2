"""Hand-made scoring scenes on the T-junction fixture: the ego on lane ``w_in_0`` heading east."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from irl_vla.data.enums import BoundingBoxIndex, DrivingCommand
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.scene_cache import SceneCache, build_scene_cache
from tests.fixtures import build_t_junction

MAP = build_t_junction()
SIZES = {"vehicle": (4.5, 1.9), "traffic_cone": (0.4, 0.4), "pedestrian": (0.6, 0.6), "barrier": (2.0, 0.5)}


@dataclass
class Obj:
    """An object moving straight at constant velocity: global pose at the current frame and velocity."""

    name: str
    x: float
    y: float
    heading: float = 0.0
    speed: float = 0.0
    token: str = field(default="")


def make_scene(
    ego_x: float = -40.0,
    ego_y: float = -1.75,
    ego_speed: float = 10.0,
    objects: tuple[Obj, ...] = (),
    red: tuple[str, ...] = (),
    num_future: int = 8,
    token: str = "scene",
) -> Scene:
    """A scene with the ego at constant speed east; objects move at constant velocity; ``red`` connectors red."""
    frames = []
    for i in range(4 + num_future):
        t = (i - 3) * 0.5
        ego = np.array([ego_x + ego_speed * t, ego_y, 0.0])
        rows, names, vels, tokens = [], [], [], []
        for j, obj in enumerate(objects):
            pose = np.array(
                [obj.x + obj.speed * t * np.cos(obj.heading), obj.y + obj.speed * t * np.sin(obj.heading), obj.heading]
            )
            rel = absolute_to_relative(pose, ego)
            box = np.zeros(len(BoundingBoxIndex))
            box[[BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]] = rel
            box[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH]] = SIZES[obj.name]
            box[BoundingBoxIndex.HEIGHT] = 1.5
            rows.append(box)
            names.append(obj.name)
            vels.append([obj.speed * np.cos(rel[2]), obj.speed * np.sin(rel[2]), 0.0])
            tokens.append(obj.token or f"obj{j}")
        ann = (
            Annotations(np.stack(rows), names, np.array(vels), list(tokens), list(tokens))
            if rows
            else Annotations.empty()
        )
        status = EgoStatus(
            ego, np.array([ego_speed, 0.0]), np.zeros(2), one_hot_command(DrivingCommand.STRAIGHT), in_global_frame=True
        )
        lights = [(c, c in red) for c in ("c_w_e_0", "c_w_e_1", "c_w_s")]
        frames.append(
            Frame(f"{token}-{i:02d}", 1_000_000 + 500_000 * i, ["w_in", "rbc_w_e", "e_out"], lights, ann, status)
        )
    meta = SceneMetadata("log_t", frames[3].token, MAP.name, frames[3].token, 4, num_future)
    return Scene(meta, frames, MAP)


def make_cache(**kwargs: object) -> SceneCache:
    """``make_scene`` turned into a metric cache with its PDM-Closed plan."""
    cache = build_scene_cache(make_scene(**kwargs))  # type: ignore[arg-type]
    plan_scene(cache, PDMClosedPlanner(FastScorer()))
    return cache


def straight_plan(speed: float, lateral: float = 0.0, sampling=DEFAULT_SAMPLING) -> np.ndarray:
    """Relative plan at constant ``speed`` [m/s], shifted ``lateral`` [m] to the left ``(T, 3)``."""
    t = sampling.times
    return np.stack([speed * t, np.full_like(t, lateral), np.zeros_like(t)], axis=1)


def shifted_plan(speed: float, lateral: float, duration: float = 2.0, sampling=DEFAULT_SAMPLING) -> np.ndarray:
    """Relative plan at constant ``speed`` that moves ``lateral`` [m] left along a half-cosine over ``duration``."""
    t = sampling.times
    x = speed * t
    phase = np.clip(t / duration, 0.0, 1.0)
    y = lateral * (1 - np.cos(np.pi * phase)) / 2
    dy = np.where(phase < 1.0, lateral * np.pi / (2 * duration) * np.sin(np.pi * phase), 0.0)
    return np.stack([x, y, np.arctan2(dy, speed)], axis=1)
