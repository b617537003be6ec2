"""The VLA policy's configuration: one dataclass per part, sizes ``tiny``/``default``/``base`` in ``configs/model/``.

The dataclass defaults are the ``default`` size; ``configs/model/<size>.yaml`` states every field of a size (a
test checks that ``default.yaml`` equals the defaults). ``InputSpec`` and the two key enums are the one place
where the model's expected input tensors are named and sized, aligned with the feature and target builders of
``irl_vla.data.features``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import configs
from irl_vla.common.config import load_yaml_config, require_at_least
from irl_vla.data.features.bev_semantic import BevSemanticClass

#: Sizes shipped in ``configs/model/``.
MODEL_SIZES: tuple[str, ...] = ("tiny", "small", "default", "base")
#: Planner heads (``planner.head``): the anchored diffusion planner, or a one-mode regression (an ablation).
PLANNER_HEADS: tuple[str, ...] = ("diffusion", "regression")


class FeatureKey(str, Enum):
    """Policy inputs (non-privileged: sensors, ego status, driving command, navigation instruction).

    Shapes without the batch axis; letters as in ``irl_vla.data.features.builder``.
    """

    EGO_STATUS = "ego_status"  # (T, D) float: EgoStatusIndex columns per history frame, oldest first
    DRIVING_COMMAND = "driving_command"  # (D,) float: one-hot in DrivingCommand order
    CAMERA_IMAGES = "camera_images"  # (T, N, C, H, W) uint8 RGB
    CAMERA_INTRINSICS = "camera_intrinsics"  # (N, 3, 3) float [px]
    CAMERA_TO_LIDAR = "camera_to_lidar"  # (N, 4, 4) float: homogeneous camera (OpenCV axes) -> ego/LiDAR
    LIDAR_BEV = "lidar_bev"  # (T, C, H, W) float in [0, 1] (read when vision.use_lidar)
    INSTRUCTION_TOKENS = "instruction_tokens"  # (L,) int64: [BOS] ... [EOS] then [PAD]
    INSTRUCTION_MASK = "instruction_mask"  # (L,) bool: true on real tokens


class TargetKey(str, Enum):
    """Supervision (privileged; read only by the loss and the language model's teacher forcing)."""

    TRAJECTORY = "trajectory"  # (T, 3) float: expert poses by SE2Index [m, m, rad]
    AGENT_STATES = "agent_states"  # (A, D) float: boxes by AgentStateIndex, zero on padding
    AGENT_CLASSES = "agent_classes"  # (A,) int64: AgentClass positions, IGNORE_INDEX on padding
    AGENT_MASK = "agent_mask"  # (A,) bool
    BEV_SEMANTIC_MAP = "bev_semantic_map"  # (H, W) int64: BevSemanticClass per cell
    META_ACTION = "meta_action"  # () int64: MetaAction position, IGNORE_INDEX when unlabelled
    LM_TARGET_TOKENS = "lm_target_tokens"  # (L,) int64: scene description then meta-action, as text tokens
    LM_TARGET_MASK = "lm_target_mask"  # (L,) bool: true on real tokens
    ROUTE_CENTERLINE = "route_centerline"  # (T, 3) float: route centreline ahead by SE2Index [m, m, rad]
    ROUTE_CENTERLINE_MASK = "route_centerline_mask"  # (T,) bool: true where the route's lanes reach the point


@dataclass
class InputSpec:
    """Sizes of the input tensors the model is built for (checked on every forward).

    Attributes:
        num_cameras: cameras of the rig (N).
        camera_frames: history frames of camera images (T of ``camera_images``).
        image_height: image height [px].
        image_width: image width [px].
        history_frames: ego-status history frames (T of ``ego_status``).
        lidar_frames: LiDAR BEV frames (T of ``lidar_bev``).
        lidar_channels: LiDAR BEV channels (C of ``lidar_bev``): 2 (low and high returns), 3 with
            ``lidar_intensity``.
        lidar_intensity: the LiDAR BEV carries the ground returns' intensity as a third channel.
        bev_range: ``[x_min, x_max, y_min, y_max]`` [m] of the BEV grid (LiDAR BEV, semantic map, BEV tokens),
            ego rear-axle frame, first grid axis forward.
        bev_height: cells along x of ``lidar_bev`` and ``bev_semantic_map``.
        bev_width: cells along y.
        max_instruction_tokens: tokens of the navigation instruction (L).
        num_poses: poses of a plan (T), at 0.5 s.
        max_agents: annotated boxes of the agent targets (A).
    """

    num_cameras: int = 3
    camera_frames: int = 1
    image_height: int = 144
    image_width: int = 256
    history_frames: int = 4
    lidar_frames: int = 1
    lidar_channels: int = 3
    lidar_intensity: bool = True
    bev_range: list[float] = field(default_factory=lambda: [-16.0, 48.0, -32.0, 32.0])
    bev_height: int = 128
    bev_width: int = 128
    max_instruction_tokens: int = 48
    num_poses: int = 8
    max_agents: int = 30

    def __post_init__(self) -> None:
        require_at_least(self, ("num_cameras", "camera_frames", "history_frames", "lidar_frames"), 1)
        require_at_least(self, ("lidar_channels", "max_instruction_tokens", "num_poses", "max_agents"), 1)
        require_at_least(self, ("image_height", "image_width", "bev_height", "bev_width"), 8)
        if self.lidar_channels != 2 + int(self.lidar_intensity):
            raise ValueError(
                f"InputSpec.lidar_channels: {self.lidar_channels}, but the LiDAR BEV has "
                f"{2 + int(self.lidar_intensity)} channels with lidar_intensity={self.lidar_intensity}"
            )
        if len(self.bev_range) != 4 or not (
            self.bev_range[1] > self.bev_range[0] and self.bev_range[3] > self.bev_range[2]
        ):
            raise ValueError(f"InputSpec.bev_range: expected [x_min, x_max, y_min, y_max] [m], got {self.bev_range}")


@dataclass
class VisionConfig:
    """Camera-rig encoder, optional LiDAR-BEV branch and BEV adaptor.

    Attributes:
        backend: ``conv`` (our small strided CNN) or ``transformers`` (a vision tower from ``hf_config`` or
            ``pretrained_path``).
        conv_channels: channels of the CNN: a stride-4 patchifying stem, then stages halving the resolution
            (``conv``).
        conv_blocks: residual 3x3 layers at the end of every CNN stage, the stem included (``conv``; 0: the plain
            tower of one layer a stage).
        hf_config: ``transformers`` vision config fields (``model_type`` plus sizes, e.g. a ViT), ``transformers``.
        pretrained_path: local directory of a pretrained vision tower (``save_pretrained`` layout); never
            downloaded.
        freeze_tower: keep the vision tower's weights fixed.
        token_grid: ``[rows, columns]`` of visual tokens per camera image (pooled feature map).
        use_lidar: add the LiDAR-BEV branch to the BEV tokens.
        lidar_channels: channels of the LiDAR CNN (stride-4 stem, then halving stages), pooled to the BEV
            token grid.
        bev_grid: ``[rows (x), columns (y)]`` of BEV tokens over ``InputSpec.bev_range``.
        bev_layers: layers of the BEV adaptor (BEV queries cross-attending to visual tokens).
    """

    backend: str = "conv"
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    conv_blocks: int = 0
    hf_config: dict[str, Any] | None = None
    pretrained_path: str | None = None
    freeze_tower: bool = False
    token_grid: list[int] = field(default_factory=lambda: [6, 16])
    use_lidar: bool = True
    lidar_channels: list[int] = field(default_factory=lambda: [32, 64])
    bev_grid: list[int] = field(default_factory=lambda: [16, 16])
    bev_layers: int = 1

    def __post_init__(self) -> None:
        if self.backend not in ("conv", "transformers"):
            raise ValueError(f"VisionConfig.backend: expected conv or transformers, got {self.backend!r}")
        if self.backend == "transformers" and not (self.hf_config or self.pretrained_path):
            raise ValueError("VisionConfig: backend transformers needs hf_config or pretrained_path")
        for name in ("conv_channels", "lidar_channels"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"VisionConfig.{name}: expected at least one stage of >= 1 channels")
        for name in ("token_grid", "bev_grid"):
            grid = getattr(self, name)
            if len(grid) != 2 or min(grid) < 1:
                raise ValueError(f"VisionConfig.{name}: expected [rows, columns] >= 1, got {grid}")
        require_at_least(self, ("bev_layers",), 1)
        require_at_least(self, ("conv_blocks",), 0)
        if self.conv_blocks and self.backend != "conv":
            raise ValueError(f"VisionConfig.conv_blocks: deepens our CNN (backend conv), not backend {self.backend!r}")


@dataclass
class Reasoning3DConfig:
    """3D reasoning: object tokens (agent box queries) and map tokens from the BEV tokens.

    Attributes:
        num_object_queries: object tokens (Q), one box hypothesis each.
        map_grid: ``[rows (x), columns (y)]`` of map tokens over the BEV range.
        layers: decoder layers of each token set.
        semantic_stride: the BEV semantic map is predicted at ``bev_height / semantic_stride`` cells (targets
            pooled to match, higher class wins).
        semantic_channels: channels of the semantic decoder's upsampling stages.
        aux_heads: build the auxiliary heads (boxes, classes, BEV semantic map) that supervise the object and map
            tokens (false: the tokens are learned from the planning loss alone, an ablation; their loss terms
            and targets are dropped).
    """

    num_object_queries: int = 16
    map_grid: list[int] = field(default_factory=lambda: [8, 8])
    layers: int = 1
    semantic_stride: int = 2
    semantic_channels: int = 32
    aux_heads: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, ("num_object_queries", "layers", "semantic_stride", "semantic_channels"), 1)
        if len(self.map_grid) != 2 or min(self.map_grid) < 1:
            raise ValueError(f"Reasoning3DConfig.map_grid: expected [rows, columns] >= 1, got {self.map_grid}")


