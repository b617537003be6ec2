"""Stage 1, imitation (``irl-vla train stage=il``): a policy learns the expert's plans of a training split.

Before the first step, on the training split (rank 0; the other processes receive the results):

- the **tokenizer** of the VLA's language model (``language.tokenizer``; ``bpe`` is trained on the split's
  navigation instructions and LM target texts), saved as ``tokenizer.json`` with every checkpoint;
- the **anchors** of the VLA's planner: K-means of the split's expert trajectories (``compute_anchors``, seeded),
  saved with every checkpoint (``anchors.safetensors``, and as the planner's buffers);
- the **normalisation statistics** of the inputs and targets, from the samples of ``stats_scenes`` scenes spread
  over the split, saved with every checkpoint (``normalization.safetensors``, and as buffers);
- the feature cache's **text entries** under the run's tokenizer (instruction tokens, LM target), encoded from
  the texts the tokenizer was trained on (no second decode of the split), and the entries of the targets that
  read the scene but no sensors (``LOG_ORDER_TARGETS``: the route centreline; built, where missing, in log order:
  a log is decoded once for all its scenes): ``fill_text_entries``, so that the first epoch reads them instead
  of decoding a whole log per random sample.

The tokenizer's corpus and the anchors' trajectories come from one **split pass** over the scenes (no sensors
read), which keeps what it reads in the feature cache (``scene_texts`` and ``trajectory`` entries): a fresh run on
a cached split decodes no scene (on the embedded default with its stage-2 scenes, 15k scenes, the pass takes
3.5 s instead of 2 min).

A resumed run takes all three from its checkpoint. The features and targets come from the builders the model
config implies (``policy.builder_params``), through the feature cache; the shared trainer does the rest, and
its validation hook scores the policy, run as its agent, on the first ``val_max_scenes`` scenes of
``val_split`` with the EPDMS scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from irl_vla.agents.ego_mlp import EgoMLPAgent
from irl_vla.agents.vla import PolicyAgent, VLAAgent
from irl_vla.common.checkpoint import Checkpoint
from irl_vla.common.config import require_at_least_or_none
from irl_vla.common.config_source import SceneSelectionConfig
from irl_vla.common.io import atomic_open
from irl_vla.common.parallel import ExecutorConfig
from irl_vla.data.features.builder import TargetBuilder, TensorSpec
from irl_vla.data.features.cameras import DEFAULT_CAMERAS
from irl_vla.data.features.dataset import FeatureDataset, LoadStatus, collate
from irl_vla.data.features.instruction import InstructionTokensBuilder, TokensBuilder
from irl_vla.data.features.route import RouteCenterlineTargetBuilder
from irl_vla.data.features.targets import TrajectoryTargetBuilder
from irl_vla.data.scene import Scene
from irl_vla.data.source import SourceFactory
from irl_vla.data.split import spread
from irl_vla.models.ego_mlp import EgoMLPConfig, compute_ego_mlp_stats
from irl_vla.models.vla.anchors import compute_anchors
from irl_vla.models.vla.config import VLAConfig
from irl_vla.models.vla.normalization import compute_normalization
from irl_vla.training.balance import lateral_balance_weights, valid_edges
from irl_vla.training.language_targets import LanguageTargetBuilder, model_tokenizer
from irl_vla.training.policy import (
    ANCHORS_ARTEFACT,
    TOKENIZER_ARTEFACT,
    ModelConfig,
    Policy,
    architecture_of,
    build_model,
    builder_params,
    make_builders,
    model_config,
    model_record,
    set_normalization,
)
from irl_vla.training.trainer import (
    Processes,
    Trainer,
    TrainerConfig,
    find_resume,
    init_processes,
    resolve_device,
    resolved_precision,
)
from irl_vla.training.validation import Validator

#: Where a run keeps the artefacts its builders read (copied into every checkpoint).
ARTEFACTS_DIR = "artefacts"
#: Features and targets the normalisation statistics read, per architecture.
STATS_KEYS = {"vla": ("ego_status", "cameras", "trajectory"), "ego_mlp": ("ego_status", "trajectory")}
#: Targets that read the scene but no sensors, which ``fill_text_entries`` also caches in log order.
LOG_ORDER_TARGETS = (RouteCenterlineTargetBuilder.name,)


@dataclass
class ILConfig(SceneSelectionConfig, TrainerConfig):
    """Stage 1 (imitation): the trainer's settings (``TrainerConfig``), the scene source's and these.

    The scene source's keys (``data_root``, ``source``, ``navsim_root``, ...) are ``SceneSourceConfig``'s.

    Attributes:
        stage: the stage these settings are for (``il``).
        split: the training split.
        extra_splits: more splits of the same source trained on with ``split`` (e.g. ``[synth_navtrain_two_stage]``:
            the training split's stage-2 scenes, whose ego starts displaced from the logged driver's pose); their
            scenes follow the split's, their features go to the same ``cache_dir``.
        max_scenes: train on the first N scenes only (``None``: all).
        cache_dir: the feature cache (shared with ``irl-vla cache``); ``None``: none.
        cameras: the VLA's cameras, in order (``model.inputs.num_cameras`` of them).
        stats_scenes: scenes (spread over the split) whose samples give the normalisation statistics.
        anchor_iterations: K-means iterations of the planner's anchors.
        lateral_balance: draw the training scenes with weights that balance them by how far sideways the expert's
            plan ends (``irl_vla.training.balance``): each scene weighted by its bucket's frequency to the power
            ``-lateral_balance``; 0: a uniform shuffle per epoch.
        lateral_edges: the buckets' edges [m] of the plan's absolute lateral end offset.
        val_split: held-out split scored by the validation hook (``None``: no validation).
        val_max_scenes: its first N scenes.
        val_every: steps between validations (0: only at the end).
        workers: processes building the validation split's metric caches.
        sensor_cache: embedded splits: keep the sensors rendered for validation here.
        output_dir: the run's directory (checkpoints, TensorBoard, metrics); ``None``:
            ``<paths.output_root>/train/il/<model size>``. A rerun with the same settings resumes it.
    """

    stage: str = "il"
    split: str = "synth_navtrain"
    extra_splits: list[str] = field(default_factory=list)
    cache_dir: str | None = "data/features/synth_navtrain"
    cameras: list[str] = field(default_factory=lambda: list(DEFAULT_CAMERAS))
    stats_scenes: int = 256
    anchor_iterations: int = 100
    lateral_balance: float = 0.0
    lateral_edges: list[float] = field(default_factory=lambda: [1.0, 3.0, 6.0])
    val_split: str | None = "synth_navtest"
    val_max_scenes: int | None = 16
    workers: int = 2
    val_every: int = 500
    output_dir: str | None = None  # type: ignore[assignment]  # None: decided by the command (model size)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage != "il":
            raise ValueError(f"ILConfig.stage: expected il, got {self.stage!r}")
        require_at_least_or_none(self, ("val_max_scenes",), 1)
        names = [self.split, *self.extra_splits]
        if len(set(names)) != len(names):
            raise ValueError(f"ILConfig.extra_splits: {self.extra_splits} repeats a split (train.split: {self.split})")
        if self.lateral_balance < 0:
            raise ValueError(f"ILConfig.lateral_balance: expected >= 0, got {self.lateral_balance}")
        if not valid_edges(self.lateral_edges):
            raise ValueError(
                f"ILConfig.lateral_edges: expected positive, increasing edges [m], got {list(self.lateral_edges)}"
            )
        if self.stats_scenes < 2 or self.anchor_iterations < 1 or self.workers < 1:
            raise ValueError(
                f"ILConfig: expected stats_scenes >= 2, anchor_iterations >= 1, workers >= 1; got {self.stats_scenes}, "
                f"{self.anchor_iterations}, {self.workers}"
            )

    def record(self) -> dict[str, Any]:
        """Settings that change the trained weights (the trainer's plus the data's)."""
        data = {k: getattr(self, k) for k in ("split", "max_scenes", "stats_scenes", "anchor_iterations")}
        if self.extra_splits:  # recorded only when set: runs from before the key resume unchanged
            data["extra_splits"] = list(self.extra_splits)
        if self.lateral_balance:  # likewise
            data["lateral_balance"] = self.lateral_balance
            data["lateral_edges"] = list(self.lateral_edges)
        return {**super().record(), **data, "cameras": list(self.cameras)}


@dataclass
class Prepared:
    """What a fresh run computes from the training split before its first step.

    Attributes:
        normalization: statistics by name.
        artefacts: file name -> bytes (``tokenizer.json``, ``anchors.safetensors``).
        trajectories: the split pass's expert trajectories ``(N, T, 3)`` (VLA only; not sent to other processes).
    """

    normalization: dict[str, Tensor]
    artefacts: dict[str, bytes]
    trajectories: Tensor | None = None


def il_record(
    cfg: ILConfig, model_cfg: ModelConfig, features: dict, targets: dict, world_size: int, device: torch.device
) -> dict:
    """The config stored in (and compared with) every checkpoint of a stage-1 run.

    With ``precision: bf16_if_native`` it also holds what that resolved to on ``device`` (``resolved_precision``), so
    a run is never resumed in the other precision on a machine that decides otherwise.
    """
    train = cfg.record()
    if cfg.precision == "bf16_if_native":
        train["resolved_precision"] = resolved_precision(cfg.precision, device)
    return {
        "stage": "il",
        "model": model_record(model_cfg),
        "features": features,
        "targets": targets,
        "train": train,
        "world_size": world_size,
    }


#: The texts the split pass collects from each scene, by the text builder that encodes them (its ``scene_text``,
#: so the two cannot drift apart): the tokenizer's corpus, in this order, and the text entries' inputs, so that
#: they are encoded without decoding the split again. A text builder not named here is built from its scene.
SCENE_TEXT_BUILDERS: tuple[type[TokensBuilder], ...] = (InstructionTokensBuilder, LanguageTargetBuilder)
SCENE_TEXTS: dict[str, Callable[[Scene], str]] = {builder.name: builder.scene_text for builder in SCENE_TEXT_BUILDERS}


@dataclass
class SceneTextsBuilder(TargetBuilder):
    """The texts the split pass collects from a scene (``SCENE_TEXTS``), as UTF-8 bytes.

    Cached, so that a fresh run on a cached split reads them instead of decoding every scene again.

    Attributes:
        builders: text builder name -> its version; a text builder whose text changes bumps its version, and the
            entries of the old texts turn stale.
    """

    name: ClassVar[str] = "scene_texts"
    version: ClassVar[int] = 1
    builders: dict[str, int] = field(default_factory=dict)

    def specs(self) -> dict[str, TensorSpec]:
        """One UTF-8 byte string per text builder."""
        return {name: TensorSpec(("L",), torch.uint8, f"UTF-8 bytes of {name}'s text") for name in self.builders}

    def compute(self, scene: Scene) -> dict[str, Tensor]:
        """Each text of ``scene``."""
        return {name: _utf8(SCENE_TEXTS[name](scene)) for name in self.builders}

    @staticmethod
    def texts(outputs: Mapping[str, Tensor]) -> dict[str, str]:
        """The texts of this builder's outputs."""
        return {name: bytes(value.tolist()).decode() for name, value in outputs.items()}


