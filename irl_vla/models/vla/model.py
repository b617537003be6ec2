"""The VLA policy: vision, 3D reasoning, semantic reasoning (language model) and the diffusion planner.

``forward(features, targets=None) -> predictions``. The model reads only non-privileged features (cameras,
LiDAR BEV, ego status, driving command, navigation instruction; ``FeatureKey``); ``targets`` are read only for
the language model's teacher forcing (its LM loss), never by the planner's path. Predictions:

- ``trajectory`` ``(B, T, 3)``: the mode of highest confidence [m, m, rad];
- ``modes`` ``(B, K, T, 3)``, ``mode_logits`` ``(B, K)`` and ``mode_confidences`` ``(B, K)`` (their sigmoid): in
  training one denoising pass from noised anchors (what the imitation loss supervises), otherwise the denoised
  modes;
- auxiliary outputs (training or ``with_aux``): ``agent_states``, ``agent_class_logits``,
  ``bev_semantic_logits``, ``meta_action_logits`` and, with LM targets, ``lm_logits``;
- with a route head (``route.enabled``), always: ``route_centerline`` ``(B, P, 3)``, the route lane's centreline
  ahead as the network reads it from its sensors (given to the planner when ``route.to_planner``), and with
  ``route.bend_anchors`` the ``anchors`` ``(B, K, T, 3)`` laid onto it that the planner denoised;
- sampled chains (``stochastic=True``): ``chain``, ``chain_log_probs`` ``(B, K, S)`` and ``chain_stds``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from irl_vla.data.enums import DrivingCommand, MetaAction
from irl_vla.data.features.ego import EgoStatusIndex
from irl_vla.models.vla.bend import bend_anchors
from irl_vla.models.vla.config import FeatureKey, TargetKey, VLAConfig
from irl_vla.models.vla.language import LanguageReasoner
from irl_vla.models.vla.layers import mlp
from irl_vla.models.vla.loss import compute_loss
from irl_vla.models.vla.normalization import NormalizationStats, Standardizer
from irl_vla.models.vla.planner import CONTEXT_SOURCES, DiffusionPlanner, PlannerContext
from irl_vla.models.vla.reasoning3d import Reasoning3D
from irl_vla.models.vla.regression import RegressionPlanner
from irl_vla.models.vla.route import RouteHead
from irl_vla.models.vla.vision import STEM_STRIDE, VisionEncoder


class VLAModel(nn.Module):
    """The policy network (see the module docstring)."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, heads, mult, inputs = cfg.d_model, cfg.num_heads, cfg.ffn_mult, cfg.inputs
        self.ego_norm = Standardizer("ego_status", (inputs.history_frames, len(EgoStatusIndex)))
        self.image_norm = Standardizer("camera_images", (3, 1, 1))
        self.ego_encoder = mlp(inputs.history_frames * len(EgoStatusIndex) + len(DrivingCommand), d, d)
        band = cfg.route.camera_band if cfg.route.enabled else None
        self.vision = VisionEncoder(cfg.vision, inputs, d, heads, mult, band)
        self.reasoning = Reasoning3D(cfg.reasoning, inputs, d, heads, mult)
        self.language = LanguageReasoner(cfg.language, d, heads, mult) if cfg.language.enabled else None
        self.meta_action_head = mlp(d, d, len(MetaAction)) if self.language is not None else None
        self.route = None
        if cfg.route.enabled:
            cells = None
            if cfg.route.lidar_cells:  # the LiDAR stem's map: its channels, range and grid
                grid = (inputs.bev_height // STEM_STRIDE, inputs.bev_width // STEM_STRIDE)
                cells = (cfg.vision.lidar_channels[0], inputs.bev_range, *grid)
            self.route = RouteHead(cfg.route, d, heads, mult, cells)
        absent = {"meta"} if self.language is None else set()
        absent |= set() if cfg.route.feeds_planner else {"route"}
        sources = tuple(s for s in CONTEXT_SOURCES if s not in absent)
        planner = RegressionPlanner if cfg.planner.head == "regression" else DiffusionPlanner
        self.planner = planner(cfg.planner, inputs.num_poses, d, heads, mult, sources)

    # ----------------------------------------------------------------------------------------------------- setup
    def set_normalization(self, stats: NormalizationStats) -> None:
        """Set the statistics computed from training data (``compute_normalization``)."""
        self.ego_norm.set(stats.ego_mean, stats.ego_std)
        self.image_norm.set(stats.image_mean.view(-1, 1, 1), stats.image_std.view(-1, 1, 1))
        self.planner.trajectory_norm.set(stats.trajectory_mean, stats.trajectory_std)

    def set_anchors(self, anchors: Tensor) -> None:
        """Set the planner's K anchors ``(K, T, 3)`` (``compute_anchors`` of the training split)."""
        self.planner.set_anchors(anchors)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (and ``total``)."""

        def count(module: nn.Module | None, skip: str = "") -> int:
            if module is None:
                return 0
            return sum(p.numel() for n, p in module.named_parameters() if not (skip and n.startswith(skip)))

        counts = {
            "vision": count(self.vision),
            "reasoning3d": count(self.reasoning),
            "language_model": count(None if self.language is None else self.language.lm),
            "language_adaptors": count(self.language, skip="lm."),
            "planner": count(self.planner),
            "route_head": count(self.route),
            "ego_and_meta_heads": count(self.ego_encoder) + count(self.meta_action_head),
        }
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    # --------------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        features: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
        *,
        stochastic: bool = False,
        with_aux: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Plan (see the module docstring for the keys).

        Args:
            features: batched ``FeatureKey`` tensors.
            targets: batched targets; only the LM target text is read (teacher forcing), when present.
            stochastic: sample the denoising chain and return its log-probability (eval mode only).
            with_aux: run the auxiliary heads (default: in training).
            generator: random source of the training noise or of sampled chains.

        Raises:
            ValueError: naming a missing or misshapen feature key.
        """
        with_aux = self.training if with_aux is None else with_aux
        train_pass = self.training and not stochastic
        ctx, out = self.encode(features, targets, with_aux=with_aux, drop_generator=generator if train_pass else None)
        if train_pass:
            modes, logits = self.planner.forward_train(ctx, generator)
        else:
            sampled = self.planner.sample(ctx, stochastic=stochastic, generator=generator)
            modes, logits = sampled.modes, sampled.logits
            if stochastic:
                out.update(chain=sampled.chain, chain_log_probs=sampled.log_probs, chain_stds=sampled.stds)
        best = logits.argmax(dim=-1)  # (B,)
        out.update(
            modes=modes,
            mode_logits=logits,
            mode_confidences=torch.sigmoid(logits),  # (B, K) per-anchor probabilities of being the expert's
            trajectory=modes[torch.arange(modes.shape[0], device=modes.device), best],  # (B, T, 3)
        )
        return out

    def compute_loss(self, predictions: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The imitation loss of training-mode ``predictions`` (``loss.compute_loss``)."""
        return compute_loss(
            predictions,
            targets,
            predictions.get("anchors", self.planner.anchors),
            self.cfg.loss,
            language=self.language is not None,
            aux3d=self.cfg.reasoning.aux_heads,
            route=self.route is not None,
        )

    def chain_log_prob(self, features: Mapping[str, Tensor], chain: Tensor) -> Tensor:
        """Log-probabilities ``(B, K, S)`` of a sampled ``chain`` ``(B, K, S + 1, T, 3)``.

        Evaluated under the current parameters, differentiably (PPO's ratio).
        """
        ctx, _ = self.encode(features, None, with_aux=False)
        return self.planner.chain_log_prob(ctx, chain)

    def encode(
        self,
        features: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None,
        *,
        with_aux: bool,
        drop_generator: torch.Generator | None = None,
    ) -> tuple[PlannerContext, dict[str, Tensor]]:
        """Scene tokens for the planner, and the auxiliary predictions.

        ``drop_generator`` (a training pass only) draws which samples' ego history is dropped
        (``ego_history_dropout``), then which samples' accelerations are (``ego_accel_dropout``), then which
        samples' lateral motion is (``ego_lateral_dropout``).
        """
        self.check_features(features)
        f = {k: features[k.value] for k in FeatureKey if k.value in features}
        b = f[FeatureKey.EGO_STATUS].shape[0]
        history = self.ego_norm(f[FeatureKey.EGO_STATUS].float())  # (B, T, D) standardised
        if self.training and drop_generator is not None:
            for probability, drop in (
                (self.cfg.ego_history_dropout, drop_ego_history),
                (self.cfg.ego_accel_dropout, drop_ego_acceleration),
                (self.cfg.ego_lateral_dropout, drop_ego_lateral),
            ):
                if probability > 0:  # a dropout that is off draws nothing: the others' draws stay as they were
                    history = drop(history, probability, drop_generator)
        ego = self.ego_encoder(torch.cat([history.reshape(b, -1), f[FeatureKey.DRIVING_COMMAND].float()], -1))  # (B, D)
        images = self.image_norm.scaled(f[FeatureKey.CAMERA_IMAGES], 1.0 / 255.0)  # (B, T, N, C, H, W)
        visual, bev, lidar_cells, band = self.vision(
            images, f[FeatureKey.CAMERA_INTRINSICS], f[FeatureKey.CAMERA_TO_LIDAR], f.get(FeatureKey.LIDAR_BEV)
        )
        reasoned = self.reasoning(bev, with_aux=with_aux)
        tokens = {"bev": bev, "map": reasoned.pop("map_tokens"), "objects": reasoned.pop("object_tokens")}
        out: dict[str, Tensor] = dict(reasoned)
        condition = ego
        anchors = None
        if self.route is not None:
            route_condition = ego if self.cfg.route.reads_ego_status else f[FeatureKey.DRIVING_COMMAND].float()
            route = self.route(bev, visual, route_condition, lidar_cells, band)
            out["route_centerline"] = route["route_centerline"]
            if self.cfg.route.bend_anchors:
                anchors = bend_anchors(self.planner.anchors, route["route_centerline"], self.cfg.route.spacing)
                out["anchors"] = anchors  # (B, K, T, 3): what the loss picks the winning anchor from
            if "route_condition" in route:
                tokens["route"] = route["route_tokens"]
                condition = ego + route["route_condition"]
        if self.language is not None:
            target = mask = None
            if targets is not None and TargetKey.LM_TARGET_TOKENS.value in targets:
                target = targets[TargetKey.LM_TARGET_TOKENS.value]
                mask = targets.get(TargetKey.LM_TARGET_MASK.value)
            meta, lm_logits = self.language(
                visual, ego, f[FeatureKey.INSTRUCTION_TOKENS], f[FeatureKey.INSTRUCTION_MASK], target, mask
            )
            tokens["meta"] = meta
            if with_aux and self.meta_action_head is not None:
                out["meta_action_logits"] = self.meta_action_head(meta.mean(dim=1))
            if lm_logits is not None:
                out["lm_logits"] = lm_logits
        return PlannerContext(ego=condition, tokens=tokens, anchors=anchors), out

    def required_features(self) -> tuple[FeatureKey, ...]:
        """The feature keys this configuration reads."""
        keys = [FeatureKey.EGO_STATUS, FeatureKey.DRIVING_COMMAND, FeatureKey.CAMERA_IMAGES]
        keys += [FeatureKey.CAMERA_INTRINSICS, FeatureKey.CAMERA_TO_LIDAR]
        if self.cfg.vision.use_lidar:
            keys.append(FeatureKey.LIDAR_BEV)
        if self.language is not None:
            keys += [FeatureKey.INSTRUCTION_TOKENS, FeatureKey.INSTRUCTION_MASK]
        return tuple(keys)

    def check_features(self, features: Mapping[str, Tensor]) -> None:
        """Check the batched features against ``cfg.inputs``.

        Raises:
            ValueError: naming the key and the expected shape (letters as in ``FeatureKey``).
        """
        s = self.cfg.inputs
        expected: dict[FeatureKey, tuple[int | None, ...]] = {
            FeatureKey.EGO_STATUS: (s.history_frames, len(EgoStatusIndex)),
            FeatureKey.DRIVING_COMMAND: (len(DrivingCommand),),
            FeatureKey.CAMERA_IMAGES: (s.camera_frames, s.num_cameras, 3, s.image_height, s.image_width),
            FeatureKey.CAMERA_INTRINSICS: (s.num_cameras, 3, 3),
            FeatureKey.CAMERA_TO_LIDAR: (s.num_cameras, 4, 4),
            FeatureKey.LIDAR_BEV: (s.lidar_frames, s.lidar_channels, s.bev_height, s.bev_width),
            FeatureKey.INSTRUCTION_TOKENS: (None,),
            FeatureKey.INSTRUCTION_MASK: (None,),
        }
        batch: int | None = None
        for key in self.required_features():
            if key.value not in features:
                names = [k.value for k in self.required_features()]
                raise ValueError(f"features: missing {key.value!r} (the model reads {names})")
            value = features[key.value]
            want = expected[key]
            shape = tuple(value.shape)
            ok = len(shape) == len(want) + 1 and all(w is None or g == w for g, w in zip(shape[1:], want, strict=True))
            if batch is not None and shape[:1] != (batch,):
                ok = False
            if not ok:
                shown = ("B", *("*" if w is None else w for w in want))
                raise ValueError(f"features: {key.value!r} has shape {shape}, expected {shown}")
            batch = shape[0]
        if self.language is not None:
            tokens = features[FeatureKey.INSTRUCTION_TOKENS.value]
            mask = features[FeatureKey.INSTRUCTION_MASK.value]
            if tokens.shape != mask.shape or tokens.dtype != torch.int64 or mask.dtype != torch.bool:
                raise ValueError(
                    f"features: instruction_tokens {tuple(tokens.shape)} {tokens.dtype} and instruction_mask "
                    f"{tuple(mask.shape)} {mask.dtype} must be int64 and bool of one shape"
                )
        if features[FeatureKey.CAMERA_IMAGES.value].dtype != torch.uint8:
            dtype = features[FeatureKey.CAMERA_IMAGES.value].dtype
            raise ValueError(f"features: camera_images must be uint8, got {dtype}")


def drop_ego_history(history: Tensor, probability: float, generator: torch.Generator) -> Tensor:
    """Standardised ego statuses ``(B, T, D)``, each sample's history dropped with ``probability``.

    A dropped sample keeps its current frame (velocity, acceleration); its earlier frames are set to 0, the
    training mean, so the planner cannot extrapolate the ego's past there.
    """
    return _drop_entries(history, probability, generator, slice(None, -1), slice(None))


#: The ``ego_status`` columns ``drop_ego_acceleration`` drops.
ACCELERATION_COLUMNS: tuple[int, ...] = (EgoStatusIndex.ACCELERATION_X, EgoStatusIndex.ACCELERATION_Y)


def drop_ego_acceleration(history: Tensor, probability: float, generator: torch.Generator) -> Tensor:
    """Standardised ego statuses ``(B, T, D)``, each sample's accelerations dropped with ``probability``.

    A dropped sample's acceleration columns, in every frame, are set to 0 (the training mean); its poses and
    velocities stay, so the planner must see in the scene whether the ego should brake or go on.
    """
    return _drop_entries(history, probability, generator, slice(None), list(ACCELERATION_COLUMNS))


#: The ``ego_status`` columns ``drop_ego_lateral`` drops.
LATERAL_COLUMNS: tuple[int, ...] = (
    EgoStatusIndex.Y,
    EgoStatusIndex.HEADING,
    EgoStatusIndex.VELOCITY_Y,
    EgoStatusIndex.ACCELERATION_Y,
)


def drop_ego_lateral(history: Tensor, probability: float, generator: torch.Generator) -> Tensor:
    """Standardised ego statuses ``(B, T, D)``, each sample's lateral motion dropped with ``probability``.

    A dropped sample's lateral columns, in every frame, are set to 0 (the training mean): nothing in its ego
    status says that the car is turning, so the planner must see in the scene whether the road bends.
    """
    return _drop_entries(history, probability, generator, slice(None), list(LATERAL_COLUMNS))


def _drop_entries(
    history: Tensor, probability: float, generator: torch.Generator, frames: slice, columns: slice | list[int]
) -> Tensor:
    """``history`` ``(B, T, D)``, the ``[frames, columns]`` entries of each sample drawn (``probability``) set to 0."""
    dropped = torch.rand(history.shape[0], generator=generator, device=generator.device) < probability  # (B,)
    entries = torch.zeros(history.shape[1:], dtype=torch.bool, device=history.device)  # (T, D)
    entries[frames, columns] = True
    gone = dropped.to(history.device)[:, None, None] & entries  # (B, T, D)
    return history * (~gone).to(history.dtype)