@dataclass
class RouteConfig:
    """The route head: where the route's lane goes ahead, read from the BEV and visual tokens.

    It regresses the route centreline's poses at fixed arc lengths ahead of the ego (the ``route_centerline``
    target, supervised by ``loss.route``; the map is a target only, never an input). Its prediction (never the
    target) can be given to the planner: its tokens as one more context source the denoiser cross-attends to,
    and its poses embedded into the condition of every mode query and denoiser block.

    Attributes:
        enabled: build the route head (false: no head, no target, no term).
        num_points: points ahead (``route_centerline``'s T).
        spacing: arc length between the points, and of the first ahead of the ego [m].
        layers: decoder layers of the route queries (cross-attention to BEV and visual tokens).
        to_planner: give the head's prediction to the planner (false: the head is an auxiliary task only).
        bend_anchors: lay the planner's anchors onto the head's predicted centreline before denoising
            (``bend.bend_anchors``), in training and inference alike; needs ``enabled``.
        lidar_cells: the route queries also read the LiDAR BEV at its CNN stem's resolution (one token per
            4 x 4 pixels: 2 m cells at 0.5 m pixels), besides the BEV tokens (4 m cells); needs
            ``vision.use_lidar``.
        cells_range: ``[x_min, x_max, y_min, y_max]`` [m] of the stem cells read (those whose centres lie
            inside; ``None``: the whole BEV grid).
        camera_band: ``[top, bottom]`` fractions of the image height: the route queries also read every image's
            feature map one CNN stage before the last (stride 8), in these rows (the road 15 to 50 m ahead lies
            a few rows below the horizon); ``None``: not read. Needs ``vision.backend`` conv.
        reads_ego_status: the route queries are conditioned on the ego embedding (ego status and driving
            command); false: on the driving command only, so the road's course can come from the sensors alone,
            not from the ego's own motion (a cue that exists only once the ego is in the bend).
    """

    enabled: bool = True
    num_points: int = 10
    spacing: float = 5.0
    layers: int = 1
    to_planner: bool = True
    bend_anchors: bool = False
    lidar_cells: bool = False
    cells_range: list[float] | None = None
    camera_band: list[float] | None = None
    reads_ego_status: bool = True

    def __post_init__(self) -> None:
        require_at_least(self, ("num_points", "layers"), 1)
        if not self.spacing > 0:
            raise ValueError(f"RouteConfig.spacing: expected > 0 [m], got {self.spacing}")
        if self.bend_anchors and not self.enabled:
            raise ValueError("RouteConfig.bend_anchors: needs the route head (route.enabled = true)")
        if self.lidar_cells and not self.enabled:
            raise ValueError("RouteConfig.lidar_cells: needs the route head (route.enabled = true)")
        if self.cells_range is not None:
            r = [float(v) for v in self.cells_range]
            if len(r) != 4 or not (r[0] < r[1] and r[2] < r[3]):
                raise ValueError(f"RouteConfig.cells_range: expected [x_min, x_max, y_min, y_max] [m], got {r}")
            self.cells_range = r
        if self.camera_band is not None:
            band = [float(v) for v in self.camera_band]
            if len(band) != 2 or not 0 <= band[0] < band[1] <= 1:
                raise ValueError(f"RouteConfig.camera_band: expected [top, bottom] in [0, 1], top < bottom, got {band}")
            if not self.enabled:
                raise ValueError("RouteConfig.camera_band: needs the route head (route.enabled = true)")
            self.camera_band = band

    @property
    def feeds_planner(self) -> bool:
        """Whether the planner reads the route head's prediction."""
        return self.enabled and self.to_planner