def _utf8(text: str) -> Tensor:
    return torch.tensor(list(text.encode()), dtype=torch.uint8)


def scene_texts_builder() -> SceneTextsBuilder:
    """The split pass's text builder: every ``SCENE_TEXTS`` builder, at its current version."""
    return SceneTextsBuilder({b.name: b.version for b in SCENE_TEXT_BUILDERS})


def split_pass(
    source: SourceFactory, tokens: list[str], num_poses: int, progress: bool, cache_dir: str | None = None
) -> tuple[dict[str, dict[str, str]], Tensor]:
    """Texts (token -> text builder -> text) and expert trajectories ``(N, T, 3)`` of the split (no sensors read).

    With ``cache_dir`` both come from the feature cache where current (an entry of a changed log or builder is
    stale and rebuilt); only the other scenes are decoded, in token order, and their entries written.
    """
    texts_builder, trajectory_builder = scene_texts_builder(), TrajectoryTargetBuilder(num_poses=num_poses)
    dataset = FeatureDataset(source, [], [texts_builder, trajectory_builder], tokens=tokens, cache_dir=cache_dir)
    texts, trajectories = {}, []
    for token in tqdm(tokens, desc="prepare: texts and expert trajectories", unit="scene", disable=not progress):
        targets = dataset.load(token)[0].targets
        texts[token] = texts_builder.texts({name: targets[name] for name in texts_builder.builders})
        trajectories.append(targets["trajectory"])
    return texts, torch.stack(trajectories)


