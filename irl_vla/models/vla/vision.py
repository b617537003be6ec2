"""Vision: camera-rig encoder (our CNN or a ``transformers`` vision tower), LiDAR-BEV branch, BEV adaptor.

Each camera image becomes a feature map pooled to ``token_grid`` visual tokens. A visual token carries, besides
its appearance, the ego-frame viewing direction of its pixel centre (from the camera's intrinsics and
camera-to-ego rotation), and each BEV query the direction of its cell: the BEV adaptor's cross-attention can
so learn where in the images a cell is seen. The LiDAR-BEV histogram, when used, is encoded by a small CNN down
to the BEV token grid and added to the BEV queries.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irl_vla.models.vla.config import InputSpec, VisionConfig
from irl_vla.models.vla.layers import DecoderLayer, direction_features, grid_cell_centres, mlp

#: Stride of the patchifying first layer of our CNNs (a k x k convolution with stride k).
STEM_STRIDE = 4


def group_norm(channels: int) -> nn.GroupNorm:
    """Group norm of 8 groups (one group where the channels do not divide by 8)."""
    return nn.GroupNorm(8 if channels % 8 == 0 else 1, channels)


def conv_stage(c_in: int, c_out: int, stride: int = 2, kernel: int = 3) -> nn.Sequential:
    """Convolution (``stride`` 2 halves the resolution), group norm, ReLU."""
    padding = (kernel - 1) // 2 if stride < kernel else 0
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), group_norm(c_out), nn.ReLU())


class ResidualBlock(nn.Module):
    """``relu(x + norm(conv3x3(x)))``: one more 3x3 layer at the same resolution and width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm = group_norm(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, C, H, W)`` -> same shape."""
        return F.relu(x + self.norm(self.conv(x)))


class ConvTower(nn.Module):
    """Our small CNN: a patchifying stem (stride ``STEM_STRIDE``), then 3x3 stages halving the resolution.

    ``(B, C, H, W)`` -> ``(B, C', H / (4 * 2^(n-1)), W / (4 * 2^(n-1)))`` for n channel entries. With ``blocks``,
    every stage (the stem included) ends in that many ``ResidualBlock`` s: a deeper tower whose last map sees
    further than the plain one's 28 pixels (three stages), at the same strides and token count.
    """

    def __init__(self, in_channels: int, channels: list[int], blocks: int = 0) -> None:
        super().__init__()
        stages = [conv_stage(in_channels, channels[0], stride=STEM_STRIDE, kernel=STEM_STRIDE)]
        stages += [conv_stage(c_in, c_out) for c_in, c_out in itertools.pairwise(channels)]
        for stage, width in zip(stages, channels, strict=True):
            for _ in range(blocks):
                stage.append(ResidualBlock(width))
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels[-1]

    def forward(self, x: Tensor) -> Tensor:
        """Feature map of ``x``."""
        return self.stages(x)


class TransformersTower(nn.Module):
    """A ``transformers`` vision model (ViT-like: patch tokens on a grid) as a feature-map tower.

    Built from ``hf_config`` (``model_type`` plus sizes) or loaded from a local ``pretrained_path``; images are
    resized to the tower's ``image_size``.
    """

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if cfg.pretrained_path:
            path = Path(cfg.pretrained_path)
            if not path.is_dir():
                raise FileNotFoundError(f"vision.pretrained_path: {path} is not a directory")
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        else:
            hf = dict(cfg.hf_config or {})
            model_type = hf.pop("model_type", None)
            if not model_type:
                raise ValueError("vision.hf_config: needs a model_type (e.g. vit)")
            self.model = AutoModel.from_config(AutoConfig.for_model(model_type, **hf))
        config = self.model.config
        size = config.image_size
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        patch = config.patch_size
        patch_hw = (patch, patch) if isinstance(patch, int) else tuple(patch)
        self.grid = (self.image_size[0] // patch_hw[0], self.image_size[1] // patch_hw[1])
        self.out_channels = int(config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """Patch-token feature map ``(B, D, gh, gw)`` of images ``(B, 3, H, W)``."""
        x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        hidden = self.model(pixel_values=x).last_hidden_state  # (B, P (+1), D)
        patches = hidden[:, -self.grid[0] * self.grid[1] :]  # drop a class token if there is one
        return patches.transpose(1, 2).reshape(x.shape[0], -1, *self.grid)


class VisionTokens(NamedTuple):
    """What the vision encoder yields."""

    visual: Tensor  #: visual tokens (B, V, D)
    bev: Tensor  #: BEV tokens (B, G, D)
    lidar_cells: Tensor | None  #: the LiDAR CNN stem's feature map (B, C0, H / 4, W / 4), when the LiDAR is read
    camera_band: Tensor | None  #: tokens (B, A, D) of the images' band at the CNN's last-but-one stride, on request


class VisionEncoder(nn.Module):
    """Camera images (and LiDAR BEV) -> visual tokens ``(B, V, D)`` and BEV tokens ``(B, G, D)``.

    V = camera frames x cameras x token rows x token columns; G = BEV rows x BEV columns (row-major, rows
    along x). With the LiDAR branch it also gives its stem's feature map (``VisionTokens.lidar_cells``: one
    cell per ``STEM_STRIDE`` x ``STEM_STRIDE`` pixels), which the route head can read at that finer grid.

    ``camera_band`` (``[top, bottom]``, fractions of the image height; our CNN only): tokens of every image's
    feature map one stage before the last (stride 8 for three stages), in the rows of that band, each with its
    pixel's viewing direction and its camera's embedding (``VisionTokens.camera_band``): the road 15 to 50 m
    ahead lies in a band a few rows below the horizon, which the pooled visual tokens' rows mix into one.
    """

    def __init__(
        self,
        cfg: VisionConfig,
        inputs: InputSpec,
        d_model: int,
        num_heads: int,
        ffn_mult: int,
        camera_band: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.cfg, self.inputs = cfg, inputs
        self.band_rows: tuple[int, int] | None = None
        self.tower: nn.Module
        if cfg.backend == "conv":
            self.tower = ConvTower(3, cfg.conv_channels, cfg.conv_blocks)
        else:
            self.tower = TransformersTower(cfg)
            if cfg.freeze_tower:
                self.tower.requires_grad_(False)
        self.token_proj = nn.Linear(self.tower.out_channels, d_model)
        if camera_band is not None:
            if cfg.backend != "conv" or len(cfg.conv_channels) < 2:
                raise ValueError("camera_band: needs our CNN (vision.backend conv) with at least two stages")
            self.band_stride = STEM_STRIDE * 2 ** (len(cfg.conv_channels) - 2)
            height = inputs.image_height // self.band_stride  # rows of the band's feature map
            top, bottom = int(camera_band[0] * height), math.ceil(camera_band[1] * height)
            if not 0 <= top < bottom <= height:
                raise ValueError(f"camera_band {camera_band}: no rows of the {height}-row feature map")
            self.band_rows = (top, bottom)
            self.band_proj = nn.Linear(cfg.conv_channels[-2], d_model)
            self.band_norm = nn.LayerNorm(d_model)
        self.camera_embedding = nn.Parameter(torch.zeros(inputs.camera_frames, inputs.num_cameras, d_model))
        self.direction_proj = mlp(3, d_model, d_model)
        rows, cols = cfg.bev_grid
        self.register_buffer("bev_centres", grid_cell_centres(inputs.bev_range, rows, cols), persistent=False)
        half_extent = torch.tensor(
            [(inputs.bev_range[1] - inputs.bev_range[0]) / 2, (inputs.bev_range[3] - inputs.bev_range[2]) / 2]
        )
        self.register_buffer("bev_half_extent", half_extent, persistent=False)
        self.bev_queries = nn.Parameter(torch.randn(rows * cols, d_model) * 0.02)
        self.bev_position = mlp(5, d_model, d_model)
        self.bev_layers = nn.ModuleList(DecoderLayer(d_model, num_heads, ffn_mult) for _ in range(cfg.bev_layers))
        self.lidar: nn.Module | None = None
        if cfg.use_lidar:
            self.lidar = LidarEncoder(inputs, cfg.lidar_channels, (rows, cols), d_model)
        self.bev_norm = nn.LayerNorm(d_model)
        self.visual_norm = nn.LayerNorm(d_model)

    def forward(
        self, images: Tensor, intrinsics: Tensor, camera_to_ego: Tensor, lidar_bev: Tensor | None
    ) -> VisionTokens:
        """Encode.

        Args:
            images: ``(B, T, N, C, H, W)`` standardised images.
            intrinsics: ``(B, N, 3, 3)`` [px].
            camera_to_ego: ``(B, N, 4, 4)``.
            lidar_bev: ``(B, T, C, H, W)`` or ``None`` (when the LiDAR branch is off).

        Returns:
            Visual tokens ``(B, V, D)``, BEV tokens ``(B, G, D)`` and the LiDAR stem's map (or ``None``).
        """
        b, t, n, c, h, w = images.shape
        flat = images.reshape(b * t * n, c, h, w)
        band = None
        if self.band_rows is None:
            features = self.tower(flat)  # (B T N, C', h', w')
        else:
            stages = self.tower.stages
            before = stages[:-1](flat)  # (B T N, C'', h'', w'') at the band's stride
            features = stages[-1](before)
            band = self._band_tokens(before, intrinsics, camera_to_ego, b, t, n)  # (B, A, D)
        rows, cols = self.cfg.token_grid
        pooled = F.adaptive_avg_pool2d(features, (rows, cols))  # (B T N, C', r, c)
        tokens = self.token_proj(pooled.flatten(2).transpose(1, 2))  # (B T N, r c, D)
        tokens = tokens.reshape(b, t, n, rows * cols, -1)
        directions = self._token_directions(intrinsics, camera_to_ego, h, w)  # (B, N, r c, 3)
        tokens = tokens + self.direction_proj(directions)[:, None] + self.camera_embedding[None, :, :, None]
        visual = self.visual_norm(tokens.reshape(b, t * n * rows * cols, -1))  # (B, V, D)

        centres = self.bev_centres / self.bev_half_extent  # (G, 2) in [-1, 1]
        cell = torch.cat([direction_features(self.bev_centres), centres], dim=-1)  # (G, 5)
        queries = (self.bev_queries + self.bev_position(cell)).unsqueeze(0).expand(b, -1, -1)  # (B, G, D)
        cells = None
        if self.lidar is not None:
            if lidar_bev is None:
                raise ValueError("vision.use_lidar is set but no lidar_bev was given")
            lidar_tokens, cells = self.lidar(lidar_bev)
            queries = queries + lidar_tokens
        for layer in self.bev_layers:
            queries = layer(queries, visual)
        return VisionTokens(visual, self.bev_norm(queries), cells, band)

    def _band_tokens(self, before: Tensor, intrinsics: Tensor, camera_to_ego: Tensor, b: int, t: int, n: int) -> Tensor:
        """Tokens ``(B, A, D)`` of the band's rows of the feature map ``before`` ``(B T N, C'', h'', w'')``."""
        top, bottom = self.band_rows or (0, 0)
        rows = before[:, :, top:bottom]  # (B T N, C'', r, w'')
        r, cols = rows.shape[-2:]
        stride = self.band_stride
        v = (torch.arange(top, bottom, device=before.device, dtype=torch.float32) + 0.5) * stride
        u = (torch.arange(cols, device=before.device, dtype=torch.float32) + 0.5) * stride
        directions = self._pixel_directions(intrinsics, camera_to_ego, u, v)  # (B, N, r w'', 3)
        tokens = self.band_proj(rows.flatten(2).transpose(1, 2)).reshape(b, t, n, r * cols, -1)
        tokens = tokens + self.direction_proj(directions)[:, None] + self.camera_embedding[None, :, :, None]
        return self.band_norm(tokens.reshape(b, t * n * r * cols, -1))

    def _token_directions(self, intrinsics: Tensor, camera_to_ego: Tensor, height: int, width: int) -> Tensor:
        """Ego-frame viewing directions ``(B, N, r c, 3)`` of the token cells' centre pixels."""
        rows, cols = self.cfg.token_grid
        v = (torch.arange(rows, device=intrinsics.device, dtype=torch.float32) + 0.5) * height / rows
        u = (torch.arange(cols, device=intrinsics.device, dtype=torch.float32) + 0.5) * width / cols
        return self._pixel_directions(intrinsics, camera_to_ego, u, v)

    @staticmethod
    def _pixel_directions(intrinsics: Tensor, camera_to_ego: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Ego-frame viewing directions ``(B, N, len(v) len(u), 3)`` of the pixels at columns u, rows v [px]."""
        gv, gu = torch.meshgrid(v, u, indexing="ij")  # (r, c)
        pixels = torch.stack([gu.reshape(-1), gv.reshape(-1), torch.ones(gu.numel(), device=u.device)], -1)
        rays = torch.einsum("bnij,pj->bnpi", torch.linalg.inv(intrinsics.float()), pixels)  # (B, N, r c, 3) camera
        rays = torch.einsum("bnij,bnpj->bnpi", camera_to_ego[:, :, :3, :3].float(), rays)  # (B, N, r c, 3) ego
        return direction_features(rays[..., :2], rays[..., 2])


class LidarEncoder(nn.Module):
    """LiDAR BEV ``(B, T, C, H, W)`` -> BEV-token features ``(B, G, D)`` (strided CNN, pooled to the grid).

    It also returns its stem's feature map ``(B, C0, H / 4, W / 4)`` (one cell per 4 x 4 pixels).
    """

    def __init__(self, inputs: InputSpec, channels: list[int], grid: tuple[int, int], d_model: int) -> None:
        super().__init__()
        self.grid = grid
        self.tower = ConvTower(inputs.lidar_frames * inputs.lidar_channels, channels)
        self.proj = nn.Linear(self.tower.out_channels, d_model)

    def forward(self, lidar_bev: Tensor) -> tuple[Tensor, Tensor]:
        """Encode the histogram: BEV-token features ``(B, G, D)`` and the stem's map ``(B, C0, h, w)``."""
        b, t, c, h, w = lidar_bev.shape
        stages = self.tower.stages
        stem = stages[0](lidar_bev.reshape(b, t * c, h, w))  # (B, C0, H / 4, W / 4)
        x = F.adaptive_avg_pool2d(stages[1:](stem), self.grid)  # (B, C', rows, cols)
        return self.proj(x.flatten(2).transpose(1, 2)), stem  # (B, G, D)