@dataclass
class LanguageConfig:
    """Semantic reasoning: a causal language model built from a ``transformers`` config.

    Attributes:
        enabled: build the language model (false: the planner reads no meta tokens, an ablation).
        family: ``qwen2`` or ``llama`` (the ``transformers`` architecture).
        vocab_size: token ids the embedding and LM head cover (at least the tokenizer's vocabulary).
        hidden_size: width of the language model.
        num_layers: decoder layers.
        num_heads: attention heads.
        num_kv_heads: key/value heads (grouped-query attention).
        intermediate_size: MLP width.
        max_positions: longest sequence (visual + ego + instruction + meta + target tokens).
        rope_theta: rotary embedding base.
        num_visual_tokens: tokens the vision adaptor gives the language model.
        num_meta_tokens: meta queries appended after the instruction; their last hidden states are the meta
            tokens the planner reads.
        max_target_tokens: tokens of the LM target text (scene description and meta-action).
        tokenizer: ``bpe`` (byte-level BPE trained offline on the instruction corpus), ``byte`` (byte-level
            fallback, no training) or ``pretrained`` (``tokenizer.json`` of ``pretrained_path``).
        pretrained_path: local directory of a pretrained causal LM (``save_pretrained`` layout, with its
            ``tokenizer.json``); never downloaded.
        freeze_lm: keep the language model's weights fixed.
    """

    enabled: bool = True
    family: str = "qwen2"
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_positions: int = 256
    rope_theta: float = 10000.0
    num_visual_tokens: int = 16
    num_meta_tokens: int = 4
    max_target_tokens: int = 48
    tokenizer: str = "bpe"
    pretrained_path: str | None = None
    freeze_lm: bool = False

    def __post_init__(self) -> None:
        if self.family not in ("qwen2", "llama"):
            raise ValueError(f"LanguageConfig.family: expected qwen2 or llama, got {self.family!r}")
        if self.tokenizer not in ("bpe", "byte", "pretrained"):
            raise ValueError(f"LanguageConfig.tokenizer: expected bpe, byte or pretrained, got {self.tokenizer!r}")
        if self.tokenizer == "pretrained" and not self.pretrained_path:
            raise ValueError("LanguageConfig.tokenizer: pretrained needs pretrained_path")
        names = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")
        require_at_least(self, (*names, "max_positions", "num_visual_tokens", "num_meta_tokens"), 1)
        require_at_least(self, ("max_target_tokens",), 2)
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"LanguageConfig: hidden_size {self.hidden_size} must divide by num_heads {self.num_heads}, "
                f"and num_heads by num_kv_heads {self.num_kv_heads}"
            )