def _stat_batches(dataset: FeatureDataset, cfg: ILConfig) -> Iterator[dict[str, Tensor]]:
    loader = DataLoader(dataset, batch_size=16, collate_fn=collate, num_workers=cfg.num_workers)
    for batch in tqdm(loader, desc="prepare: normalisation statistics", unit="batch", disable=not cfg.progress):
        yield {**batch.features, **batch.targets}


def prepare(
    cfg: ILConfig,
    model_cfg: ModelConfig,
    source: SourceFactory,
    tokens: list[str],
    features: dict[str, Any],
    targets: dict[str, Any],
    artefacts_dir: Path,
) -> Prepared:
    """Tokenizer, anchors and normalisation statistics of the training split (see the module docstring)."""
    artefacts: dict[str, bytes] = {}
    tokenizer: Path | None = None
    texts: dict[str, dict[str, str]] = {}
    trajectories: Tensor | None = None
    if isinstance(model_cfg, VLAConfig):
        texts, trajectories = split_pass(source, tokens, model_cfg.inputs.num_poses, cfg.progress, cfg.cache_dir)
        if model_cfg.language.enabled:
            corpus = [text for by_builder in texts.values() for text in by_builder.values()]
            artefacts[TOKENIZER_ARTEFACT] = model_tokenizer(model_cfg.language, corpus).to_str().encode()
            tokenizer = write_artefacts(artefacts_dir, artefacts)[TOKENIZER_ARTEFACT]
        anchors = compute_anchors(
            trajectories, model_cfg.planner.num_modes, iterations=cfg.anchor_iterations, seed=cfg.seed
        )
        artefacts[ANCHORS_ARTEFACT] = save_safetensors({"anchors": anchors})
    keep = STATS_KEYS[architecture_of(model_cfg)]
    stats_features = {k: v for k, v in features.items() if k in keep}
    stats_targets = {k: v for k, v in targets.items() if k in keep}
    feature_builders, target_builders = make_builders(stats_features, stats_targets, tokenizer)
    dataset = FeatureDataset(
        source, feature_builders, target_builders, tokens=spread(tokens, cfg.stats_scenes), cache_dir=cfg.cache_dir
    )
    batches = _stat_batches(dataset, cfg)
    stats = compute_ego_mlp_stats(batches) if isinstance(model_cfg, EgoMLPConfig) else compute_normalization(batches)
    fill_text_entries(source, tokens, features, targets, tokenizer, cfg.cache_dir, cfg.progress, texts)
    return Prepared(stats.to_tensors(), artefacts, trajectories)


