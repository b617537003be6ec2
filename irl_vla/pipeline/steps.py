"""The steps of ``irl-vla pipeline``: each an ``irl-vla`` command with its overrides, inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from irl_vla.common.config_source import DataKind, split_data_dir
from irl_vla.pipeline.config import PipelineConfig

#: Splits the pipeline generates, in order.
TRAIN, TEST, HARD = "synth_navtrain", "synth_navtest", "synth_navhard"
#: The evaluation splits: one-stage synth_navtest, two-stage synth_navhard.
EVAL_SPLITS = (TEST, HARD)
#: The baselines ``irl-vla eval`` scores in one run (configs/agent names).
BASELINES = ("constant_velocity", "human", "pdm_closed")


@dataclass(frozen=True)
class Step:
    """One step: ``irl-vla <command> <args...>``.

    Attributes:
        name: the step's name (its done-marker, its log, ``pipeline.extra.<name>``).
        command: the ``irl-vla`` subcommand.
        args: its hydra overrides.
        depends: names of the steps whose outputs it reads (a re-run of one re-runs this).
        outputs: paths that must exist once it finished (checked before it is skipped).
        clean: paths removed before it re-runs with other settings or inputs (its own outputs only).
    """

    name: str
    command: str
    args: tuple[str, ...]
    depends: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()
    clean: tuple[Path, ...] = field(default=())


@dataclass(frozen=True)
class Layout:
    """Where the steps write: the experiment folder and its data root."""

    work: Path
    data: Path

    @property
    def il(self) -> Path:
        """Stage 1 (the VLA) run directory."""
        return self.work / "train" / "il"

    @property
    def ego_mlp(self) -> Path:
        """The ego-status MLP baseline's run directory."""
        return self.work / "train" / "ego_mlp"

    @property
    def rwm(self) -> Path:
        """Stage 2 (the reward model) run directory."""
        return self.work / "train" / "rwm"

    @property
    def ppo(self) -> Path:
        """Stage 3 (PPO) run directory."""
        return self.work / "train" / "ppo"

    @property
    def ppo_policy(self) -> Path:
        """Stage 3's exported policy (what ``agent=vla`` and ``irl-vla submit`` read)."""
        return self.ppo / "policy"

    @property
    def vocabulary(self) -> Path:
        """The training labels' trajectory vocabulary."""
        return self.labels(TRAIN) / "vocabulary.npy"

    @property
    def report(self) -> Path:
        """The reward report's folder (report.html, report.json, summary.md)."""
        return self.work / "report"

    @property
    def steps_dir(self) -> Path:
        """Done-markers of the steps."""
        return self.work / "steps"

    @property
    def logs_dir(self) -> Path:
        """Each step's output, one log per step."""
        return self.work / "logs"

    def labels(self, split: str) -> Path:
        """Labelled candidates of ``split``."""
        return split_data_dir(self.data, DataKind.LABELS, split)

    def features(self, split: str) -> Path:
        """Feature cache of ``split``."""
        return split_data_dir(self.data, DataKind.FEATURES, split)

    def metric_cache(self, split: str) -> Path:
        """Metric caches of ``split``."""
        return split_data_dir(self.data, DataKind.METRIC_CACHE, split)

    def eval_dir(self, split: str, row: str) -> Path:
        """Evaluation run of one table row (or the baselines) on ``split``."""
        return self.work / "eval" / split / row

    def submission(self, split: str) -> Path:
        """The final policy's submission pickle of ``split``."""
        return self.work / "submissions" / f"{split}.pkl"


#: Table rows evaluated by the pipeline beyond the baselines: row -> (agent, summary folder name).
POLICY_ROWS = {
    "ego_mlp": "ego_mlp",
    "stage1": "vla",
    "stage1_best_of_n": "vla_best_of_n",
    "stage3": "vla",
}


def _list(values: list[str] | tuple[str, ...]) -> str:
    """A hydra list override value."""
    return "[" + ",".join(str(v) for v in values) + "]"


