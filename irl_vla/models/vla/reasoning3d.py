"""3D reasoning: object tokens (agent box queries) and map tokens from the BEV tokens, with auxiliary heads.

Object tokens are DETR-style queries decoding the BEV tokens; each predicts one box (``AgentStateIndex``
columns) and a class (``AgentClass`` positions plus a last "no object" class). Map tokens are a coarse grid of
queries over the BEV range; the BEV semantic map (``BevSemanticClass`` per cell: drivable area, crosswalks, lane
centrelines, static objects, vehicles, bicycles, pedestrians) is decoded from them by an upsampling CNN, so
that what the planner reads as map tokens is what the map supervision shapes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irl_vla.data.features.bev_semantic import BevSemanticClass
from irl_vla.data.features.targets import AGENT_CLASSES, AgentStateIndex
from irl_vla.models.vla.config import InputSpec, Reasoning3DConfig
from irl_vla.models.vla.layers import QueryDecoder, direction_features, grid_cell_centres, mlp
from irl_vla.models.vla.vision import conv_stage

#: Object-class logits: the annotation classes, then "no object" (the last index).
NUM_OBJECT_CLASSES = len(AGENT_CLASSES) + 1
NO_OBJECT = len(AGENT_CLASSES)


class Reasoning3D(nn.Module):
    """BEV tokens -> object tokens ``(B, Q, D)``, map tokens ``(B, M, D)`` and the auxiliary predictions."""

    def __init__(self, cfg: Reasoning3DConfig, inputs: InputSpec, d_model: int, num_heads: int, ffn_mult: int):
        super().__init__()
        self.cfg, self.inputs = cfg, inputs
        self.objects = QueryDecoder(
            cfg.num_object_queries, d_model, num_heads, ffn_mult, cfg.layers, self_attention=True
        )
        rows, cols = cfg.map_grid
        self.map = QueryDecoder(rows * cols, d_model, num_heads, ffn_mult, cfg.layers, self_attention=False)
        centres = grid_cell_centres(inputs.bev_range, rows, cols)  # (M, 2)
        x_min, x_max, y_min, y_max = inputs.bev_range
        half = torch.tensor([(x_max - x_min) / 2, (y_max - y_min) / 2])
        offset = torch.tensor([(x_max + x_min) / 2, (y_max + y_min) / 2])
        self.register_buffer("box_scale", half, persistent=False)
        self.register_buffer("box_offset", offset, persistent=False)
        self.register_buffer(
            "map_cells", torch.cat([direction_features(centres), (centres - offset) / half], -1), persistent=False
        )
        self.map_position = mlp(5, d_model, d_model)
        self.box_head: nn.Module | None = None
        self.class_head: nn.Module | None = None
        self.semantic: SemanticDecoder | None = None
        if cfg.aux_heads:  # without them (an ablation) the tokens learn from the planning loss alone
            self.box_head = mlp(d_model, d_model, len(AgentStateIndex))
            self.class_head = nn.Linear(d_model, NUM_OBJECT_CLASSES)
            self.semantic = SemanticDecoder(
                d_model, cfg.semantic_channels, (rows, cols), self.semantic_size, len(BevSemanticClass)
            )

    @property
    def semantic_size(self) -> tuple[int, int]:
        """Cells ``(H / stride, W / stride)`` of the predicted BEV semantic map."""
        s = self.cfg.semantic_stride
        return self.inputs.bev_height // s, self.inputs.bev_width // s

    def forward(self, bev_tokens: Tensor, *, with_aux: bool) -> dict[str, Tensor]:
        """Decode object and map tokens (and, ``with_aux``, boxes, classes and the semantic map).

        Args:
            bev_tokens: ``(B, G, D)``.
            with_aux: also run the auxiliary heads (when ``cfg.aux_heads`` built them).

        Returns:
            ``object_tokens`` ``(B, Q, D)``, ``map_tokens`` ``(B, M, D)``; with ``with_aux`` also
            ``agent_states`` ``(B, Q, D_box)`` [m, rad, m/s], ``agent_class_logits`` ``(B, Q, C)`` and
            ``bev_semantic_logits`` ``(B, C, H', W')``.
        """
        objects = self.objects(bev_tokens)  # (B, Q, D)
        map_tokens = self.map(bev_tokens, self.map_position(self.map_cells))  # (B, M, D)
        out = {"object_tokens": objects, "map_tokens": map_tokens}
        if with_aux and self.box_head is not None and self.class_head is not None and self.semantic is not None:
            out["agent_states"] = self.decode_boxes(self.box_head(objects))
            out["agent_class_logits"] = self.class_head(objects)
            out["bev_semantic_logits"] = self.semantic(map_tokens)
        return out

    def decode_boxes(self, raw: Tensor) -> Tensor:
        """Box states ``(..., D_box)`` from raw head outputs: centres scaled to the BEV range, sizes positive."""
        xy = [AgentStateIndex.X, AgentStateIndex.Y]
        size = [AgentStateIndex.LENGTH, AgentStateIndex.WIDTH]
        raw = raw.float()  # box states in fp32 (under bf16 autocast the head's output is bf16)
        out = raw.clone()
        out[..., xy] = raw[..., xy] * self.box_scale + self.box_offset
        out[..., size] = F.softplus(raw[..., size])
        return out


class SemanticDecoder(nn.Module):
    """Map tokens on a ``grid`` -> semantic logits ``(B, C, H', W')`` by x2 upsampling stages."""

    def __init__(self, d_model: int, channels: int, grid: tuple[int, int], size: tuple[int, int], classes: int):
        super().__init__()
        self.grid, self.size = grid, size
        stages = max(0, math.ceil(math.log2(max(size[0] / grid[0], size[1] / grid[1]))))
        layers: list[nn.Module] = [conv_stage(d_model, channels, stride=1)]
        for _ in range(stages):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                conv_stage(channels, channels, stride=1),
            ]
        self.stages = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(channels, classes, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        """Decode ``tokens`` ``(B, M, D)``."""
        b, _, d = tokens.shape
        x = tokens.transpose(1, 2).reshape(b, d, *self.grid)  # (B, D, rows, cols)
        x = self.stages(x)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.classifier(x)