def fill_text_entries(
    source: SourceFactory,
    tokens: list[str],
    features: dict[str, Any],
    targets: dict[str, Any],
    tokenizer: Path | None,
    cache_dir: str | None,
    progress: bool = False,
    texts: Mapping[str, Mapping[str, str]] | None = None,
) -> int:
    """Cache the entries of the builders that read the tokenizer (and of ``LOG_ORDER_TARGETS``), in token order.

    ``irl-vla cache`` stores text entries under the cache's own tokenizer, so a training run's (trained on the
    split) finds them stale; built during training they, like a new target's, cost a decode of the whole log per
    randomly ordered sample. A text builder's entry is encoded from ``texts`` (token -> builder name -> text, as
    ``SCENE_TEXTS`` reads them) where the token has one, without reading the scene; the rest are loaded in token
    order, where the source decodes each log once. Entries already current are only read.

    Returns:
        How many scenes needed an entry built.
    """
    text_features = {n: p for n, p in features.items() if (p or {}).get("tokenizer") == TOKENIZER_ARTEFACT}
    text_targets = {n: p for n, p in targets.items() if (p or {}).get("tokenizer") == TOKENIZER_ARTEFACT}
    if tokenizer is None:
        text_features, text_targets = {}, {}
    text_targets.update({n: p for n, p in targets.items() if n in LOG_ORDER_TARGETS})
    if cache_dir is None or not (text_features or text_targets):
        return 0
    feature_builders, target_builders = make_builders(text_features, text_targets, tokenizer)
    encoded = [b for b in [*feature_builders, *target_builders] if isinstance(b, TokensBuilder)]
    dataset = FeatureDataset(source, feature_builders, target_builders, tokens=tokens, cache_dir=cache_dir)
    from_scene = FeatureDataset(
        source,
        [b for b in feature_builders if b not in encoded],
        [b for b in target_builders if b not in encoded],
        tokens=tokens,
        cache_dir=cache_dir,
    )
    built = 0
    for token in tqdm(tokens, desc="prepare: text entries", unit="scene", disable=not progress):
        known = (texts or {}).get(token, {})
        if not all(b.name in known for b in encoded):
            _, status = dataset.load(token)
            built += any(s is not LoadStatus.CACHED for s in status.values())
            continue
        written = dataset.store(token, {b.name: b.encode(known[b.name]) for b in encoded})
        _, status = from_scene.load(token)
        built += bool(written) or any(s is not LoadStatus.CACHED for s in status.values())
    return built