def plan(cfg: PipelineConfig, layout: Layout) -> list[Step]:
    """Every step of the pipeline in the order they run (each after the steps it depends on)."""
    d = layout.data
    common = (
        f"paths.data_root={d}",
        f"paths.output_root={layout.work / 'runs'}",
        f"run.workers={cfg.workers}",
        f"run.seed={cfg.seed}",
        "run.progress=false",
    )
    gen = [
        f"generate.splits.{TRAIN}.logs_per_family={cfg.train_logs_per_family}",
        f"generate.splits.{TEST}.logs_per_family={cfg.test_logs_per_family}",
        f"generate.splits.{HARD}.logs_per_family={cfg.hard_logs_per_family}",
        f"generate.num_log_frames={cfg.num_log_frames}",
        f"generate.two_stage.pairs_per_group={cfg.two_stage_pairs}",
        f"generate.splits.{TRAIN}.two_stage=false",  # the experiment's VLA trains on the stage-1 scenes only
    ]
    if cfg.families is not None:
        gen.append(f"generate.families={_list(cfg.families)}")
    splits = (d / TRAIN, d / TEST, d / HARD, d / f"{HARD}_two_stage")
    train_common = (f"train.threads={cfg.threads}", f"train.val_max_scenes={cfg.val_scenes}")
    steps = [
        Step("generate", "generate", (*gen,), (), splits, splits),
        Step(
            "cache_train",
            "cache",
            (f"cache.split={TRAIN}",),
            ("generate",),
            (layout.features(TRAIN),),
            (layout.features(TRAIN),),
        ),
        Step(
            "cache_test",
            "cache",
            (f"cache.split={TEST}",),
            ("generate",),
            (layout.features(TEST),),
            (layout.features(TEST),),
        ),
    ]
    for name, model, steps_n, out in (
        ("il", cfg.model, cfg.il_steps, layout.il),
        ("ego_mlp", "ego_mlp", cfg.ego_mlp_steps, layout.ego_mlp),
    ):
        args = (
            "stage=il",
            f"model={model}",
            f"train.max_steps={steps_n}",
            f"train.batch_size={cfg.batch_size}",
            f"train.output_dir={out}",
            "train.extra_splits=[]",  # the stage-1 scenes only, whatever the model's recipe trains on
            *train_common,
        )
        steps.append(Step(name, "train", args, ("cache_train",), (out,), (out,)))
    steps += [
        Step(
            "label",
            "label",
            (
                f"label.split={TRAIN}",
                f"label.max_scenes={cfg.label_scenes}",
                f"label.vocabulary_size={cfg.vocabulary_size}",
                f"label.policy_checkpoint={layout.il}",
                f"label.output_dir={layout.labels(TRAIN)}",
                f"label.metric_cache_dir={layout.metric_cache(TRAIN)}",
            ),
            ("generate", "il"),
            (layout.vocabulary,),
            (layout.labels(TRAIN),),
        ),
        Step(
            "label_val",
            "label",
            (
                f"label.split={TEST}",
                f"label.max_scenes={cfg.label_val_scenes}",
                f"label.vocabulary_size={cfg.vocabulary_size}",
                f"label.vocabulary_path={layout.vocabulary}",
                f"label.output_dir={layout.labels(TEST)}",
                f"label.metric_cache_dir={layout.metric_cache(TEST)}",
            ),
            ("generate", "label"),
            (layout.labels(TEST),),
            (layout.labels(TEST),),
        ),
        Step(
            "rwm",
            "train",
            (
                "stage=rwm",
                f"model={cfg.reward_model}",
                f"train.max_steps={cfg.rwm_steps}",
                f"train.output_dir={layout.rwm}",
                f"train.labels_dir={layout.labels(TRAIN)}",
                f"train.val_labels_dir={layout.labels(TEST)}",
                *train_common,
            ),
            ("cache_train", "cache_test", "label", "label_val"),
            (layout.rwm,),
            (layout.rwm,),
        ),
        Step(
            "ppo",
            "train",
            (
                "stage=ppo",
                f"train.init_checkpoint={layout.il}",
                f"train.reward_checkpoint={layout.rwm}",
                f"train.max_steps={cfg.ppo_steps}",
                f"train.max_scenes={cfg.ppo_scenes}",
                f"train.output_dir={layout.ppo}",
                *train_common,
            ),
            ("cache_train", "il", "rwm"),
            (layout.ppo_policy,),
            (layout.ppo,),
        ),
    ]
    limit = () if cfg.eval_scenes is None else (f"eval.max_scenes={cfg.eval_scenes}",)
    agents = {
        "ego_mlp": ("agent=ego_mlp", f"agent.checkpoint={layout.ego_mlp}"),
        "stage1": ("agent=vla", f"agent.checkpoint={layout.il}"),
        "stage1_best_of_n": (
            "agent=vla_best_of_n",
            f"agent.checkpoint={layout.il}",
            f"agent.reward_checkpoint={layout.rwm}",
            f"agent.draws={cfg.best_of_n_draws}",
        ),
        "stage3": ("agent=vla", f"agent.checkpoint={layout.ppo_policy}"),
    }
    needs = {"ego_mlp": ("ego_mlp",), "stage1": ("il",), "stage1_best_of_n": ("il", "rwm"), "stage3": ("ppo",)}
    for split in EVAL_SPLITS:
        out = layout.eval_dir(split, "baselines")
        steps.append(
            Step(
                f"eval_{split}_baselines",
                "eval",
                (f"eval.split={split}", f"eval.agents={_list(BASELINES)}", f"eval.output_dir={out}", *limit),
                ("generate",),
                tuple(out / a / "summary.json" for a in BASELINES),
                (out,),
            )
        )
        for row, agent_args in agents.items():
            out = layout.eval_dir(split, row)
            steps.append(
                Step(
                    f"eval_{split}_{row}",
                    "eval",
                    (f"eval.split={split}", f"eval.output_dir={out}", *agent_args, *limit),
                    ("generate", *needs[row]),
                    (out / POLICY_ROWS[row] / "summary.json",),
                    (out,),
                )
            )
    steps.append(
        Step(
            "report",
            "report",
            (
                f"report.reward_checkpoint={layout.rwm}",
                f"report.policies={_list([str(layout.il), str(layout.ppo_policy)])}",
                f"report.split={TEST}",
                f"report.max_scenes={cfg.report_scenes}",
                f"report.vocabulary={layout.vocabulary}",
                f"report.labels_dir={layout.work / 'report_labels' / TEST}",
                f"report.output_dir={layout.report}",
            ),
            ("generate", "cache_test", "il", "label", "rwm", "ppo"),
            (layout.report / "report.json",),
            (layout.report, layout.work / "report_labels"),
        )
    )
    for split in EVAL_SPLITS:
        path = layout.submission(split)
        steps.append(
            Step(
                f"submit_{split}",
                "submit",
                (
                    "agent=vla",
                    f"agent.checkpoint={layout.ppo_policy}",
                    f"submit.split={split}",
                    f"submit.output={path}",
                ),
                ("generate", "ppo"),
                (path,),
                (path,),
            )
        )
    return [
        Step(s.name, s.command, (*s.args, *common, *cfg.extra.get(s.name, [])), s.depends, s.outputs, s.clean)
        for s in steps
    ]
