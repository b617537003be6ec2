"""The route head: the route lane's centreline ahead of the ego, read from the BEV and visual tokens.

One query per point ahead (arc lengths ``spacing``, ``2 * spacing``, ... [m]), plus the ego embedding (which
carries the driving command: at an intersection only the command says which way the route turns; with
``reads_ego_status`` false an embedding of the command alone), attends to
the BEV and visual tokens; each regresses its point's pose in the ego frame around the straight-ahead prior
``(d, 0, 0)``, its x and y scaled by the distance ``d`` (a bend of a given curvature moves a far point more).
For the planner the head gives its query tokens ``(B, P, D)`` (a context source) and an embedding ``(B, D)`` of
its predicted poses (added to the ego condition): the bend of the road as the network sees it, never the map.
With ``lidar_cells`` the queries also read the LiDAR CNN stem's map, one token per 2 m cell (a BEV token's cell
is 4 m: a lane bending 1.5 m off the straight line 30 m ahead is a third of one), each the projected stem feature
plus the embedding of its cell's position; ``cells_range`` keeps the cells of a part of the grid (the corridor
ahead), which costs less. With ``camera_band`` they also read the images' band tokens below the horizon, at the
CNN's last-but-one stride (``vision.VisionEncoder``).

The embedded poses are detached: the planning loss trains the tokens and the embedding, not the poses, which
stay what the route term makes them (a choice, not a measured fix: the straight-ahead prior's L1 on
``synth_navtrain`` is 1.41, what the route term starts at; more than half of it comes from the 9 % of scenes
under a left or right command, whose turn only the command tells).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.models.vla.config import RouteConfig
from irl_vla.models.vla.layers import QueryDecoder, direction_features, grid_cell_centres, mlp

#: x and y of a point move by at most about this fraction of its distance per unit of the raw output.
OFFSET_SCALE = 0.25


class RouteHead(nn.Module):
    """BEV and visual tokens -> route tokens ``(B, P, D)``, poses ``(B, P, 3)`` and a condition ``(B, D)``.

    ``lidar_cells`` (with ``cfg.lidar_cells``): the channels of the LiDAR stem's map, the BEV range
    ``[x_min, x_max, y_min, y_max]`` [m] and the map's rows and columns.
    """

    def __init__(
        self,
        cfg: RouteConfig,
        d_model: int,
        num_heads: int,
        ffn_mult: int,
        lidar_cells: tuple[int, list[float], int, int] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.cell_proj: nn.Module | None = None
        if cfg.lidar_cells:
            if lidar_cells is None:
                raise ValueError("RouteHead: route.lidar_cells needs the LiDAR stem's channels and grid")
            channels, bev_range, rows, cols = lidar_cells
            centres = grid_cell_centres(bev_range, rows, cols)  # (R C, 2) [m]
            kept = torch.arange(len(centres))
            if cfg.cells_range is not None:
                x_min, x_max, y_min, y_max = cfg.cells_range
                x, y = centres.unbind(-1)
                kept = torch.nonzero((x > x_min) & (x < x_max) & (y > y_min) & (y < y_max)).squeeze(-1)
                if len(kept) == 0:
                    raise ValueError(f"route.cells_range {cfg.cells_range}: no cell of the BEV grid {bev_range}")
            centres = centres[kept]  # (N, 2)
            self.register_buffer("cell_index", kept, persistent=False)  # (N,) into the row-major grid
            half = torch.tensor([(bev_range[1] - bev_range[0]) / 2, (bev_range[3] - bev_range[2]) / 2])
            middle = torch.tensor([(bev_range[1] + bev_range[0]) / 2, (bev_range[3] + bev_range[2]) / 2])
            cell = torch.cat([direction_features(centres), (centres - middle) / half], dim=-1)  # (N, 5)
            self.register_buffer("cell_features", cell, persistent=False)
            self.cell_proj = nn.Linear(channels, d_model)
            self.cell_position = mlp(cell.shape[-1], d_model, d_model)
            self.cell_norm = nn.LayerNorm(d_model)
        self.decoder = QueryDecoder(cfg.num_points, d_model, num_heads, ffn_mult, cfg.layers, self_attention=True)
        distances = cfg.spacing * torch.arange(1, cfg.num_points + 1, dtype=torch.float32)  # (P,) [m]
        self.register_buffer("distances", distances, persistent=False)
        # the queries' condition: the ego embedding, or (reads_ego_status false) the driving command alone
        self.ego_proj = nn.Linear(d_model if cfg.reads_ego_status else len(DrivingCommand), d_model)
        self.pose_head = mlp(d_model, d_model, len(SE2Index))
        self.condition = mlp(cfg.num_points * len(SE2Index), d_model, d_model) if cfg.to_planner else None

    def forward(
        self,
        bev: Tensor,
        visual: Tensor,
        ego: Tensor,
        lidar_cells: Tensor | None = None,
        camera_band: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Decode the route ahead.

        Args:
            bev: BEV tokens ``(B, G, D)``.
            visual: visual tokens ``(B, V, D)``.
            ego: the ego embedding ``(B, D)`` (ego status and driving command) or, with
                ``reads_ego_status`` false, the driving command ``(B, 4)`` one-hot.
            lidar_cells: the LiDAR stem's map ``(B, C0, R, C)`` (read with ``cfg.lidar_cells``).
            camera_band: the images' band tokens ``(B, A, D)`` (read with ``cfg.camera_band``).

        Returns:
            ``route_tokens`` ``(B, P, D)``, ``route_centerline`` ``(B, P, 3)`` [m, m, rad] and, when the planner
            reads it, ``route_condition`` ``(B, D)``.
        """
        memory = [bev, visual]
        if self.cell_proj is not None:
            if lidar_cells is None:
                raise ValueError("route.lidar_cells is set but no LiDAR stem map was given")
            cells = lidar_cells.flatten(2).index_select(2, self.cell_index)  # (B, C0, N)
            cells = self.cell_proj(cells.transpose(1, 2))  # (B, N, D)
            memory.append(self.cell_norm(cells + self.cell_position(self.cell_features)))
        if self.cfg.camera_band is not None:
            if camera_band is None:
                raise ValueError("route.camera_band is set but no band tokens were given")
            memory.append(camera_band)
        condition = self.ego_proj(ego.to(self.ego_proj.weight.dtype)).unsqueeze(1)  # (B, 1, D)
        tokens = self.decoder(torch.cat(memory, dim=1), condition)  # (B, P, D)
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
