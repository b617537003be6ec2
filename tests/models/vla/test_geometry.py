"""Frames of the scene tokens: BEV grids follow the feature builders' grid, rays follow the camera rig."""

import numpy as np
import torch

from irl_vla.data.features.bev import BevGrid
from irl_vla.models.vla.layers import direction_features, grid_cell_centres
from irl_vla.models.vla.synthetic import CAMERA_TO_EGO_ROTATION
from irl_vla.models.vla.vision import VisionEncoder
from tests.models.vla.helpers import tiny_config


def test_token_grid_cells_are_the_bev_grid_cells():
    grid = BevGrid(x_min=-32, x_max=32, y_min=-16, y_max=48, resolution=16)  # 4 x 4 cells, off-centre in y
    centres = grid_cell_centres([grid.x_min, grid.x_max, grid.y_min, grid.y_max], grid.height, grid.width)
    i, j, inside = grid.cell_indices(centres.double().numpy())
    assert inside.all()
    np.testing.assert_array_equal(i * grid.width + j, np.arange(grid.height * grid.width))  # row-major, rows along x


def test_visual_tokens_look_where_their_pixels_look():
    cfg = tiny_config(vision={"token_grid": [1, 3]})
    s = cfg.inputs
    vision = VisionEncoder(cfg.vision, s, cfg.d_model, cfg.num_heads, cfg.ffn_mult)
    focal = 32.0
    k = torch.tensor([[focal, 0, s.image_width / 2], [0, focal, s.image_height / 2], [0, 0, 1]])
    to_ego = torch.eye(4)
    to_ego[:3, :3] = torch.tensor(CAMERA_TO_EGO_ROTATION)
    yaw = torch.tensor(np.pi / 2)  # a second camera turned to the left
    turn = torch.tensor([[torch.cos(yaw), -torch.sin(yaw), 0], [torch.sin(yaw), torch.cos(yaw), 0], [0, 0, 1]])
    left = to_ego.clone()
    left[:3, :3] = turn @ to_ego[:3, :3]
    dirs = vision._token_directions(
        k[None, None].repeat(1, 2, 1, 1), torch.stack([to_ego, left])[None], s.image_height, s.image_width
    )  # (1, N, 3 tokens, 3)
    front = dirs[0, 0]
    torch.testing.assert_close(front[1], torch.tensor([1.0, 0.0, 0.0]))  # centre pixel: straight ahead, level
    assert front[0, 1] > 0 > front[2, 1]  # left image column looks left (y left), right column right
    torch.testing.assert_close(dirs[0, 1, 1], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)  # left camera
    assert torch.allclose(direction_features(torch.tensor([[0.0, 2.0]]))[0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