def write_artefacts(directory: Path, artefacts: dict[str, bytes]) -> dict[str, Path]:
    """Write ``artefacts`` into ``directory`` atomically (every process may: the bytes are the same)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, content in artefacts.items():
        with atomic_open(directory / name, "wb") as f:
            f.write(content)
        paths[name] = directory / name
    return paths


def _from_checkpoint(ck: Checkpoint) -> Prepared:
    return Prepared(dict(ck.normalization), {name: path.read_bytes() for name, path in ck.artefacts.items()})


def _agent_class(model_cfg: ModelConfig) -> type[PolicyAgent]:
    return EgoMLPAgent if isinstance(model_cfg, EgoMLPConfig) else VLAAgent


def _parameter_line(model: nn.Module) -> str:
    counts = getattr(model, "parameter_counts", None)
    parts = counts() if callable(counts) else {"total": sum(p.numel() for p in model.parameters())}
    return "parameters: " + ", ".join(f"{k} {v:,}" for k, v in parts.items())


def run_il(
    cfg: ILConfig,
    model_doc: dict[str, Any],
    source: SourceFactory,
    val_source: SourceFactory | None = None,
) -> Path:
    """Train a policy by imitation; returns the directory of its last checkpoint.

    Args:
        cfg: the stage's settings.
        model_doc: the model config (``configs/model/<name>.yaml``, resolved).
        source: opens the training split (with a renderer when the model reads sensors).
        val_source: opens the held-out split of the validation hook (``None``: no validation).

    Raises:
        ValueError: naming a bad setting, or the step whose loss was not finite.
        ConfigMismatchError: naming every key where a resumed run's settings differ from its checkpoint's.
    """
    device = resolve_device(cfg.device)
    processes: Processes = init_processes(device, cfg.threads)
    model_cfg = model_config(model_doc)
    features, targets = builder_params(model_cfg, cfg.cameras)
    record = il_record(cfg, model_cfg, features, targets, processes.world_size, device)
    resume = find_resume(cfg, record)
    opened = source()  # the training split, or the union of it and train.extra_splits
    tokens = list(opened.tokens)[: cfg.max_scenes]
    if not tokens:
        raise ValueError(f"train.split {opened.name}: no scenes")
    out = Path(cfg.output_dir)
    made: Prepared | None = None
    if resume is not None:
        prepared = _from_checkpoint(resume)
    else:
        if processes.is_main:
            made = prepare(cfg, model_cfg, source, tokens, features, targets, out / ARTEFACTS_DIR)
        prepared = processes.broadcast(made if made is None else Prepared(made.normalization, made.artefacts))
    sample_weights = None
    if cfg.lateral_balance:
        balance = None
        if processes.is_main:
            trajectories = None if made is None else made.trajectories
            if trajectories is None:  # resumed (or no split pass): read them again, from the cache where current
                num_poses = model_cfg.inputs.num_poses if isinstance(model_cfg, VLAConfig) else model_cfg.num_poses
                trajectories = split_pass(source, tokens, num_poses, cfg.progress, cfg.cache_dir)[1]
            balance = lateral_balance_weights(trajectories, cfg.lateral_edges, cfg.lateral_balance)
            tqdm.write(f"train: {balance.summary()}")
        sample_weights = processes.broadcast(None if balance is None else balance.weights)
    paths = write_artefacts(out / ARTEFACTS_DIR, prepared.artefacts)
    feature_builders, target_builders = make_builders(features, targets, paths.get(TOKENIZER_ARTEFACT))
    torch.manual_seed(cfg.seed)  # the initial weights
    model = build_model(model_cfg)
    set_normalization(model, prepared.normalization)
    if isinstance(model_cfg, VLAConfig):
        model.set_anchors(load_safetensors(prepared.artefacts[ANCHORS_ARTEFACT])["anchors"])
    dataset = FeatureDataset(source, feature_builders, target_builders, tokens=tokens, cache_dir=cfg.cache_dir)
    validate = None
    if val_source is not None and processes.is_main:
        cache_root = cfg.metric_caches(cfg.val_split)
        executor = ExecutorConfig(workers=cfg.workers)
        validator = Validator(val_source, cache_root, cfg.val_max_scenes, executor, cfg.progress)
        agent_class = _agent_class(model_cfg)

        def validate(network: nn.Module) -> dict[str, float]:
            return validator(agent_class(Policy(network, feature_builders)))

    if processes.is_main:
        tqdm.write(
            f"train: {architecture_of(model_cfg)} {getattr(model_cfg, 'size', '')}, {len(tokens)} scenes, "
            f"{processes.world_size} process(es) on {device} in {resolved_precision(cfg.precision, device)}; "
            f"{_parameter_line(model)}"
        )
    trainer = Trainer(
        cfg,
        model,
        dataset,
        record=record,
        normalization=prepared.normalization,
        artefacts=prepared.artefacts,
        validate=validate,
        resume_from=resume,
        processes=processes,
        device=device,
        find_unused_parameters=isinstance(model_cfg, VLAConfig),  # heads of loss terms weighted 0 go unused
        sample_weights=sample_weights,
    )
    return trainer.fit()