@dataclass
class PlannerConfig:
    """Anchored truncated diffusion over K anchor trajectories (or, as an ablation, one regressed trajectory).

    The denoising timesteps are the last ``num_denoising_steps`` of a DDIM schedule with ``denoising_stride``
    between timesteps: ``stride * (S - 1), ..., stride, 0``; anchors are noised to the first of them.

    Attributes:
        head: ``diffusion`` (K anchors denoised into K scored modes) or ``regression`` (an ablation: one mode
            regressed in one pass of the same denoiser from the mean expert trajectory, no noise; no sampled
            chains, so no RL).
        num_anchors: anchors and modes (K) of the diffusion head.
        num_blocks: denoiser blocks (each: self-attention over modes, cross-attention to meta, BEV, map and
            object tokens in turn, feed-forward).
        num_train_timesteps: length of the diffusion schedule.
        beta_schedule: ``diffusers`` beta schedule name.
        beta_start: first beta.
        beta_end: last beta.
        train_max_timestep: training noises anchors to a timestep drawn uniformly from ``[0, this)``.
        denoising_stride: timesteps between denoising steps.
        num_denoising_steps: denoising steps (S).
        eta: DDIM stochasticity of sampled chains (0 = deterministic DDIM mean, 1 = DDPM-like variance).
        std_min: floor of the per-step standard deviation of sampled chains (normalised trajectory units).
    """

    head: str = "diffusion"
    num_anchors: int = 20
    num_blocks: int = 2
    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    train_max_timestep: int = 50
    denoising_stride: int = 8
    num_denoising_steps: int = 2
    eta: float = 1.0
    std_min: float = 0.1

    def __post_init__(self) -> None:
        if self.head not in PLANNER_HEADS:
            raise ValueError(f"PlannerConfig.head: expected one of {list(PLANNER_HEADS)}, got {self.head!r}")
        require_at_least(self, ("num_anchors", "num_blocks", "num_denoising_steps", "denoising_stride"), 1)
        if self.num_train_timesteps % self.denoising_stride:
            raise ValueError(
                f"PlannerConfig.denoising_stride: {self.denoising_stride} must divide num_train_timesteps "
                f"{self.num_train_timesteps}"
            )
        if not self.start_timestep < self.train_max_timestep <= self.num_train_timesteps:
            raise ValueError(
                f"PlannerConfig.train_max_timestep: expected in ({self.start_timestep}, {self.num_train_timesteps}] "
                f"(training must cover the start timestep stride * (steps - 1)), got {self.train_max_timestep}"
            )
        if self.eta < 0 or not self.std_min > 0:
            raise ValueError(f"PlannerConfig: expected eta >= 0 and std_min > 0, got {self.eta}, {self.std_min}")

    @property
    def num_modes(self) -> int:
        """Modes the planner outputs (K): ``num_anchors``, or 1 for the regression head."""
        return 1 if self.head == "regression" else self.num_anchors

    @property
    def start_timestep(self) -> int:
        """The timestep anchors are noised to before denoising."""
        return self.denoising_stride * (self.num_denoising_steps - 1)


