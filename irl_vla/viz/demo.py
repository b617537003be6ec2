"""Steps to draw without a closed-loop run: a logged scene as a ``StepView`` with made-up candidates and rewards.

For the viewer's benchmark, its tests and its screenshots: the plan is the logged expert's future, the K
candidates fan out around it (lateral offsets and speed scales), and each candidate's "learned reward" falls with
its distance from the plan. The rewards are synthetic: they exercise the colour map, they are no model's output.
"""

from __future__ import annotations

import numpy as np

from irl_vla.agents.agent import Candidates
from irl_vla.data.enums import XY, SE2Index
from irl_vla.data.scene import Scene
from irl_vla.data.trajectory import Trajectory
from irl_vla.envs.route import Route
from irl_vla.envs.view import StepView
from irl_vla.scoring.sub_scores import SubScore


def fan_candidates(plan: Trajectory, count: int, rng: np.random.Generator) -> Candidates:
    """``count`` candidates around ``plan``: lateral offsets growing along the plan, and speed scales.

    Args:
        plan: the centre plan (ego frame).
        count: K.
        rng: draws the offsets [m] and scales.
    """
    poses = np.repeat(plan.poses[None].astype(np.float64), count, axis=0)  # (K, T, 3)
    ramp = np.linspace(0.0, 1.0, plan.poses.shape[0])  # (T,)
    lateral = rng.uniform(-3.0, 3.0, size=(count, 1)) * ramp  # (K, T) [m]
    scale = rng.uniform(0.7, 1.2, size=(count, 1))  # (K, 1)
    heading = plan.poses[:, SE2Index.HEADING]  # (T,)
    poses[..., SE2Index.X] = poses[..., SE2Index.X] * scale - lateral * np.sin(heading)
    poses[..., SE2Index.Y] = poses[..., SE2Index.Y] * scale + lateral * np.cos(heading)
    scores = -np.abs(lateral[:, -1]) - np.abs(scale[:, 0] - 1.0)  # (K,)
    return Candidates(poses.astype(np.float32), scores.astype(np.float32), plan.trajectory_sampling)


def scene_view(scene: Scene, num_candidates: int = 8, seed: int = 0, step: int = 0) -> StepView:
    """The scene's current frame as a step: expert plan, fanned candidates, synthetic rewards and sub-scores.

    Raises:
        ValueError: naming the scene when it has no map or its route cannot be followed from the ego.
    """
    if scene.map_api is None:
        raise ValueError(f"scene {scene.token}: a demo view needs the scene's map")
    rng = np.random.default_rng(seed)
    frame = scene.current_frame
    ego = frame.ego_status.ego_pose
    try:
        centreline = scene.map_api.route_centerline(frame.roadblock_ids, ego)  # (N, 3)
    except (KeyError, ValueError) as e:
        raise ValueError(f"scene {scene.token}: no route centreline from the ego ({e})") from None
    route = Route(scene.scene_metadata.log_name, centreline, list(frame.roadblock_ids), scene.map_api.name)
    plan = scene.get_future_trajectory(8)
    candidates = fan_candidates(plan, num_candidates, rng)
    spread = np.linalg.norm(candidates.poses[:, -1, XY] - plan.poses[-1, XY], axis=-1)  # (K,) [m]
    rewards = np.clip(0.95 - 0.12 * spread + rng.normal(0.0, 0.03, num_candidates), 0.0, 1.0)  # (K,)
    sub_scores = np.ones(len(SubScore))
    sub_scores[SubScore.EP] = float(rng.uniform(0.6, 1.0))
    return StepView(
        route_id=route.route_id,
        step=step,
        time=0.5 * step,
        frame=frame,
        map_api=scene.map_api,
        route=route,
        plan=plan,
        candidates=candidates,
        candidate_rewards=rewards,
        learned_reward=float(np.clip(0.95 + rng.normal(0.0, 0.02), 0.0, 1.0)),
        sub_scores=sub_scores,
        meta_action=frame.meta_action,
        route_completion=float(rng.uniform(0.0, 100.0)),
        cameras=frame.cameras,
    )
