"""The route head: the route lane's centreline ahead of the ego, read from the BEV and visual tokens.

One query per point ahead (arc lengths ``spacing``, ``2 * spacing``, ... [m]), plus the ego embedding (which
carries the driving command: at an intersection only the command says which way the route turns), attends to
the BEV and visual tokens; each regresses its point's pose in the ego frame around the straight-ahead prior
``(d, 0, 0)``, its x and y scaled by the distance ``d`` (a bend of a given curvature moves a far point more).
For the planner the head gives its query tokens ``(B, P, D)`` (a context source) and an embedding ``(B, D)`` of
its predicted poses (added to the ego condition): the bend of the road as the network sees it, never the map.
The embedded poses are detached: the planning loss trains the tokens and the embedding, not the poses, which
stay what the route term makes them (a choice, not a measured fix: the straight-ahead prior's L1 on
``synth_navtrain`` is 1.41, what the route term starts at; more than half of it comes from the 9 % of scenes
under a left or right command, whose turn only the command tells).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from irl_vla.data.enums import SE2Index
from irl_vla.models.vla.config import RouteConfig
from irl_vla.models.vla.layers import QueryDecoder, mlp

#: x and y of a point move by at most about this fraction of its distance per unit of the raw output.
OFFSET_SCALE = 0.25


class RouteHead(nn.Module):
    """BEV and visual tokens -> route tokens ``(B, P, D)``, poses ``(B, P, 3)`` and a condition ``(B, D)``."""

    def __init__(self, cfg: RouteConfig, d_model: int, num_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.decoder = QueryDecoder(cfg.num_points, d_model, num_heads, ffn_mult, cfg.layers, self_attention=True)
        distances = cfg.spacing * torch.arange(1, cfg.num_points + 1, dtype=torch.float32)  # (P,) [m]
        self.register_buffer("distances", distances, persistent=False)
        self.ego_proj = nn.Linear(d_model, d_model)
        self.pose_head = mlp(d_model, d_model, len(SE2Index))
        self.condition = mlp(cfg.num_points * len(SE2Index), d_model, d_model) if cfg.to_planner else None

    def forward(self, bev: Tensor, visual: Tensor, ego: Tensor) -> dict[str, Tensor]:
        """Decode the route ahead.

        Args:
            bev: BEV tokens ``(B, G, D)``.
            visual: visual tokens ``(B, V, D)``.
            ego: the ego embedding ``(B, D)`` (ego status and driving command).

        Returns:
            ``route_tokens`` ``(B, P, D)``, ``route_centerline`` ``(B, P, 3)`` [m, m, rad] and, when the planner
            reads it, ``route_condition`` ``(B, D)``.
        """
        tokens = self.decoder(torch.cat([bev, visual], dim=1), self.ego_proj(ego).unsqueeze(1))  # (B, P, D)
        raw = self.pose_head(tokens).float()  # (B, P, 3)
        scale = OFFSET_SCALE * self.distances[:, None]  # (P, 1)
        xy = raw[..., : SE2Index.HEADING] * scale
        xy = xy + torch.stack([self.distances, torch.zeros_like(self.distances)], dim=-1)
        poses = torch.cat([xy, raw[..., SE2Index.HEADING :]], dim=-1)  # (B, P, 3)
        out = {"route_tokens": tokens, "route_centerline": poses}
        if self.condition is not None:  # the planner reads the poses but does not move them (only the L1 term does)
            relative = torch.cat([xy / self.distances[:, None], poses[..., SE2Index.HEADING :]], dim=-1).detach()
            out["route_condition"] = self.condition(relative.flatten(1).to(tokens.dtype))  # (B, D)
        return out
