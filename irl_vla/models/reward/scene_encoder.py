"""The reward model's own lightweight scene encoder: meta, BEV, map and object tokens, computed once per scene.

- **BEV**: the rasters it reads (LiDAR histogram, and the map/object raster ``bev_semantic_map`` one-hot) are
  stacked as channels and run through a small CNN (a patchifying stride-4 stem, then stride-2 stages, group norm,
  ReLU). The raster itself and the stem's feature map are kept for sampling along candidates; the last stage is
  pooled to ``bev_grid`` tokens plus an embedding of each cell's centre.
- **Meta**: one token of the normalised ego-status history and the driving command.
- **Map**: ``map_grid`` queries placed at their cells' centres, attending to the BEV tokens.
- **Objects**: the annotated boxes embedded one token each (``inputs.use_agents``, privileged) or learned
  queries over the BEV tokens; a learned "nothing" token is always present, so a scene without objects attends.

With the ``light`` decoder there is no CNN and no BEV, map or object tokens: the scene is one summary vector, the
meta token plus a linear map of the input maps averaged over ``bev_grid`` cells (the LiDAR channels' means, each
map class's share of the cell) plus the element-wise maximum of the object embeddings and the "nothing" token,
returned as ``meta``; ``bev``, ``map``, ``objects`` and ``stem`` are empty. The input maps are kept as cell
tables for the candidates to look up (``raster``: the LiDAR channels ``(B, H W, C)``; ``classes``: the map class
of each cell ``(B, H W)``); no one-hot raster is built.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irl_vla.data.enums import DrivingCommand
from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.data.features.targets import AgentStateIndex
from irl_vla.models.reward.clearance import ObjectTracks
from irl_vla.models.reward.config import RewardDecoder, RewardModelConfig
from irl_vla.models.vla.layers import QueryDecoder, grid_cell_centres, mlp


class RewardFeature:
    """Names of the tensors the reward model reads (shapes without the batch axis)."""

    EGO_STATUS = "ego_status"  # (T, D) EgoStatusIndex columns per history frame, oldest first
    DRIVING_COMMAND = "driving_command"  # (D,) one-hot DrivingCommand
    LIDAR_BEV = "lidar_bev"  # (T, C, H, W) in [0, 1]  (inputs.use_lidar)
    BEV_SEMANTIC_MAP = "bev_semantic_map"  # (H, W) BevSemanticClass  (inputs.use_map, privileged)
    AGENT_STATES = "agent_states"  # (A, D) AgentStateIndex  (inputs.use_agents, privileged)
    AGENT_MASK = "agent_mask"  # (A,) bool
    AGENT_FUTURE_STATES = "agent_future_states"  # (A, T, 3) AgentFutureIndex  (inputs.use_agent_futures, privileged)
    AGENT_FUTURE_MASK = "agent_future_mask"  # (A, T) bool
    RED_LIGHT_MAP = "red_light_map"  # (1 + T, H, W) bool, now then per future frame  (inputs.use_red_lights)


class SceneTokens(NamedTuple):
    """A scene's tokens (reused by every candidate).

    Attributes:
        meta: ``(B, 1, D)`` ego status and driving command (``light`` decoder: the whole scene's summary).
        bev: ``(B, L, D)`` BEV tokens.
        map: ``(B, M, D)`` map tokens.
        objects: ``(B, O, D)`` object tokens (the first is the learned "nothing" token).
        object_mask: ``(B, O)`` true on real tokens.
        raster: ``(B, C, H, W)`` the input rasters (sampled along candidates); ``light``: the LiDAR cell table
            ``(B, H W, C)``.
        stem: ``(B, C, H / 4, W / 4)`` the BEV CNN's stem feature map (sampled along candidates).
        agents: ``(B, A, D)`` the annotated boxes by ``AgentStateIndex`` (``inputs.use_agents``; else ``None``).
        agent_mask: ``(B, A)`` true on real boxes (``None`` with ``agents``).
        agent_futures: ``(B, A, T, 3)`` their logged poses (``inputs.use_agent_futures``; else ``None``).
        agent_future_mask: ``(B, A, T)`` true where the log has them.
        red_lights: ``(B, T, H, W)`` the route's red connectors at each candidate pose's time, as read (bool)
            (``inputs.use_red_lights``; else ``None``).
        classes: ``light``: the map class of each cell ``(B, H W)`` (``inputs.use_map``; else ``None``).
        tracks: the boxes at the candidate poses' times (``agent_clearance``; set by the model's ``encode_scene``).
    """

    meta: Tensor
    bev: Tensor
    map: Tensor
    objects: Tensor
    object_mask: Tensor
    raster: Tensor
    stem: Tensor
    agents: Tensor | None = None
    agent_mask: Tensor | None = None
    agent_futures: Tensor | None = None
    agent_future_mask: Tensor | None = None
    red_lights: Tensor | None = None
    classes: Tensor | None = None
    tracks: ObjectTracks | None = None


#: Stride of the BEV CNN's patchifying stem (cells per stem feature along each axis).
STEM_STRIDE = 4


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.ReLU())


def _stem(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, STEM_STRIDE, stride=STEM_STRIDE), nn.GroupNorm(1, c_out), nn.ReLU())


class RewardSceneEncoder(nn.Module):
    """Features of one batch of scenes -> ``SceneTokens``.

    Args:
        cfg: the model config.
    """

    def __init__(self, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        inp = cfg.inputs
        d = cfg.d_model
        self.map_classes = len(BevSemanticClass)
        channels = (inp.lidar_frames * inp.lidar_channels if inp.use_lidar else 0) + (
            self.map_classes if inp.use_map else 0
        )
        widths = cfg.bev_channels
        self.light = cfg.decoder == RewardDecoder.LIGHT  # no BEV, map or object tokens
        self.raster_channels = channels
        self.register_buffer("one_hot", torch.eye(self.map_classes), persistent=False)
        self.register_buffer("grid_cell", torch.zeros(0, 0, dtype=torch.long), persistent=False)  # _class_shares
        if self.light:
            self.raster_proj = nn.Linear(channels * cfg.bev_grid[0] * cfg.bev_grid[1], d)
        else:
            self.stem = _stem(channels, widths[0])
            self.stages = nn.Sequential(*[_conv(a, b) for a, b in itertools.pairwise(widths)])
            self.bev_proj = nn.Linear(widths[-1], d)
            self.register_buffer("bev_centres", self._centres(cfg.bev_grid), persistent=False)
            self.register_buffer("map_centres", self._centres(cfg.map_grid), persistent=False)
            self.cell_embed = mlp(2, d, d)
        ego_in = inp.history_frames * len(EgoStatusIndex) + len(DrivingCommand)
        self.meta_embed = mlp(ego_in, d, d)
        if not self.light:
            self.map_decoder = QueryDecoder(
                cfg.map_grid[0] * cfg.map_grid[1], d, cfg.num_heads, cfg.ffn_mult, cfg.scene_layers, self_attention=True
            )
        self.nothing = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        if inp.use_agents:
            self.object_embed = mlp(len(AgentStateIndex) + 1, d, d)  # heading as cos, sin
        elif cfg.num_object_queries and not self.light:
            self.object_decoder = QueryDecoder(
                cfg.num_object_queries, d, cfg.num_heads, cfg.ffn_mult, cfg.scene_layers, self_attention=True
            )

    def _centres(self, grid: list[int]) -> Tensor:
        """Cell centres of a grid over the BEV range, scaled to [-1, 1] ``(rows * cols, 2)``."""
        inp = self.cfg.inputs
        centres = grid_cell_centres(inp.bev_range, grid[0], grid[1])
        x0, x1, y0, y1 = inp.bev_range
        mid = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2])
        half = torch.tensor([(x1 - x0) / 2, (y1 - y0) / 2])
        return (centres - mid) / half

    def raster(self, features: dict[str, Tensor]) -> Tensor:
        """The stacked BEV rasters ``(B, C, H, W)``, channels-last in memory."""
        inp = self.cfg.inputs
        parts = []
        if inp.use_lidar:
            lidar = features[RewardFeature.LIDAR_BEV].float()  # (B, T, C, H, W)
            parts.append(lidar.flatten(1, 2).permute(0, 2, 3, 1))  # (B, H, W, T C)
        if inp.use_map:
            sem = features[RewardFeature.BEV_SEMANTIC_MAP].long()  # (B, H, W)
            parts.append(self.one_hot[sem])  # (B, H, W, C)
        return torch.cat(parts, dim=-1).permute(0, 3, 1, 2)

    def forward(self, features: dict[str, Tensor], ego: Tensor) -> SceneTokens:
        """Encode scenes.

        Args:
            features: the model's input tensors (``RewardFeature``), batch-first.
            ego: the normalised ego-status history and command ``(B, T D + 4)``.
        """
        scene = self._tokens(features, ego)
        if self.cfg.inputs.use_red_lights:  # the frames at the candidate poses' times (channel 0 is now)
            scene = scene._replace(red_lights=features[RewardFeature.RED_LIGHT_MAP][:, 1:])  # (B, T, H, W) bool
        return scene

    def _tokens(self, features: dict[str, Tensor], ego: Tensor) -> SceneTokens:
        if self.light:
            return self._summary(features, ego)
        raster = self.raster(features).contiguous()  # (B, C_in, H, W)
        stem = self.stem(raster)  # (B, C0, H/4, W/4)
        deep = self.stages(stem)  # (B, C, h, w)
        rows, cols = self.cfg.bev_grid
        pooled = F.adaptive_avg_pool2d(deep, (rows, cols)).flatten(2).transpose(1, 2)  # (B, L, C)
        bev = self.bev_proj(pooled) + self.cell_embed(self.bev_centres)  # (B, L, D)
        meta = self.meta_embed(ego)[:, None]  # (B, 1, D)
        map_tokens = self.map_decoder(bev, self.cell_embed(self.map_centres))  # (B, M, D)
        b = bev.shape[0]
        nothing = self.nothing.expand(b, -1, -1)
        ones = torch.ones(b, 1, dtype=torch.bool, device=bev.device)
        if self.cfg.inputs.use_agents:
            agents = features[RewardFeature.AGENT_STATES].float()  # (B, A, 7)
            agent_mask = features[RewardFeature.AGENT_MASK].bool()
            objects = self.object_embed(self._boxes(agents))  # (B, A, D)
            objects, mask = torch.cat([nothing, objects], 1), torch.cat([ones, agent_mask], 1)
            futures = future_mask = None
            if self.cfg.inputs.use_agent_futures:
                futures = features[RewardFeature.AGENT_FUTURE_STATES].float()
                future_mask = features[RewardFeature.AGENT_FUTURE_MASK].bool()
            return SceneTokens(
                meta, bev, map_tokens, objects, mask, raster, stem, agents, agent_mask, futures, future_mask
            )
        elif self.cfg.num_object_queries:
            objects = torch.cat([nothing, self.object_decoder(bev)], 1)
            mask = torch.ones(objects.shape[:2], dtype=torch.bool, device=bev.device)
        else:
            objects, mask = nothing, ones
        return SceneTokens(meta, bev, map_tokens, objects, mask, raster, stem)

    def _summary(self, features: dict[str, Tensor], ego: Tensor) -> SceneTokens:
        """The ``light`` decoder's scene: one summary vector as ``meta``, no BEV, map or object tokens."""
        inp = self.cfg.inputs
        rows, cols = self.cfg.bev_grid
        hh, ww = inp.bev_height, inp.bev_width
        if hh % rows or ww % cols:
            raise ValueError(f"reward model: bev_grid {self.cfg.bev_grid} does not divide the raster ({hh}, {ww})")
        b = ego.shape[0]
        pooled, lidar, classes = [], ego.new_zeros(b, hh * ww, 0), None
        if inp.use_lidar:
            lidar = features[RewardFeature.LIDAR_BEV].float().flatten(1, 2).permute(0, 2, 3, 1)  # (B, H, W, C)
            pooled.append(lidar.reshape(b, rows, hh // rows, cols, ww // cols, -1).mean(dim=(2, 4)))  # grid means
            lidar = lidar.reshape(b, hh * ww, -1)  # (B, H W, C)
        if inp.use_map:
            classes = features[RewardFeature.BEV_SEMANTIC_MAP].long()  # (B, H, W)
            pooled.append(self._class_shares(classes, rows, cols))  # (B, rows, cols, C)
            classes = classes.flatten(1)  # (B, H W)
        summary = self.meta_embed(ego) + self.raster_proj(torch.cat(pooled, dim=-1).flatten(1))  # (B, D)
        d = summary.shape[1]
        objects = self.nothing.expand(b, -1, -1)  # (B, 1, D)
        agents = agent_mask = futures = future_mask = None
        if self.cfg.inputs.use_agents:
            agents = features[RewardFeature.AGENT_STATES].float()  # (B, A, 7)
            agent_mask = features[RewardFeature.AGENT_MASK].bool()
            embedded = self.object_embed(self._boxes(agents)).masked_fill(~agent_mask[..., None], float("-inf"))
            objects = torch.cat([objects, embedded], dim=1)  # (B, 1 + A, D)
            if self.cfg.inputs.use_agent_futures:
                futures = features[RewardFeature.AGENT_FUTURE_STATES].float()
                future_mask = features[RewardFeature.AGENT_FUTURE_MASK].bool()
        summary = summary + objects.amax(dim=1)
        empty = summary.new_zeros(b, 0, d)
        no_mask = torch.zeros(b, 0, dtype=torch.bool, device=summary.device)
        no_stem = summary.new_zeros(b, 0, 1, 1)
        tokens = (summary[:, None], empty, empty, empty, no_mask, lidar, no_stem)
        return SceneTokens(*tokens, agents, agent_mask, futures, future_mask, classes=classes)

    def _class_shares(self, classes: Tensor, rows: int, cols: int) -> Tensor:
        """Each map class's share of each of ``rows`` x ``cols`` grid cells ``(B, rows, cols, C)``: one bincount."""
        b, hh, ww = classes.shape
        if self.grid_cell.shape != (hh, ww):
            row = torch.arange(hh, device=classes.device) // (hh // rows)
            col = torch.arange(ww, device=classes.device) // (ww // cols)
            self.grid_cell = (row[:, None] * cols + col[None, :]) * self.map_classes  # (H, W): its grid cell's rows
        scene = rows * cols * self.map_classes * torch.arange(b, device=classes.device)[:, None, None]  # (B, 1, 1)
        keys = (self.grid_cell + scene + classes).flatten()  # (B H W,) scene, grid cell and class
        counts = torch.bincount(keys, minlength=b * rows * cols * self.map_classes)
        return counts.reshape(b, rows, cols, self.map_classes).float() / ((hh // rows) * (ww // cols))

    def _boxes(self, states: Tensor) -> Tensor:
        """Scaled box features ``(B, A, 8)`` of ``agent_states`` ``(B, A, 7)``."""
        inp = self.cfg.inputs
        pos = states[..., AgentStateIndex.X : AgentStateIndex.Y + 1] / inp.position_scale
        heading = states[..., AgentStateIndex.HEADING]
        size = states[..., AgentStateIndex.LENGTH : AgentStateIndex.WIDTH + 1] / inp.size_scale
        vel = states[..., AgentStateIndex.VELOCITY_X : AgentStateIndex.VELOCITY_Y + 1] / inp.speed_scale
        return torch.cat([pos, torch.cos(heading)[..., None], torch.sin(heading)[..., None], size, vel], dim=-1)
