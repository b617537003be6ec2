"""Hand-made steps on the T-junction fixture for the viewer's tests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from irl_vla.agents.agent import Candidates
from irl_vla.data.enums import DrivingCommand
from irl_vla.data.scene import Annotations, EgoStatus, Frame, one_hot_command
from irl_vla.data.sensors import Camera, CameraCalibration
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.envs.infractions import Infraction, InfractionKind
from irl_vla.envs.route import Route
from irl_vla.envs.view import StepView
from irl_vla.scoring.sub_scores import SubScore
from tests.fixtures import build_t_junction

EGO = np.array([-30.0, -1.75, 0.0])  # on lane w_in_0, heading east, 20 m before the stop line at x = -10
PLAN_Y = 0.6  # the plan's lateral offset [m] (off the route's centreline, so its pixels are the plan's own)
CANDIDATE_Y = (4.0, 7.0, -6.0)  # the candidates' lateral offsets [m]
CANDIDATE_REWARDS = (0.15, 0.9, 0.5)
CAR = np.array([[14.0, -3.5, 0.0, 4.5, 2.0, 1.6, 0.0]])  # a vehicle box in the ego frame (next lane, ahead)


def camera(colour: tuple[int, int, int], width: int = 64, height: int = 36) -> Camera:
    calibration = CameraCalibration(np.eye(3), np.zeros(3), np.eye(3))
    return Camera(calibration, np.full((height, width, 3), colour, dtype=np.uint8))


def straight(y: float, speed: float = 4.0) -> np.ndarray:
    """Poses ``(T, 3)`` at constant ``speed`` [m/s] along x, offset ``y`` [m]."""
    times = DEFAULT_SAMPLING.times
    return np.stack([speed * times, np.full_like(times, y), np.zeros_like(times)], axis=1)


def junction_view(**overrides: object) -> StepView:
    """The ego approaching the signalised T-junction: straight connector red, the south arm's right turn green."""
    map_api = build_t_junction()
    status = EgoStatus(EGO, np.array([8.0, 0.0]), np.zeros(2), one_hot_command(DrivingCommand.STRAIGHT), True)
    frame = Frame(
        "00000000000000aa",
        1_000_000,
        ["w_in", "rbc_w_e", "e_out"],
        [("c_w_e_0", True), ("c_w_e_1", True), ("c_s_e", False)],
        Annotations(CAR.copy(), ["vehicle"], np.zeros((1, 3)), ["i0"], ["t0"]),
        status,
        instruction="Follow the road.",
    )
    route = Route("t_junction/0", map_api.route_centerline(frame.roadblock_ids, EGO), frame.roadblock_ids)
    poses = np.stack([straight(y, speed=3.0) for y in CANDIDATE_Y]).astype(np.float32)  # (K, T, 3)
    view = StepView(
        route_id=route.route_id,
        step=3,
        time=1.5,
        frame=frame,
        map_api=map_api,
        route=route,
        plan=Trajectory(straight(PLAN_Y)),
        candidates=Candidates(poses, np.zeros(len(CANDIDATE_Y), dtype=np.float32)),
        candidate_rewards=np.array(CANDIDATE_REWARDS),
        learned_reward=0.8,
        sub_scores=np.linspace(0.2, 1.0, len(SubScore)),
        infractions=[Infraction(InfractionKind.RED_LIGHT, 1.2, EGO[:2], "c_w_e_0")],
        route_completion=12.0,
        cameras={"cam_l0": camera((200, 0, 0)), "cam_f0": camera((0, 200, 0)), "cam_r0": camera((0, 0, 200))},
    )
    return replace(view, **overrides)