@dataclass
class LossConfig:
    """Weights of the imitation loss terms (a weight of 0 drops the term and its targets).

    Attributes:
        trajectory_cls: per-anchor focal classification (the anchor nearest the expert is positive).
        trajectory_reg: L1 regression of the winning mode to the expert [m, m, rad].
        focal_gamma: focusing exponent of the classification.
        focal_alpha: weight of positives in the classification.
        agent_class: classification of object tokens (matched boxes by class, others as no-object).
        agent_box: L1 on the matched boxes' states.
        no_object_weight: class weight of the no-object class.
        bev_semantic: cross-entropy of the BEV semantic map.
        bev_class_weights: weight of each ``BevSemanticClass`` (in its order) in that cross-entropy; rare
            classes (vehicles, static objects: a few % of the cells) weigh more so that they are learned at all.
        meta_action: cross-entropy of the meta-action from the meta tokens.
        lm: next-token cross-entropy of the LM target text (scene description and meta-action).
        route: L1 of the route head's centreline poses against the ``route_centerline`` target [m, m, rad].
        route_squared: the route term squares the errors instead (a mean squared error [m^2, m^2, rad^2]): a
            point 4 m off pulls 20 times harder than one 0.2 m off, where the L1 pulls both alike.
    """

    trajectory_cls: float = 10.0
    trajectory_reg: float = 8.0
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    agent_class: float = 2.0
    agent_box: float = 0.5
    no_object_weight: float = 0.1
    bev_semantic: float = 5.0
    bev_class_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 2.0, 2.0, 5.0, 5.0, 5.0, 5.0])
    meta_action: float = 1.0
    lm: float = 1.0
    route: float = 5.0
    route_squared: bool = False

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            values = value if isinstance(value, list) else [value]
            if not all(v >= 0 for v in values):
                raise ValueError(f"LossConfig.{name}: expected >= 0, got {value}")
        if len(self.bev_class_weights) != len(BevSemanticClass) or not sum(self.bev_class_weights) > 0:
            raise ValueError(
                f"LossConfig.bev_class_weights: expected {len(BevSemanticClass)} weights (one per BevSemanticClass: "
                f"{[c.name.lower() for c in BevSemanticClass]}), not all 0; got {self.bev_class_weights}"
            )


