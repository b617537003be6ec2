"""A trained policy: its network, the feature builders that feed it, and where its checkpoints live.

``irl-vla train`` builds a policy from a model config (``configs/model/<name>.yaml``: a VLA size, or
``ego_mlp``), derives the feature and target builders from the config's input sizes (so the data always
matches the network), and saves all of it with every checkpoint: the model config, the builders' parameters,
the weights (normalisation statistics and anchors are buffers of the network and also stored on their own),
and artefacts such as the tokenizer. ``load_policy`` rebuilds the same policy from a checkpoint for the agents
(``agent=vla``, ``agent=ego_mlp``) and for evaluation.

A run directory holds ``checkpoints/step_<N>/``; ``resolve_checkpoint`` accepts either a checkpoint directory
or a run directory (its latest checkpoint).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from irl_vla.common.checkpoint import MANIFEST, Checkpoint, load_checkpoint
from irl_vla.common.config import to_dataclass
from irl_vla.data.features.builder import FeatureBuilder, TargetBuilder, check_unique_keys, merge_sensor_configs
from irl_vla.data.features.registry import build_feature_builders, build_target_builders
from irl_vla.data.features.route import RouteCenterlineTargetBuilder
from irl_vla.data.scene import AgentInput
from irl_vla.data.sensors import SensorConfig
from irl_vla.models.ego_mlp import EgoMLPConfig, EgoMLPStats, EgoStatusMLP
from irl_vla.models.vla.config import VLAConfig, model_config_path, with_legacy_values
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import NormalizationStats
from irl_vla.training.language_targets import LanguageTargetBuilder

#: Architectures ``irl-vla train`` builds (a model yaml's ``architecture`` key; absent means ``vla``).
ARCHITECTURES: tuple[str, ...] = ("vla", "ego_mlp")
ModelConfig = VLAConfig | EgoMLPConfig

#: Artefact names inside a checkpoint.
TOKENIZER_ARTEFACT = "tokenizer.json"
ANCHORS_ARTEFACT = "anchors.safetensors"
#: Checkpoints of a run: ``<run>/checkpoints/step_<N>``.
CHECKPOINTS_DIR = "checkpoints"
STEP_PREFIX = "step_"


# ---------------------------------------------------------------------------------------------- model configs
def model_config(doc: Mapping[str, Any]) -> ModelConfig:
    """The typed model config of a model yaml (or of a checkpoint's ``model`` record).

    Raises:
        ValueError: naming an unknown architecture or the key of a bad field.
    """
    doc = dict(doc)
    architecture = doc.pop("architecture", "vla")
    if architecture == "vla":
        return to_dataclass(doc, VLAConfig, where="model")
    if architecture == "ego_mlp":
        return to_dataclass({**doc, "architecture": architecture}, EgoMLPConfig, where="model")
    raise ValueError(f"model.architecture: {architecture!r} is not one of {list(ARCHITECTURES)}")


def architecture_of(cfg: ModelConfig) -> str:
    """``vla`` or ``ego_mlp``."""
    return "ego_mlp" if isinstance(cfg, EgoMLPConfig) else "vla"


def model_record(cfg: ModelConfig) -> dict[str, Any]:
    """The model config as stored in a checkpoint (JSON values, the architecture named)."""
    return {**dataclasses.asdict(cfg), "architecture": architecture_of(cfg)}


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network of ``cfg`` (weights freshly initialised from the current torch random state)."""
    return EgoStatusMLP(cfg) if isinstance(cfg, EgoMLPConfig) else VLAModel(cfg)


def set_normalization(model: nn.Module, tensors: Mapping[str, Tensor]) -> None:
    """Set a model's normalisation statistics from their stored tensors (``to_tensors`` of its stats class)."""
    if isinstance(model, EgoStatusMLP):
        model.set_normalization(EgoMLPStats.from_tensors(tensors))
    else:
        assert isinstance(model, VLAModel)
        model.set_normalization(NormalizationStats.from_tensors(tensors))


# ---------------------------------------------------------------------------------------------- builders
def _frames(history: int, count: int, what: str) -> list[int]:
    if count > history:
        raise ValueError(f"model.inputs.{what}: {count} frames exceed the {history} history frames")
    return list(range(history - count, history))


def _grid(cfg: VLAConfig) -> dict[str, float]:
    x_min, x_max, y_min, y_max = cfg.inputs.bev_range
    resolution = (x_max - x_min) / cfg.inputs.bev_height
    if abs((y_max - y_min) / cfg.inputs.bev_width - resolution) > 1e-9:
        raise ValueError(
            f"model.inputs: bev_range {cfg.inputs.bev_range} over {cfg.inputs.bev_height} x {cfg.inputs.bev_width} "
            "cells does not give square cells"
        )
    return {"x_min": x_min, "x_max": x_max, "y_min": y_min, "y_max": y_max, "resolution": resolution}


def builder_params(cfg: ModelConfig, cameras: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Feature and target builders (name -> parameters) whose tensors have the sizes ``cfg`` is built for.

    Text builders name the tokenizer as ``TOKENIZER_ARTEFACT``; ``make_builders`` points them at the file.
    Target builders of loss terms whose weight is 0, or whose heads the model does not have, are left out.

    Args:
        cfg: the model config.
        cameras: camera names, in the order the VLA reads them (``model.inputs.num_cameras`` of them).

    Raises:
        ValueError: when the cameras or grids do not fit the config.
    """
    if isinstance(cfg, EgoMLPConfig):
        features = {"ego_status": {"num_history_frames": cfg.history_frames}, "driving_command": {}}
        return features, {"trajectory": {"num_poses": cfg.num_poses}}
    s, loss = cfg.inputs, cfg.loss
    if len(cameras) != s.num_cameras:
        raise ValueError(
            f"train.cameras: {len(cameras)} cameras {list(cameras)}, model.inputs.num_cameras is {s.num_cameras}"
        )
    grid = _grid(cfg)
    features: dict[str, Any] = {
        "ego_status": {"num_history_frames": s.history_frames},
        "driving_command": {},
        "cameras": {
            "cameras": list(cameras),
            "frames": _frames(s.history_frames, s.camera_frames, "camera_frames"),
            "height": s.image_height,
            "width": s.image_width,
        },
    }
    if cfg.vision.use_lidar:
        frames = _frames(s.history_frames, s.lidar_frames, "lidar_frames")
        features["lidar_bev"] = {"frames": frames, "grid": grid}
        if s.lidar_intensity:  # only when set, so that the default's cache entries keep their fingerprint
            features["lidar_bev"]["intensity"] = True
    if cfg.language.enabled:
        features["navigation_instruction"] = {"tokenizer": TOKENIZER_ARTEFACT, "max_tokens": s.max_instruction_tokens}
    targets: dict[str, Any] = {"trajectory": {"num_poses": s.num_poses}}
    aux3d = cfg.reasoning.aux_heads
    if aux3d and (loss.agent_class > 0 or loss.agent_box > 0):
        targets["agents"] = {"max_agents": s.max_agents, "grid": grid}
    if aux3d and loss.bev_semantic > 0:
        targets["bev_semantic_map"] = {"grid": grid}
    if cfg.language.enabled and loss.meta_action > 0:
        targets["meta_action"] = {}
    if cfg.route.enabled and loss.route > 0:
        targets[RouteCenterlineTargetBuilder.name] = {"num_points": cfg.route.num_points, "spacing": cfg.route.spacing}
    if cfg.language.enabled and loss.lm > 0:
        targets[LanguageTargetBuilder.name] = {
            "tokenizer": TOKENIZER_ARTEFACT,
            "max_tokens": cfg.language.max_target_tokens,
        }
    return features, targets


def _with_tokenizer(params: Mapping[str, Any], tokenizer: Path | None, where: str) -> dict[str, Any]:
    out = {}
    for name, p in params.items():
        p = dict(p or {})
        if p.get("tokenizer") == TOKENIZER_ARTEFACT:
            if tokenizer is None:
                raise ValueError(f"{where}.{name}: reads the tokenizer, but none was given ({TOKENIZER_ARTEFACT})")
            p["tokenizer"] = str(tokenizer)
        out[name] = p
    return out


def cached_builder_params(
    model: str, cameras: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What ``irl-vla cache cache.model=<model>`` builds, without the builders that read a run's own tokenizer.

    ``builder_params`` of the model config ``model`` (``configs/model/<model>.yaml``, or a yaml path).

    Raises:
        FileNotFoundError: naming the missing model config.
    """
    path = Path(model) if model.endswith((".yaml", ".yml")) else model_config_path(model)
    if not path.is_file():
        raise FileNotFoundError(f"cache.model: no model config {path}")
    doc = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    assert isinstance(doc, dict)
    features, targets = builder_params(model_config(doc), cameras)

    def own(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {n: dict(p or {}) for n, p in group.items() if (p or {}).get("tokenizer") != TOKENIZER_ARTEFACT}

    return own(features), own(targets)


def make_builders(
    features: Mapping[str, Any], targets: Mapping[str, Any], tokenizer: Path | None
) -> tuple[list[FeatureBuilder], list[TargetBuilder]]:
    """The builders ``builder_params`` describes, their text builders reading ``tokenizer``.

    Raises:
        ValueError: naming the builder of an unknown name or bad parameter.
    """
    feature_builders = build_feature_builders(_with_tokenizer(features, tokenizer, "features"), "features")
    target_params = _with_tokenizer(targets, tokenizer, "targets")
    language = target_params.pop(LanguageTargetBuilder.name, None)
    target_builders = build_target_builders(target_params, "targets")
    if language is not None:
        where = f"targets.{LanguageTargetBuilder.name}"
        target_builders.append(to_dataclass(language, LanguageTargetBuilder, where=where))
    check_unique_keys([*feature_builders, *target_builders])
    return feature_builders, target_builders


# ---------------------------------------------------------------------------------------------- the policy
class Policy:
    """A network with the feature builders that turn an ``AgentInput`` into its inputs.

    Args:
        model: the network (``VLAModel`` or ``EgoStatusMLP``), with its statistics (and anchors) set.
        feature_builders: its input builders (they read the ``AgentInput`` only).
    """

    def __init__(self, model: nn.Module, feature_builders: Sequence[FeatureBuilder]) -> None:
        self.model = model
        self.feature_builders = list(feature_builders)

    @property
    def architecture(self) -> str:
        """``vla`` or ``ego_mlp``."""
        return "ego_mlp" if isinstance(self.model, EgoStatusMLP) else "vla"

    @property
    def device(self) -> torch.device:
        """Where the network's parameters are."""
        return next(self.model.parameters()).device

    def sensor_config(self) -> SensorConfig:
        """The sensors the feature builders read."""
        return merge_sensor_configs([b.sensor_config() for b in self.feature_builders])

    def features(self, agent_inputs: Sequence[AgentInput]) -> dict[str, Tensor]:
        """Batched input tensors ``(B, ...)`` of ``agent_inputs``, on the network's device.

        Raises:
            ValueError: naming the builder and key of a tensor off its spec.
        """
        samples = [
            {k: v for b in self.feature_builders for k, v in b.check(b.compute(x), f"agent input {i}").items()}
            for i, x in enumerate(agent_inputs)
        ]
        device = self.device
        return {key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]}

    @torch.no_grad()
    def predict(self, agent_inputs: Sequence[AgentInput]) -> dict[str, Tensor]:
        """The network's inference outputs, computed in eval mode (the training mode is restored afterwards).

        ``trajectory`` ``(B, T, 3)``; the VLA adds ``modes`` ``(B, K, T, 3)`` and ``mode_logits`` ``(B, K)``.
        """
        if not agent_inputs:
            raise ValueError("Policy.predict: no agent inputs")
        features = self.features(agent_inputs)
        was_training = self.model.training
        self.model.eval()
        try:
            return {k: v.float().cpu() for k, v in self.model(features).items()}
        finally:
            self.model.train(was_training)


def checkpoint_dirs(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The checkpoints of a run directory, oldest (lowest step) first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(STEP_PREFIX) and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint directory itself, or the latest checkpoint of a run directory.

    Raises:
        FileNotFoundError: naming the path when it is neither.
    """
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    found = checkpoint_dirs(path)
    if not found:
        raise FileNotFoundError(
            f"{path}: neither a checkpoint (no {MANIFEST}) nor a training run with checkpoints ({CHECKPOINTS_DIR}/)"
        )
    return found[-1]


def load_policy(
    path: str | os.PathLike[str], *, architecture: str | None = None, device: str | torch.device = "cpu"
) -> tuple[Policy, Checkpoint]:
    """The policy saved in a checkpoint (or the latest of a run directory), in eval mode on ``device``.

    Args:
        path: a checkpoint or run directory written by ``irl-vla train``.
        architecture: refuse a checkpoint of another architecture (``vla``, ``ego_mlp``).
        device: where to put the network.

    Raises:
        FileNotFoundError, DataFormatError: naming a missing or damaged checkpoint file.
        ValueError: naming a checkpoint of another architecture or without a policy.
    """
    ck = load_checkpoint(resolve_checkpoint(path))
    if "model" not in ck.config or "features" not in ck.config:
        raise ValueError(f"{ck.path}: not a policy checkpoint of irl-vla train (its config has no model/features)")
    record = ck.config["model"]
    cfg = model_config(with_legacy_values(record) if record.get("architecture", "vla") == "vla" else record)
    found = architecture_of(cfg)
    if architecture is not None and found != architecture:
        raise ValueError(f"{ck.path}: holds an {found} policy, not {architecture} (use agent={found})")
    model = build_model(cfg)
    model.load_state_dict(ck.weights)
    set_normalization(model, ck.normalization)
    features, _ = make_builders(ck.config["features"], {}, ck.artefacts.get(TOKENIZER_ARTEFACT))
    model.to(device).eval()
    return Policy(model, features), ck
