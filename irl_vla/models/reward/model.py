"""``RewardWorldModel``: predicts, for candidate trajectories in a scene, the sub-scores the simulator would give.

A trajectory-query decoder, as in IRL-VLA's figure: the scene is encoded once (``encode_scene``: meta, BEV, map
and object tokens); each candidate becomes one query (its normalised poses, plus the input rasters and the BEV
stem's features sampled at points of the vehicle's outline along its poses), which attends in turn to the meta,
BEV, map and object tokens (feed-forward between, ``num_blocks`` times); one head per sub-score follows
(``heads``). Candidates never attend to each other, so a candidate's prediction does not depend on which others
are scored with it.

The ``light`` decoder (``RewardModelConfig.decoder``) is the fast path: the scene is encoded once to one summary
vector, and each candidate's own inputs (the same poses, the input maps read at the cell under each outline point,
the clearance) go through a two-layer ReLU MLP whose first layer adds the scene's projection (computed once per
scene), then one linear layer for every head. The map class under each point enters that first layer as what a
one-hot input would give, a row of weights per (point, class) summed (``embedding_bag``), without the one-hot.
No attention and no interpolation per candidate; the candidates still never see each other.

The reward is the EPDMS of the expected sub-scores through the suite's one aggregation function
(``irl_vla.scoring.aggregation.aggregate``), differentiable.

    model = RewardWorldModel(load_reward_config("tiny"))
    model.set_normalization(compute_reward_normalization(ego_status, candidates))
    scene = model.encode_scene(features)                     # once per scene
    out = model.score_candidates(scene, trajectories)        # (B, K, T, 3) -> sub_scores (B, K, S), reward (B, K)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irl_vla.data.enums import SE2Index
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.data.vehicle import PACIFICA
from irl_vla.labeling.store import CandidateSource
from irl_vla.models.reward.clearance import ClearanceIndex, ObjectTracks, nearest_objects, object_tracks
from irl_vla.models.reward.config import RewardDecoder, RewardModelConfig
from irl_vla.models.reward.heads import FusedSubScoreHeads, HeadKey, SubScoreHeads
from irl_vla.models.reward.light_kernel import light_inputs_kernel
from irl_vla.models.reward.loss import RewardKey, RewardTarget, reward_loss
from irl_vla.models.reward.scene_encoder import RewardFeature, RewardSceneEncoder, SceneTokens
from irl_vla.models.vla.layers import Attention, FeedForward, mlp
from irl_vla.scoring.aggregation import aggregate

#: Normalisation statistics a reward model holds (``set_normalization``), with their shapes.
NORMALIZATION_KEYS = ("ego_mean", "ego_std", "trajectory_mean", "trajectory_std")


def compute_reward_normalization(ego_status: Tensor, candidates: Tensor, floor: float = 1e-3) -> dict[str, Tensor]:
    """Means and standard deviations of the ego history ``(N, T, D)`` and of candidates ``(N, K, T, 3)``.

    Standard deviations are floored at ``floor`` times the largest of their statistic (constant columns).
    """
    ego = ego_status.double()
    traj = candidates.double().flatten(0, 1)  # (N K, T, 3)

    def std(x: Tensor) -> Tensor:
        s = x.std(dim=0, unbiased=False)
        return s.clamp_min(float(s.max()) * floor + 1e-12)

    return {
        "ego_mean": ego.mean(0).float(),
        "ego_std": std(ego).float(),
        "trajectory_mean": traj.mean(0).float(),
        "trajectory_std": std(traj).float(),
    }


class CandidateBlock(nn.Module):
    """Cross-attention to the meta, BEV, map and object tokens in turn, a feed-forward layer after each."""

    def __init__(self, d_model: int, num_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.attn = nn.ModuleList(Attention(d_model, num_heads, cross=True) for _ in range(4))
        self.ffn = nn.ModuleList(FeedForward(d_model, ffn_mult) for _ in range(4))

    def forward(self, x: Tensor, scene: SceneTokens) -> Tensor:
        """Candidate queries ``(B, K, D)`` -> ``(B, K, D)``."""
        memories = ((scene.meta, None), (scene.bev, None), (scene.map, None), (scene.objects, scene.object_mask))
        for attn, ffn, (memory, mask) in zip(self.attn, self.ffn, memories, strict=True):
            x = ffn(attn(x, memory, mask))
        return x


class RewardWorldModel(nn.Module):
    """The reward world model (see the module docstring).

    Args:
        cfg: sizes, inputs, heads and loss weights.
    """

    def __init__(self, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        inp = cfg.inputs
        d = cfg.d_model
        self.scene_encoder = RewardSceneEncoder(cfg)
        stem_channels = cfg.bev_channels[0] if cfg.sample_stem else 0
        sampled_channels = self.scene_encoder.raster_channels + stem_channels  # raster and stem features
        num_points = len(cfg.pose_points)
        pose_in = inp.num_poses * (len(SE2Index) + 2)  # normalised x, y, heading, then cos and sin of heading
        sample_in = inp.num_poses * num_points * sampled_channels
        clearance_in = inp.num_poses * len(ClearanceIndex) if cfg.agent_clearance else 0
        red_in = inp.num_poses * num_points if inp.use_red_lights else 0
        candidate_in = pose_in + sample_in + clearance_in + red_in
        self.light = cfg.decoder == RewardDecoder.LIGHT
        self.heads: SubScoreHeads | FusedSubScoreHeads
        if self.light:
            h = cfg.head_hidden
            map_in = inp.num_poses * num_points * self.scene_encoder.map_classes if inp.use_map else 0
            self.light_input = nn.Linear(candidate_in - map_in, h)  # all but the one-hot map classes
            if inp.use_map:  # the map classes' columns of the first layer: a row per (point, class)
                self.light_classes = nn.Parameter(torch.empty(map_in, h).uniform_(-1, 1) / math.sqrt(candidate_in))
                offsets = torch.arange(inp.num_poses * num_points) * self.scene_encoder.map_classes
                self.register_buffer("class_offsets", offsets, persistent=False)  # (T P,)
            self.light_scene = nn.Linear(d, h, bias=False)  # the scene's share of the first layer, once per scene
            self.light_hidden = nn.Linear(h, h)
            self.heads = FusedSubScoreHeads(h, predict_ec=cfg.predict_ec)
        else:
            self.candidate_embed = mlp(candidate_in, 2 * d, d)
            self.blocks = nn.ModuleList(CandidateBlock(d, cfg.num_heads, cfg.ffn_mult) for _ in range(cfg.num_blocks))
            self.norm = nn.LayerNorm(d)
            self.heads = SubScoreHeads(d, cfg.head_hidden, predict_ec=cfg.predict_ec)
        self.register_buffer("pose_points", torch.tensor(cfg.pose_points, dtype=torch.float32), persistent=False)
        scales = [inp.size_scale, inp.position_scale, inp.position_scale, inp.speed_scale]  # by ClearanceIndex
        self.register_buffer("clearance_scale", 1 / torch.tensor(scales), persistent=False)
        t = inp.num_poses
        nan = float("nan")
        self.register_buffer("ego_mean", torch.full((inp.history_frames, len(EgoStatusIndex)), nan))
        self.register_buffer("ego_std", torch.full((inp.history_frames, len(EgoStatusIndex)), nan))
        self.register_buffer("trajectory_mean", torch.full((t, len(SE2Index)), nan))
        self.register_buffer("trajectory_std", torch.full((t, len(SE2Index)), nan))

    def load_start_weights(self, weights: Mapping[str, Tensor]) -> None:
        """Load a checkpoint's weights to start from; one made without ``agent_clearance`` may start a model with.

        The candidate embedding's inputs are the poses, the sampled rasters, then (last) the clearance features:
        their columns of the first layer start at zero, so the model starts as the checkpoint's function exactly.
        """
        key = "candidate_embed.0.weight"
        weights = dict(weights)
        own = self.light_input.weight if self.light else self.candidate_embed[0].weight
        if self.cfg.agent_clearance and key in weights and weights[key].shape[1] < own.shape[1]:
            old = weights[key]
            weights[key] = torch.cat([old, old.new_zeros(old.shape[0], own.shape[1] - old.shape[1])], dim=1)
        self.load_state_dict(weights)

    # ------------------------------------------------------------------------------------------ statistics
    def set_normalization(self, stats: Mapping[str, Tensor]) -> None:
        """Set the normalisation statistics (``compute_reward_normalization``; a checkpoint's).

        Raises:
            ValueError: naming a missing, misshapen or non-finite statistic.
        """
        for key in NORMALIZATION_KEYS:
            if key not in stats:
                raise ValueError(f"reward model normalisation: missing {key!r}")
            buf = getattr(self, key)
            value = stats[key].float()
            if value.shape != buf.shape or not bool(torch.isfinite(value).all()):
                raise ValueError(
                    f"reward model normalisation {key!r}: expected finite {tuple(buf.shape)}, got {tuple(value.shape)}"
                )
            buf.copy_(value)

    def normalization(self) -> dict[str, Tensor]:
        """The statistics by name (saved beside the weights)."""
        return {k: getattr(self, k).detach().clone() for k in NORMALIZATION_KEYS}

    def _require_normalization(self) -> None:
        if not bool(torch.isfinite(self.trajectory_std).all()):
            raise ValueError("reward model: normalisation statistics were never set (set_normalization)")

    # ------------------------------------------------------------------------------------------ the network
    @property
    def privileged(self) -> bool:
        """Whether it reads the scene's map raster or annotated boxes (not only sensors and ego status)."""
        return self.cfg.inputs.privileged

    @property
    def reads_future(self) -> bool:
        """Whether it reads the log's future (road users', lights'): a reward for training, not a driving agent's."""
        return self.cfg.inputs.reads_future

    def input_keys(self) -> list[str]:
        """The feature keys ``encode_scene`` reads."""
        inp = self.cfg.inputs
        keys = [RewardFeature.EGO_STATUS, RewardFeature.DRIVING_COMMAND]
        if inp.use_lidar:
            keys.append(RewardFeature.LIDAR_BEV)
        if inp.use_map:
            keys.append(RewardFeature.BEV_SEMANTIC_MAP)
        if inp.use_agents:
            keys += [RewardFeature.AGENT_STATES, RewardFeature.AGENT_MASK]
        if inp.use_agent_futures:
            keys += [RewardFeature.AGENT_FUTURE_STATES, RewardFeature.AGENT_FUTURE_MASK]
        if inp.use_red_lights:
            keys.append(RewardFeature.RED_LIGHT_MAP)
        return keys

    def encode_scene(self, features: Mapping[str, Tensor]) -> SceneTokens:
        """The scene tokens of a batch of scenes (compute once, score any number of candidates against them).

        Raises:
            KeyError: naming a missing input.
        """
        self._require_normalization()
        missing = [k for k in self.input_keys() if k not in features]
        if missing:
            raise KeyError(f"reward model: missing inputs {missing} (it reads {self.input_keys()})")
        ego = (features[RewardFeature.EGO_STATUS].float() - self.ego_mean) / self.ego_std  # (B, T, D)
        command = features[RewardFeature.DRIVING_COMMAND].float()  # (B, 4)
        scene = self.scene_encoder(dict(features), torch.cat([ego.flatten(1), command], dim=-1))
        if self.cfg.agent_clearance:
            scene = scene._replace(tracks=self._tracks(scene))
        return scene

    def score_candidates(self, scene: SceneTokens, trajectories: Tensor) -> dict[str, Tensor]:
        """Predict sub-scores of candidates in encoded scenes.

        Args:
            scene: ``encode_scene``'s tokens of B scenes.
            trajectories: ``(B, K, T, 3)`` relative plans by ``SE2Index`` [m, m, rad].

        Returns:
            ``HeadKey.SUB_SCORES`` ``(B, K, S)`` expected sub-scores in [0, 1] by ``SubScore`` (EC NaN when not
            predicted), the raw head outputs (``HeadKey``) and ``RewardKey.REWARD`` ``(B, K)``.
        """
        self._require_normalization()
        b, _k, t, c = trajectories.shape
        if (t, c) != tuple(self.trajectory_mean.shape) or b != scene.meta.shape[0]:
            raise ValueError(
                f"reward model: trajectories {tuple(trajectories.shape)} do not match (B={scene.meta.shape[0]}, K, "
                f"{tuple(self.trajectory_mean.shape)})"
            )
        traj = trajectories.float()
        if self.light:
            inputs, rows, weights = self._light_inputs(scene, traj)  # (B, K, F), (B, K, T P) twice
            x = self.light_input(inputs) + self.light_scene(scene.meta)  # (B, K, H); meta (B, 1, D)
            if rows is not None:  # the map class under each point: its (point, class) row of weights
                bk = rows.shape[0] * rows.shape[1]
                classes = F.embedding_bag(
                    rows.view(bk, -1), self.light_classes, per_sample_weights=weights.view(bk, -1), mode="sum"
                )
                x = x + classes.view(x.shape)
            out = self.heads(F.relu(self.light_hidden(F.relu(x))))
        else:
            heading = traj[..., SE2Index.HEADING]
            norm = (traj - self.trajectory_mean) / self.trajectory_std  # (B, K, T, 3)
            pose = torch.cat([norm, torch.cos(heading)[..., None], torch.sin(heading)[..., None]], -1)  # (B, K, T, 5)
            grid = self._grid(*self._points(traj))  # (B, K, T P, 2)
            maps = [scene.raster, scene.stem] if self.cfg.sample_stem else [scene.raster]
            parts = [pose.flatten(2)] + [self._sample(m, grid) for m in maps]  # (B, K, T 5), each (B, K, T P C)
            if self.cfg.agent_clearance:
                parts.append(self._clearance(scene, traj).flatten(2))  # (B, K, T 4)
            if scene.red_lights is not None:
                parts.append(self._sample_per_pose(scene.red_lights, grid))  # (B, K, T P)
            x = self.candidate_embed(torch.cat(parts, dim=-1))  # (B, K, D)
            for block in self.blocks:
                x = block(x, scene)
            out = self.heads(self.norm(x))
        out[RewardKey.REWARD] = aggregate(out[HeadKey.SUB_SCORES], self.cfg.aggregation)
        return out

    def predict_sub_scores(self, features: Mapping[str, Tensor], trajectories: Tensor) -> dict[str, Tensor]:
        """``encode_scene`` then ``score_candidates``: features of B scenes, trajectories ``(B, K, T, 3)``."""
        return self.score_candidates(self.encode_scene(features), trajectories)

    def reward(self, features: Mapping[str, Tensor], trajectories: Tensor) -> Tensor:
        """The learned reward (EPDMS of the predicted sub-scores) ``(B, K)``, differentiable."""
        return self.predict_sub_scores(features, trajectories)[RewardKey.REWARD]

    def _tracks(self, scene: SceneTokens) -> ObjectTracks:
        """The boxes at the candidate poses' times (``object_tracks``), once per scene."""
        if scene.agents is None or scene.agent_mask is None:
            raise ValueError("reward model: agent_clearance needs the scene's boxes (inputs.use_agents)")
        interval, t = DEFAULT_SAMPLING.interval_length, self.cfg.inputs.num_poses
        return object_tracks(scene.agents, scene.agent_mask, interval, t, scene.agent_futures, scene.agent_future_mask)

    def _clearance(self, scene: SceneTokens, traj: Tensor) -> Tensor:
        """The nearest object to every pose (``nearest_objects``), scaled ``(B, K, T, 4)``."""
        tracks = scene.tracks if scene.tracks is not None else self._tracks(scene)
        inp = self.cfg.inputs
        near = nearest_objects(traj, tracks, DEFAULT_SAMPLING.interval_length, PACIFICA, inp.position_scale)
        return near * self.clearance_scale  # by ClearanceIndex

    def _light_inputs(
        self, scene: SceneTokens, traj: Tensor, *, compiled: bool | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """The light decoder's inputs of candidates ``traj`` ``(B, K, T, 3)``.

        Args:
            scene: the encoded scenes.
            traj: the candidates.
            compiled: build them in one compiled loop (``light_kernel``; ``None``: on the CPU without a gradient).

        Returns:
            The dense inputs ``(B, K, F)`` (normalised poses with cos and sin of the heading, LiDAR at the outline
            points, clearance, red light), the map classes' weight rows ``(B, K, T P)`` (``None`` without the map)
            and their weights (1 on the raster, 0 off it).
        """
        if compiled is None:
            compiled = traj.device.type == "cpu" and not traj.requires_grad
        if not compiled:
            return self._light_inputs_torch(scene, traj)
        inp = self.cfg.inputs
        b, k, t, _ = traj.shape
        num_points, lidar_channels = self.pose_points.shape[0], scene.raster.shape[-1]
        dense = traj.new_empty(b, k, self.light_input.in_features)
        rows = torch.zeros(b, k, t * num_points, dtype=torch.long)
        weights = traj.new_zeros(b, k, t * num_points)
        lidar_col = t * (len(SE2Index) + 2)
        clearance_col = lidar_col + t * num_points * lidar_channels
        red_col = clearance_col + (t * len(ClearanceIndex) if self.cfg.agent_clearance else 0)
        x0, x1, y0, y1 = inp.bev_range
        classes = scene.classes.numpy() if scene.classes is not None else np.zeros((b, 0), dtype=np.int64)
        red = torch.zeros(b, 0, 0, dtype=torch.bool)  # (B, T, H W) of the red-light maps, if any
        if scene.red_lights is not None:
            red = scene.red_lights.reshape(b, t, -1).bool()
        light_inputs_kernel(
            traj.contiguous().numpy(),
            self.trajectory_mean.numpy(),
            self.trajectory_std.numpy(),
            self.pose_points.numpy(),
            x0,
            y0,
            inp.bev_height / (x1 - x0),
            inp.bev_width / (y1 - y0),
            inp.bev_height,
            inp.bev_width,
            scene.raster.contiguous().numpy(),
            classes,
            red.numpy(),
            self.scene_encoder.map_classes,
            lidar_col,
            red_col,
            dense.numpy(),
            rows.numpy(),
            weights.numpy(),
        )
        if self.cfg.agent_clearance:
            dense[..., clearance_col:red_col] = self._clearance(scene, traj).flatten(2)
        return dense, (rows if scene.classes is not None else None), weights

    def _light_inputs_torch(self, scene: SceneTokens, traj: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``_light_inputs`` in torch (any device, differentiable)."""
        heading = traj[..., SE2Index.HEADING]
        norm = (traj - self.trajectory_mean) / self.trajectory_std  # (B, K, T, 3)
        pose = torch.cat([norm, torch.cos(heading)[..., None], torch.sin(heading)[..., None]], -1)  # (B, K, T, 5)
        cell, inside = self._cells(*self._points(traj))  # (B, K, T, P)
        lidar, classes = self._look_up(scene, cell, inside)  # (B, K, T P C), (B, K, T, P)
        parts = [pose.flatten(2), lidar]
        if self.cfg.agent_clearance:
            parts.append(self._clearance(scene, traj).flatten(2))  # (B, K, T 4)
        if scene.red_lights is not None:
            parts.append(self._look_up_per_pose(scene.red_lights, cell, inside))  # (B, K, T P)
        b, k = cell.shape[:2]
        rows = None if classes is None else classes.reshape(b, k, -1) + self.class_offsets  # (B, K, T P)
        return torch.cat(parts, dim=-1), rows, inside.reshape(b, k, -1).to(traj.dtype)

    def _points(self, traj: Tensor) -> tuple[Tensor, Tensor]:
        """The outline points of every pose [m] ``(B, K, T, P)`` each: forward and left in the ego frame."""
        x, y, h = traj[..., SE2Index.X], traj[..., SE2Index.Y], traj[..., SE2Index.HEADING]  # (B, K, T)
        fwd, left = self.pose_points[:, 0], self.pose_points[:, 1]  # (P,)
        cos, sin = torch.cos(h)[..., None], torch.sin(h)[..., None]
        px = x[..., None] + fwd * cos - left * sin  # (B, K, T, P)
        py = y[..., None] + fwd * sin + left * cos
        return px, py

    def _grid(self, px: Tensor, py: Tensor) -> Tensor:
        """Points ``(B, K, T, P)`` as ``grid_sample`` coordinates of the BEV range ``(B, K, T P, 2)``."""
        b, k = px.shape[:2]
        x0, x1, y0, y1 = self.cfg.inputs.bev_range
        # grid_sample: the last coordinate indexes the width (our y), the first the height (our x)
        grid = torch.stack([(py - y0) / (y1 - y0) * 2 - 1, (px - x0) / (x1 - x0) * 2 - 1], dim=-1)
        return grid.reshape(b, k, -1, 2)

    def _cells(self, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        """The raster cell under each point (row-major index) and whether it is on the raster, ``(B, K, T, P)``."""
        inp = self.cfg.inputs
        x0, x1, y0, y1 = inp.bev_range
        row = torch.floor((px - x0) * (inp.bev_height / (x1 - x0)))
        col = torch.floor((py - y0) * (inp.bev_width / (y1 - y0)))
        inside = (row >= 0) & (row < inp.bev_height) & (col >= 0) & (col < inp.bev_width)
        cell = (row.clamp(0, inp.bev_height - 1) * inp.bev_width + col.clamp(0, inp.bev_width - 1)).long()
        return cell, inside

    @staticmethod
    def _look_up(scene: SceneTokens, cell: Tensor, inside: Tensor) -> tuple[Tensor, Tensor | None]:
        """The ``light`` scene's cell tables at ``cell`` ``(B, K, T, P)``.

        Returns:
            The LiDAR channels ``(B, K, T P C)`` (zeros off the raster, the layout of ``_sample``) and the map class
            ``(B, K, T, P)`` (``None`` without the map; meaningless off the raster).
        """
        b, k = cell.shape[:2]
        flat = cell.reshape(b, -1)  # (B, K T P)
        c = scene.raster.shape[-1]
        lidar = torch.gather(scene.raster, 1, flat[..., None].expand(-1, -1, c)) * inside.reshape(b, -1, 1)
        classes = None if scene.classes is None else torch.gather(scene.classes, 1, flat).view(cell.shape)
        return lidar.reshape(b, k, -1), classes

    @staticmethod
    def _look_up_per_pose(maps: Tensor, cell: Tensor, inside: Tensor) -> Tensor:
        """Map t of ``maps`` ``(B, T, H, W)`` at pose t's cells ``(B, K, T, P)`` -> ``(B, K, T P)``, 0 off the map."""
        b, t, h, w = maps.shape
        k = cell.shape[1]
        index = cell + h * w * torch.arange(t, device=cell.device)[:, None]  # (B, K, T, P) into the T maps
        values = torch.gather(maps.reshape(b, t * h * w), 1, index.reshape(b, -1)).reshape(b, k, -1)
        return values.float() * inside.reshape(b, k, -1)

    @staticmethod
    def _sample(grid_map: Tensor, grid: Tensor) -> Tensor:
        """A BEV map ``(B, C, H, W)`` at ``_grid``'s points ``(B, K, T P, 2)`` -> ``(B, K, T P C)`` (zeros outside)."""
        b, k = grid.shape[:2]
        feats = F.grid_sample(grid_map, grid, align_corners=False)  # (B, C, K, T P)
        return feats.permute(0, 2, 3, 1).reshape(b, k, -1)

    @staticmethod
    def _sample_per_pose(maps: Tensor, grid: Tensor) -> Tensor:
        """Map t of ``maps`` ``(B, T, H, W)`` at pose t's points of ``grid`` ``(B, K, T P, 2)`` -> ``(B, K, T P)``."""
        b, t, h, w = maps.shape
        k = grid.shape[1]
        per_pose = grid.reshape(b, k, t, -1, 2).transpose(1, 2).reshape(b * t, k, -1, 2)  # (B T, K, P, 2)
        feats = F.grid_sample(maps.reshape(b * t, 1, h, w).float(), per_pose, align_corners=False)  # (B T, 1, K, P)
        return feats.reshape(b, t, k, -1).transpose(1, 2).reshape(b, k, -1)

    # ------------------------------------------------------------------------------------------ training
    def forward(
        self, features: Mapping[str, Tensor], targets: Mapping[str, Tensor] | None = None, *, generator=None
    ) -> dict[str, Tensor]:
        """Training forward (the shared trainer's call): score the labelled candidates of ``targets``.

        In training mode with ``train_candidates`` set, that many candidates per scene are drawn (from
        ``generator``), the expert always among them; ``RewardKey.CANDIDATE_INDEX`` says which.
        """
        if targets is None or RewardTarget.CANDIDATES not in targets:
            raise KeyError(f"RewardWorldModel.forward: needs targets[{RewardTarget.CANDIDATES!r}] (B, K, T, 3)")
        candidates = targets[RewardTarget.CANDIDATES]
        b, k = candidates.shape[:2]
        kt = self.cfg.train_candidates
        if self.training and 0 < kt < k:
            gen_device = generator.device if generator is not None else candidates.device
            keys = torch.rand(b, k, generator=generator, device=gen_device).to(candidates.device)
            keys = keys.masked_fill(targets[RewardTarget.SOURCES] == CandidateSource.EXPERT, -1.0)
            index = torch.argsort(keys, dim=1)[:, :kt]  # (B, Kt)
        else:
            index = torch.arange(k, device=candidates.device).expand(b, k)
        chosen = torch.gather(candidates, 1, index[..., None, None].expand(-1, -1, *candidates.shape[2:]))
        out = self.predict_sub_scores(features, chosen)
        out[RewardKey.CANDIDATE_INDEX] = index
        return out

    def compute_loss(self, predictions: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Every loss term and their weighted sum ``loss`` (``irl_vla.models.reward.loss``)."""
        return reward_loss(dict(predictions), dict(targets), self.cfg.loss, self.heads.binary)
