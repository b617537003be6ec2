"""Recording a rolled-out world into 2 Hz ``Frame``s and cutting them into ``Scene``s."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from irl_vla.data.driving_command import PreparedCenterline, compute_driving_command
from irl_vla.data.enums import BoundingBoxIndex, SE2Index
from irl_vla.data.geometry import absolute_to_relative
from irl_vla.data.scene import Annotations, EgoStatus, Frame, Scene, SceneMetadata, one_hot_command
from irl_vla.data.scene_filter import SceneFilter
from irl_vla.data.vehicle import PACIFICA
from sim_bridges.embedded.labels import HORIZON, meta_action, navigation_instruction, scene_description, trace
from sim_bridges.embedded.world import DT, World

RECORD_EVERY = 5  # simulation steps per logged frame (10 Hz -> 2 Hz)
ANNOTATION_RADIUS = 60.0  # [m] objects farther from the ego are not annotated


REAL_TOKEN_LENGTH = 16  # hex characters of a logged frame's token (NAVSIM: real 16, synthetic 17)
SYNTHETIC_TOKEN_LENGTH = 17


def frame_token(log_name: str, index: int, length: int = REAL_TOKEN_LENGTH) -> str:
    """Deterministic frame token of ``length`` hex characters."""
    return hashlib.sha1(f"{log_name}/{index}".encode()).hexdigest()[:length]


def _annotations(world: World) -> Annotations:
    """The road users within ``ANNOTATION_RADIUS`` of the ego, in its frame.

    A vectorised world (the env's) builds them in one batch (equal within float tolerance); the recorded logs use
    the loop below (byte-identical splits).
    """
    if world.vectorised:
        return _annotations_batch(world)
    ego_pose = PACIFICA.rear_axle_from_center(world.ego.pose)
    rows, names, vels, tokens = [], [], [], []
    for user in world.road_users:
        pose = user.pose
        if np.hypot(*(pose[:2] - ego_pose[:2])) > ANNOTATION_RADIUS:
            continue
        rel = absolute_to_relative(pose, ego_pose)
        box = np.zeros(len(BoundingBoxIndex))
        box[[BoundingBoxIndex.X, BoundingBoxIndex.Y]] = rel[:2]
        box[BoundingBoxIndex.Z] = user.height / 2
        box[[BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = (
            user.length,
            user.width,
            user.height,
        )
        box[BoundingBoxIndex.HEADING] = rel[SE2Index.HEADING]
        v = user.speed * np.array([np.cos(rel[SE2Index.HEADING]), np.sin(rel[SE2Index.HEADING]), 0.0])
        rows.append(box)
        names.append(user.agent_class.value)
        vels.append(v)
        tokens.append(user.track_token)
    if not rows:
        return Annotations.empty()
    return Annotations(np.stack(rows), names, np.stack(vels), list(tokens), list(tokens))


def _annotations_batch(world: World) -> Annotations:
    """``_annotations`` of every road user at once."""
    if not world.road_users:
        return Annotations.empty()
    return annotations_of(capture(world))


@dataclass
class Snapshot:
    """What a frame records of the world at one simulation step, as plain values (``capture``).

    A closed-loop env captures one per step (cheap: arrays it reads anyway) and builds the ``Frame`` only when
    someone reads it (``frame_of``).

    Attributes:
        time: world time [s].
        ego_pose: the ego's rear-axle pose ``(3,)``.
        ego_speed: [m/s]; ``ego_accel``: [m/s^2]; ``ego_curvature``: [1/m] of its motion.
        instruction: the navigation instruction.
        lights: ``World.red_connectors``.
        poses: the other road users' box-centre poses ``(N, 3)``.
        speeds: their speeds ``(N,)`` [m/s].
        dims: their (length, width, height) ``(N, 3)`` [m]; ``names``: classes; ``tokens``: track tokens.
    """

    time: float
    ego_pose: np.ndarray
    ego_speed: float
    ego_accel: float
    ego_curvature: float
    instruction: str
    lights: list[tuple[str, bool]]
    poses: np.ndarray
    speeds: np.ndarray
    dims: np.ndarray
    names: list[str]
    tokens: list[str]


def user_constants(world: World) -> tuple[np.ndarray, list[str], list[str]]:
    """What never changes about the other road users: dimensions ``(N, 3)`` [m], class names, track tokens."""
    users = world.road_users
    dims = np.array([[u.length, u.width, u.height] for u in users], dtype=np.float64).reshape(-1, 3)
    return dims, [u.agent_class.value for u in users], [u.track_token for u in users]


def capture(
    world: World,
    *,
    poses: np.ndarray | None = None,
    speeds: np.ndarray | None = None,
    lights: list[tuple[str, bool]] | None = None,
    constants: tuple[np.ndarray, list[str], list[str]] | None = None,
    ego_pose: np.ndarray | None = None,
) -> Snapshot:
    """The ``Snapshot`` of ``world`` now.

    ``poses`` ``(N, 3)``, ``speeds`` ``(N,)``, ``lights`` and ``constants`` (``user_constants``) of the other road
    users, and the ego's rear-axle pose ``ego_pose`` ``(3,)``, may be given when the caller has them.
    """
    ego = world.ego
    dims, names, tokens = user_constants(world) if constants is None else constants
    return Snapshot(
        time=world.time,
        ego_pose=PACIFICA.rear_axle_from_center(ego.pose) if ego_pose is None else ego_pose,  # rear axle: the ego's
        ego_speed=ego.speed,
        ego_accel=ego.accel,
        ego_curvature=ego.curvature(),
        instruction=navigation_instruction(world),
        lights=world.red_connectors() if lights is None else lights,
        poses=world.poses()[1:] if poses is None else poses,
        speeds=np.array([u.speed for u in world.road_users], dtype=np.float64) if speeds is None else speeds,
        dims=dims,
        names=names,
        tokens=tokens,
    )


def annotations_of(snapshot: Snapshot) -> Annotations:
    """The road users within ``ANNOTATION_RADIUS`` of the ego, in its frame, from a snapshot."""
    ego_pose, poses = snapshot.ego_pose, snapshot.poses
    keep = np.flatnonzero(np.hypot(*(poses[:, :2] - ego_pose[:2]).T) <= ANNOTATION_RADIUS)
    if not len(keep):
        return Annotations.empty()
    rel = absolute_to_relative(poses[keep], ego_pose)  # (M, 3)
    dims = snapshot.dims[keep]  # (M, 3)
    boxes = np.zeros((len(keep), len(BoundingBoxIndex)))
    boxes[:, [BoundingBoxIndex.X, BoundingBoxIndex.Y]] = rel[:, :2]
    boxes[:, BoundingBoxIndex.Z] = dims[:, 2] / 2
    boxes[:, [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = dims
    boxes[:, BoundingBoxIndex.HEADING] = rel[:, SE2Index.HEADING]
    speed = snapshot.speeds[keep]
    heading = rel[:, SE2Index.HEADING]
    vels = np.column_stack([speed * np.cos(heading), speed * np.sin(heading), np.zeros(len(keep))])
    tokens = [snapshot.tokens[k] for k in keep]
    return Annotations(boxes, [snapshot.names[k] for k in keep], vels, tokens, list(tokens))


def frame_of(
    snapshot: Snapshot,
    route_ids: list[str],
    route_centerline: np.ndarray | PreparedCenterline | None,
    token: str,
    *,
    annotations: Annotations | None = None,
    description: str = "",
) -> Frame:
    """The ``Frame`` of a snapshot (``annotations``: given, or ``annotations_of`` the snapshot)."""
    pose, speed = snapshot.ego_pose, snapshot.ego_speed
    status = EgoStatus(
        ego_pose=pose,
        ego_velocity=np.array([speed, 0.0]),
        ego_acceleration=np.array([snapshot.ego_accel, speed**2 * snapshot.ego_curvature]),
        driving_command=one_hot_command(compute_driving_command(route_centerline, pose[: SE2Index.HEADING])),
        in_global_frame=True,
    )
    return Frame(
        token=token,
        timestamp=round(snapshot.time / DT) * 100_000,
        roadblock_ids=list(route_ids),
        traffic_lights=snapshot.lights,
        annotations=annotations_of(snapshot) if annotations is None else annotations,
        ego_status=status,
        instruction=snapshot.instruction,
        scene_description=description,
    )


def observe(
    world: World,
    route_ids: list[str],
    route_centerline: np.ndarray | PreparedCenterline | None,
    token: str,
    *,
    describe: bool = True,
) -> Frame:
    """The world now as a logged ``Frame``: the ego's status, the objects around it, lights and language.

    The recorder (expert logs) and the closed-loop env (a free ego) build their frames here (the env through
    ``capture`` and ``frame_of``, at the steps whose frame is read). ``describe``: also write the scene description
    (a supervision target; the env may skip it for speed). ``route_centerline`` (x, y, heading) ``(N, 3)`` may be
    given prepared (``prepare_centerline``, once per episode).
    """
    nobody = (np.zeros((0, 3)), [], [])
    snapshot = capture(world, poses=nobody[0], speeds=np.zeros(0), constants=nobody)  # the others: annotations below
    annotations = _annotations(world)
    description = scene_description(world, annotations) if describe else ""
    return frame_of(snapshot, route_ids, route_centerline, token, annotations=annotations, description=description)


def record_log(
    world: World,
    route_ids: list[str],
    route_centerline: np.ndarray,
    *,
    log_name: str,
    num_frames: int,
    on_step: Callable[[], None] | None = None,
    token_length: int = REAL_TOKEN_LENGTH,
) -> list[Frame]:
    """Step ``world`` and record ``num_frames`` frames at 2 Hz (the first before any step).

    Each frame carries a navigation instruction and a scene description; its meta-action is read from the expert's next
    ``labels.HORIZON`` seconds, simulated past the last frame. ``on_step`` runs after every world step
    (an ``audit.Auditor``'s ``check``). Re-simulated (stage-2) logs use ``SYNTHETIC_TOKEN_LENGTH`` tokens.
    """
    frames = []
    steps = [trace(world)]
    for index in range(num_frames):
        if index:
            for _ in range(RECORD_EVERY):
                world.step()
                steps.append(trace(world))
                if on_step is not None:
                    on_step()
        frames.append(observe(world, route_ids, route_centerline, frame_token(log_name, index, token_length)))
    # Look ahead past the last frame so that its label sees a full horizon too.
    for _ in range(round(HORIZON / DT)):
        world.step()
        steps.append(trace(world))
    for frame in frames:
        frame.meta_action = meta_action(steps, frame.timestamp / 1e6)
    return frames


def cut_scenes(frames: list[Frame], scene_filter: SceneFilter, *, log_name: str, world: World) -> list[Scene]:
    """Windows of ``frames`` as ``Scene``s (with the world's map)."""
    scenes = []
    for start in scene_filter.window_starts(len(frames)):
        window = frames[start : start + scene_filter.num_frames]
        current = window[scene_filter.num_history_frames - 1]
        if scene_filter.has_route and not current.roadblock_ids:
            continue
        if not scene_filter.keeps(log_name, current.token):
            continue
        meta = SceneMetadata(
            log_name=log_name,
            scene_token=current.token,
            map_name=world.map.name,
            initial_token=current.token,
            num_history_frames=scene_filter.num_history_frames,
            num_future_frames=scene_filter.num_future_frames,
        )
        scenes.append(Scene(meta, window, world.map))
        if scene_filter.max_scenes is not None and len(scenes) >= scene_filter.max_scenes:
            break
    return scenes