@dataclass
class VLAConfig:
    """The whole policy.

    Attributes:
        size: name of the size (``tiny``, ``default``, ``base`` or a user's).
        d_model: width of scene tokens (visual, BEV, object, map, meta after projection) and of the planner.
        num_heads: attention heads of our own attention layers.
        ffn_mult: feed-forward width as a multiple of ``d_model``.
        inputs: the input tensors' sizes.
        vision: vision encoder and BEV adaptor.
        ego_history_dropout: in training, the probability per sample that the ego's history frames are dropped
            (set to their training mean; the current frame's velocity and acceleration and the driving command
            stay), so that the planner must read the scene tokens rather than extrapolate the ego's past.
        ego_accel_dropout: in training, the probability per sample (drawn independently of the history's) that
            the ego's accelerations, of the current frame and every history frame, are set to their training mean,
            so that whether to brake or to go is read from the scene rather than continued from the ego's own
            acceleration.
        ego_lateral_dropout: in training, the probability per sample (drawn after the accelerations') that the
            ego's lateral motion, in every frame (lateral position, heading, lateral velocity and acceleration), is
            set to its training mean, so that a bend is read from the road ahead rather than from the car
            already turning.
        reasoning: 3D reasoning (object and map tokens).
        route: the route head.
        language: the language model.
        planner: the diffusion planner.
        loss: loss weights.
    """

    size: str = "default"
    d_model: int = 128
    num_heads: int = 4
    ffn_mult: int = 2
    ego_history_dropout: float = 0.3
    ego_accel_dropout: float = 0.0
    ego_lateral_dropout: float = 0.0
    inputs: InputSpec = field(default_factory=InputSpec)
    vision: VisionConfig = field(default_factory=VisionConfig)
    reasoning: Reasoning3DConfig = field(default_factory=Reasoning3DConfig)
    route: RouteConfig = field(default_factory=RouteConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        require_at_least(self, ("d_model", "num_heads", "ffn_mult"), 1)
        if self.d_model % self.num_heads:
            raise ValueError(f"VLAConfig: d_model {self.d_model} must divide by num_heads {self.num_heads}")
        for key in ("ego_history_dropout", "ego_accel_dropout", "ego_lateral_dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"VLAConfig.{key}: expected in [0, 1), got {getattr(self, key)}")
        if self.route.lidar_cells and not self.vision.use_lidar:
            raise ValueError("VLAConfig: route.lidar_cells reads the LiDAR BEV; it needs vision.use_lidar = true")
        if self.route.camera_band is not None and (self.vision.backend != "conv" or len(self.vision.conv_channels) < 2):
            raise ValueError(
                "VLAConfig: route.camera_band reads our CNN's maps; it needs vision.backend conv, >= 2 stages"
            )
        stride = self.reasoning.semantic_stride
        if self.inputs.bev_height % stride or self.inputs.bev_width % stride:
            raise ValueError(
                f"VLAConfig: reasoning.semantic_stride {stride} must divide the BEV grid "
                f"{self.inputs.bev_height} x {self.inputs.bev_width}"
            )


#: Values of keys added after checkpoints were written without them: a stored model record that lacks a key was
#: trained with this value (``with_legacy_values``), whatever today's default is.
LEGACY_VALUES: dict[tuple[str, ...], Any] = {
    ("ego_history_dropout",): 0.0,
    ("ego_accel_dropout",): 0.0,
    ("ego_lateral_dropout",): 0.0,
    ("route", "enabled"): False,
    ("loss", "route"): 0.0,
    ("loss", "bev_class_weights"): [1.0] * len(BevSemanticClass),
    ("inputs", "lidar_intensity"): False,
    ("route", "bend_anchors"): False,
    ("route", "lidar_cells"): False,
    ("route", "cells_range"): None,
    ("route", "camera_band"): None,
    ("route", "reads_ego_status"): True,
    ("vision", "conv_blocks"): 0,
    ("loss", "route_squared"): False,
}


def with_legacy_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored model record with each ``LEGACY_VALUES`` key it lacks set to the value it was trained with."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in record.items()}
    for path, value in LEGACY_VALUES.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], value)
    return out


def model_config_path(size: str) -> Path:
    """``configs/model/<size>.yaml``."""
    return Path(configs.__file__).parent / "model" / f"{size}.yaml"


def load_model_config(size_or_path: str, overrides: dict[str, Any] | None = None) -> VLAConfig:
    """The config of a shipped size (``tiny``, ``default``, ``base``) or of a yaml file, with ``overrides``.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the key of an unknown or invalid field.
    """
    path = model_config_path(size_or_path) if size_or_path in MODEL_SIZES else Path(size_or_path)
    return load_yaml_config(path, VLAConfig, "model", MODEL_SIZES, overrides)
