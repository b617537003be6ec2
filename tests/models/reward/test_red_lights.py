"""The reward model's red-light input: the route's red connectors per frame of the log, sampled per pose at its time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.red_lights import RedLightTargetBuilder
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.models.reward.config import load_reward_config
from irl_vla.models.reward.inputs import RewardInputBuilders, reward_builder_params
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import make_cache, make_scene, straight_plan

GRID = BevGrid(x_min=-32.0, x_max=32.0, y_min=-32.0, y_max=32.0, resolution=0.5)
RED = ("c_w_e_0", "c_w_e_1")  # the straight-on connectors, from 15 m ahead of the ego at x = -25 m


def test_the_red_connectors_are_painted_at_each_frame_where_a_plan_fails_tlc() -> None:
    builder = RedLightTargetBuilder(grid=GRID)
    red_scene = make_scene(ego_x=-25.0, red=RED)
    painted = builder.compute(red_scene)["red_light_map"]  # (1 + T, H, W)
    assert painted.shape == (1 + builder.num_poses, GRID.height, GRID.width) and painted.dtype == torch.bool
    assert bool(painted.any(dim=(1, 2)).all())  # red in every frame
    assert not bool(builder.compute(make_scene(ego_x=-25.0))["red_light_map"].any())  # green: nothing
    # the plan the scorer fails on TLC drives over painted cells
    plan = straight_plan(10.0)
    fast = FastScorer()
    scored = fast.score(make_cache(ego_x=-25.0, red=RED), plan[None], DEFAULT_SAMPLING)
    assert scored.sub_scores[0, SubScore.TLC] == 0.0
    rows = np.clip(((plan[:, 0] - GRID.x_min) / GRID.resolution).astype(int), 0, GRID.height - 1)
    cols = np.clip(((plan[:, 1] - GRID.y_min) / GRID.resolution).astype(int), 0, GRID.width - 1)
    assert bool(painted[1:, rows, cols].any())
    assert not bool(painted[:, : int((14.0 - GRID.x_min) / GRID.resolution)].any())  # nothing within 14 m ahead


def test_a_light_that_turns_red_later_is_painted_from_that_frame_on() -> None:
    scene = make_scene(ego_x=-25.0, red=RED)
    turns = scene.current_index + 3  # red from 1.5 s on
    for frame in scene.frames[:turns]:
        frame.traffic_lights = [(c, False) for c, _ in frame.traffic_lights]
    painted = RedLightTargetBuilder(grid=GRID).compute(scene)["red_light_map"].any(dim=(1, 2))
    assert painted.tolist() == [t >= 3 for t in range(9)]


@pytest.mark.parametrize("decoder", ["attention", "light"])
def test_each_pose_samples_the_frame_of_its_time_and_the_model_reads_it(decoder: str) -> None:
    maps = torch.arange(1, 9, dtype=torch.float32)[None, :, None, None].expand(2, 8, 16, 16)  # frame t is t + 1
    grid = torch.zeros(2, 3, 8 * 5, 2)  # every point at the centre: pose t must read t + 1
    sampled = RewardWorldModel._sample_per_pose(maps, grid)  # (B, K, T P)
    expected = torch.arange(1, 9, dtype=torch.float32).repeat_interleave(5)
    assert sampled.shape == (2, 3, 40) and torch.equal(sampled, expected.expand(2, 3, -1))
    cells = torch.full((2, 3, 8, 5), 16 * 8 + 8)  # the centre cell: pose t must read t + 1 there too
    looked_up = RewardWorldModel._look_up_per_pose(maps, cells, torch.ones(2, 3, 8, 5, dtype=torch.bool))
    assert torch.equal(looked_up, sampled)

    light = {"decoder": "light", "sample_stem": False} if decoder == "light" else {}
    cfg = load_reward_config("tiny", {"inputs": {"use_red_lights": True}, **light})
    assert cfg.inputs.privileged and cfg.inputs.reads_future
    features, privileged = reward_builder_params(cfg)
    assert privileged["red_lights"]["num_poses"] == 8
    builders = RewardInputBuilders.from_params(features, privileged)
    assert "red_lights" in {b.name for b in builders.privileged}
    torch.manual_seed(0)
    m = RewardWorldModel(cfg)
    assert m.reads_future and "red_light_map" in m.input_keys()
    b = 1
    f = {
        "ego_status": torch.randn(b, 4, m.ego_mean.shape[1]),
        "driving_command": torch.eye(4)[:b],
        "lidar_bev": torch.rand(b, 1, 2, 128, 128),
        "bev_semantic_map": torch.randint(0, 8, (b, 128, 128)),
        "agent_states": torch.randn(b, 30, 7),
        "agent_mask": torch.ones(b, 30, dtype=torch.bool),
        "red_light_map": torch.zeros(b, 9, 128, 128, dtype=torch.bool),
    }
    traj = torch.from_numpy(np.stack([straight_plan(v) for v in (2.0, 5.0, 8.0, 11.0)])).float()[None]
    m.set_normalization(compute_reward_normalization(f["ego_status"], traj))
    m.eval()
    with torch.no_grad():
        green = m.predict_sub_scores(f, traj)["reward"]
        f["red_light_map"][:, 1:, 100:110] = True  # red 18-23 m ahead at every future frame
        red = m.predict_sub_scores(f, traj)["reward"]
        f["red_light_map"][:, 0] = True  # the current frame's channel is not read
        same = m.predict_sub_scores(f, traj)["reward"]
    assert not torch.allclose(green, red) and torch.equal(red, same)


def test_without_a_map_the_builder_names_the_scene() -> None:
    scene = make_scene()
    scene.map_api = None
    with pytest.raises(ValueError, match=scene.token):
        RedLightTargetBuilder(grid=GRID).compute(scene)
