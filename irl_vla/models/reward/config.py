"""The reward world model's configuration: sizes ``tiny`` / ``default`` in ``configs/model/reward_<size>.yaml``.

The dataclass defaults are the ``default`` size (a test keeps ``reward_default.yaml`` equal to them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import configs
from irl_vla.common.config import load_yaml_config, require_at_least, to_dataclass
from irl_vla.scoring.aggregation import AggregationConfig

#: Sizes shipped in ``configs/model/reward_<size>.yaml``.
REWARD_SIZES: tuple[str, ...] = ("tiny", "default", "light")
#: The ``architecture`` a reward model's checkpoint records.
REWARD_ARCHITECTURE = "reward"


class RewardDecoder(StrEnum):
    """How a candidate is scored against its encoded scene (``RewardModelConfig.decoder``)."""

    ATTENTION = "attention"  # a query per candidate, cross-attending to the meta, BEV, map and object tokens
    LIGHT = "light"  # an MLP per candidate on its own inputs, conditioned on one pooled vector of the scene


@dataclass
class RewardInputs:
    """What the scene encoder reads, and the sizes of those tensors.

    Attributes:
        history_frames: ego-status frames (T of ``ego_status``).
        num_poses: poses of a candidate (T of the trajectories), 0.5 s apart.
        bev_range: ``[x_min, x_max, y_min, y_max]`` [m] of the BEV rasters (ego rear-axle frame, rows along x).
        bev_height: raster cells along x.
        bev_width: raster cells along y.
        use_lidar: read the LiDAR BEV histogram ``lidar_bev`` (a sensor input).
        lidar_frames: T of ``lidar_bev``.
        lidar_channels: C of ``lidar_bev``.
        use_map: read the HD-map and object raster ``bev_semantic_map`` (privileged: built from the scene).
        use_agents: read the annotated boxes ``agent_states`` / ``agent_mask`` as object tokens (privileged);
            otherwise object tokens are learned queries over the BEV tokens.
        use_agent_futures: also read the logged futures of those boxes ``agent_future_states`` /
            ``agent_future_mask`` (privileged: the log the simulator replays); used by ``agent_clearance``.
        use_red_lights: read ``red_light_map``, the route's red lane connectors now and at each future frame of
            the log (privileged: the logged light states, the future's included); each candidate pose samples the
            frame of its time along its outline (the traffic-light compliance cue).
        max_agents: boxes of ``agent_states`` (A).
        position_scale: [m] divides box positions (object tokens).
        size_scale: [m] divides box sizes.
        speed_scale: [m/s] divides box velocities.
    """

    history_frames: int = 4
    num_poses: int = 8
    bev_range: list[float] = field(default_factory=lambda: [-32.0, 32.0, -32.0, 32.0])
    bev_height: int = 128
    bev_width: int = 128
    use_lidar: bool = True
    lidar_frames: int = 1
    lidar_channels: int = 2
    use_map: bool = True
    use_agents: bool = True
    use_agent_futures: bool = False
    use_red_lights: bool = False
    max_agents: int = 30
    position_scale: float = 32.0
    size_scale: float = 5.0
    speed_scale: float = 10.0

    def __post_init__(self) -> None:
        require_at_least(self, ("history_frames", "num_poses", "bev_height", "bev_width", "max_agents"), 1)
        if len(self.bev_range) != 4 or not (
            self.bev_range[0] < self.bev_range[1] and self.bev_range[2] < self.bev_range[3]
        ):
            raise ValueError(f"RewardInputs.bev_range: expected [x_min, x_max, y_min, y_max], got {self.bev_range}")
        if not (self.use_lidar or self.use_map):
            raise ValueError("RewardInputs: use_lidar or use_map must be true (the BEV encoder needs a raster)")

    @property
    def privileged(self) -> bool:
        """Whether the model reads more than sensors and ego status (the map raster or annotated boxes)."""
        return self.use_map or self.use_agents or self.use_red_lights

    @property
    def reads_future(self) -> bool:
        """Whether it reads the log's future (the boxes' logged futures, the future light states)."""
        return self.use_agent_futures or self.use_red_lights


@dataclass
class RewardLossConfig:
    """Weights of the training terms (``irl_vla.models.reward.loss``); a weight of 0 drops the term.

    Attributes:
        sub_scores: per sub-score weight of the distillation term (CE for NC/DDC, BCE for the binary ones,
            bounded regression (BCE on the soft target) for EP), by ``SubScore`` short name.
        distillation: weight of the whole distillation term.
        irl: weight of the max-margin inverse-RL term (expert above worse candidates).
        irl_margin: margin per EPDMS point of the simulator's gap between the expert and a candidate.
        irl_min_gap: candidates the simulator scores less than this below the expert are left out.
        ep_ranking: weight of the pairwise EP ranking term within a scene.
        ep_margin: margin of the EP ranking term.
        ep_min_gap: pairs whose simulator EP differ by less are left out.
        score: weight of the squared error between the reward and the simulator's EPDMS.
        listwise: weight of the listwise term (KL from the simulator's softmax over a scene's candidates to the
            model's; it weighs the candidates the model ranks at the top, i.e. what best-of-N would pick).
        listwise_temperature: [EPDMS] temperature of both softmaxes of the listwise term.
    """

    sub_scores: dict[str, float] = field(
        default_factory=lambda: {
            "NC": 2.0,
            "DAC": 2.0,
            "DDC": 1.0,
            "TLC": 1.0,
            "EP": 1.0,
            "TTC": 1.0,
            "LK": 1.0,
            "HC": 0.5,
            "EC": 0.5,
        }
    )
    distillation: float = 1.0
    irl: float = 1.0
    irl_margin: float = 1.0
    irl_min_gap: float = 0.05
    ep_ranking: float = 0.5
    ep_margin: float = 0.05
    ep_min_gap: float = 0.05
    score: float = 1.0
    listwise: float = 0.0
    listwise_temperature: float = 0.05

    def __post_init__(self) -> None:
        from irl_vla.scoring.sub_scores import SubScore

        for name, w in self.sub_scores.items():
            try:
                SubScore.from_name(name)
            except ValueError as e:
                raise ValueError(f"RewardLossConfig.sub_scores: {e}") from None
            if not w >= 0:
                raise ValueError(f"RewardLossConfig.sub_scores.{name}: expected >= 0, got {w}")
        weights = ("distillation", "irl", "irl_margin", "irl_min_gap", "ep_ranking", "ep_margin", "score", "listwise")
        require_at_least(self, weights, 0)
        if not self.listwise_temperature > 0:
            raise ValueError(f"RewardLossConfig.listwise_temperature: expected > 0, got {self.listwise_temperature}")


@dataclass
class RewardModelConfig:
    """The reward world model (``RewardWorldModel``).

    Attributes:
        size: the size's name.
        architecture: ``reward`` (recorded in checkpoints; the loaders check it).
        d_model: width of every token.
        num_heads: attention heads.
        ffn_mult: feed-forward width / ``d_model``.
        inputs: what the scene encoder reads.
        bev_channels: BEV CNN: a stride-4 patchifying stem, then one stride-2 stage per further entry.
        bev_grid: BEV tokens (rows along x, columns along y), pooled from the CNN's last stage.
        map_grid: map tokens: queries at these cells attending to the BEV tokens.
        num_object_queries: object tokens when ``inputs.use_agents`` is false.
        scene_layers: decoder layers of the map and object queries.
        pose_points: points ``[forward, left]`` [m] in each candidate pose's frame where the stem's feature map
            is sampled (the vehicle's outline as the candidate drives; vehicle geometry, not data).
        decoder: ``attention`` (the trajectory-query decoder) or ``light`` (``RewardDecoder``: the scene pooled
            to one vector once, each candidate through a two-layer MLP of width ``head_hidden`` with one linear
            layer for every head; no CNN, no BEV, map or object tokens; the input maps are read at the cell under
            each outline point rather than interpolated; ``num_blocks`` and ``bev_channels`` are unused).
        sample_stem: sample the BEV stem's feature map along each candidate's outline (besides the input
            rasters); ``attention`` only.
        num_blocks: trajectory-decoder blocks (cross-attention to meta, BEV, map and object tokens in turn).
        head_hidden: hidden width of each sub-score head (``light``: of the candidate MLP).
        predict_ec: predict EC (trained where the label is defined); otherwise EC is NaN and drops from the
            reward's weights.
        agent_clearance: each candidate pose also sees its nearest annotated object, the boxes carried forward at
            constant velocity (``clearance``; needs ``inputs.use_agents``). Off in checkpoints made before it.
        train_candidates: candidates per scene scored in a training step (drawn at random, the expert always
            among them); 0: all.
        aggregation: how predicted sub-scores become the reward (EPDMS by default).
        loss: the training terms' weights.
    """

    size: str = "default"
    architecture: str = REWARD_ARCHITECTURE
    d_model: int = 64
    num_heads: int = 4
    ffn_mult: int = 2
    inputs: RewardInputs = field(default_factory=RewardInputs)
    bev_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    bev_grid: list[int] = field(default_factory=lambda: [8, 8])
    map_grid: list[int] = field(default_factory=lambda: [4, 4])
    num_object_queries: int = 16
    scene_layers: int = 1
    pose_points: list[list[float]] = field(
        default_factory=lambda: [[1.5, 0.0], [3.5, 1.0], [3.5, -1.0], [-0.5, 1.0], [-0.5, -1.0]]
    )
    decoder: str = RewardDecoder.ATTENTION.value
    sample_stem: bool = True
    num_blocks: int = 2
    head_hidden: int = 64
    predict_ec: bool = True
    agent_clearance: bool = False
    train_candidates: int = 64
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    loss: RewardLossConfig = field(default_factory=RewardLossConfig)

    def __post_init__(self) -> None:
        require_at_least(self, ("d_model", "num_heads", "ffn_mult", "num_blocks", "head_hidden", "scene_layers"), 1)
        require_at_least(self, ("train_candidates", "num_object_queries"), 0)
        if self.decoder not in {d.value for d in RewardDecoder}:
            raise ValueError(
                f"RewardModelConfig.decoder: expected one of {[d.value for d in RewardDecoder]}, got {self.decoder!r}"
            )
        if self.decoder == RewardDecoder.LIGHT and self.sample_stem:
            raise ValueError("RewardModelConfig.sample_stem: the light decoder has no CNN; set sample_stem=false")
        if self.architecture != REWARD_ARCHITECTURE:
            raise ValueError(
                f"RewardModelConfig.architecture: expected {REWARD_ARCHITECTURE!r}, got {self.architecture!r}"
            )
        if self.d_model % self.num_heads:
            raise ValueError(
                f"RewardModelConfig: d_model {self.d_model} is not divisible by num_heads {self.num_heads}"
            )
        if not self.bev_channels:
            raise ValueError("RewardModelConfig.bev_channels: at least one stage")
        for name in ("bev_grid", "map_grid"):
            grid = getattr(self, name)
            if len(grid) != 2 or min(grid) < 1:
                raise ValueError(f"RewardModelConfig.{name}: expected [rows, cols] >= 1, got {grid}")
        if self.agent_clearance and not self.inputs.use_agents:
            raise ValueError("RewardModelConfig.agent_clearance: needs inputs.use_agents (the annotated boxes)")
        if self.inputs.use_agent_futures and not self.agent_clearance:
            raise ValueError("RewardModelConfig.inputs.use_agent_futures: only agent_clearance reads them; set it")
        if not self.pose_points or any(len(p) != 2 for p in self.pose_points):
            raise ValueError(
                f"RewardModelConfig.pose_points: expected a list of [forward, left], got {self.pose_points}"
            )


def reward_config_path(size: str) -> Path:
    """``configs/model/reward_<size>.yaml``."""
    return Path(configs.__file__).parent / "model" / f"reward_{size}.yaml"


def load_reward_config(size_or_path: str, overrides: dict[str, Any] | None = None) -> RewardModelConfig:
    """The config of a shipped size (``tiny``, ``default``) or of a yaml file, with ``overrides``.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the key of an unknown or invalid field.
    """
    path = reward_config_path(size_or_path) if size_or_path in REWARD_SIZES else Path(size_or_path)
    return load_yaml_config(path, RewardModelConfig, "reward model", REWARD_SIZES, overrides)


def reward_config_from_dict(doc: dict[str, Any]) -> RewardModelConfig:
    """A config from its recorded form (a checkpoint's ``model`` entry)."""
    return to_dataclass(OmegaConf.create(doc), RewardModelConfig, where="reward model config")
