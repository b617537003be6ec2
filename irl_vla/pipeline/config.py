"""Settings of ``irl-vla pipeline``: split sizes, stage sizes and where the run lives (``configs/experiment``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from irl_vla.common.config import require_at_least


@dataclass
class PipelineConfig:
    """One experiment of the whole pipeline (``configs/experiment/<name>.yaml`` sets what differs).

    Attributes:
        experiment: the experiment's name (its folder under ``<output_root>/pipeline``).
        work_dir: where every step writes (``None``: ``<output_root>/pipeline/<experiment>``).
        data_dir: the splits, caches and labels of the experiment (``None``: ``<work_dir>/data``); its own, so
            that split sizes chosen for the pipeline never mix with a full ``irl-vla generate``.
        families: scenario families generated (``None``: all).
        train_logs_per_family: logs per family of ``synth_navtrain``.
        test_logs_per_family: logs per family of ``synth_navtest``.
        hard_logs_per_family: logs per hard family of ``synth_navhard``.
        num_log_frames: frames per generated log.
        two_stage_pairs: stage-2 scenes re-simulated per stage-1 scene of ``synth_navhard``.
        model: the stage-1 VLA size (``configs/model``: tiny | default | base).
        reward_model: the reward model (``configs/model``: reward_tiny | reward_default).
        il_steps: optimiser steps of the stage-1 VLA.
        ego_mlp_steps: optimiser steps of the ego-status MLP baseline.
        batch_size: stage-1 batch size (the ego-status MLP uses it too).
        label_scenes: training scenes labelled for the reward model.
        label_val_scenes: held-out ``synth_navtest`` scenes labelled for its validation.
        vocabulary_size: K-means vocabulary entries among the candidates of a scene.
        rwm_steps: optimiser steps of the reward model.
        ppo_steps: PPO iterations of stage 3.
        ppo_scenes: training scenes PPO draws from.
        val_scenes: held-out scenes validated during training (stage 1, 2 and 3).
        report_scenes: held-out scenes of the reward report.
        eval_scenes: scenes per evaluation (``None``: the whole split).
        best_of_n_draws: stochastic denoising chains of the best-of-N agent.
        threads: torch threads per training process.
        workers: worker processes of the parallel steps (generation, caches, labels, evaluation).
        parallel: steps run at the same time (a step starts once every step it depends on has finished).
        seed: seed of every step.
        extra: more overrides per step name (``{il: [train.batch_size=8]}``), appended to the step's command.
        rerun: steps to run again from scratch although their done-marker is valid (``[ppo]``), with every step
            that reads them; for a change of code (an edited config file is seen without it).
    """

    experiment: str = "default"
    work_dir: str | None = None
    data_dir: str | None = None
    families: list[str] | None = None
    train_logs_per_family: int = 4
    test_logs_per_family: int = 2
    hard_logs_per_family: int = 2
    num_log_frames: int = 40
    two_stage_pairs: int = 2
    model: str = "tiny"
    reward_model: str = "reward_default"
    il_steps: int = 600
    ego_mlp_steps: int = 600
    batch_size: int = 16
    label_scenes: int = 256
    label_val_scenes: int = 64
    vocabulary_size: int = 128
    rwm_steps: int = 600
    ppo_steps: int = 20
    ppo_scenes: int = 128
    val_scenes: int = 16
    report_scenes: int = 64
    eval_scenes: int | None = None
    best_of_n_draws: int = 2
    threads: int = 1
    workers: int = 2
    parallel: int = 2
    seed: int = 0
    extra: dict[str, list[str]] = field(default_factory=dict)
    rerun: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_at_least(
            self,
            (
                "train_logs_per_family",
                "test_logs_per_family",
                "hard_logs_per_family",
                "two_stage_pairs",
                "il_steps",
                "ego_mlp_steps",
                "batch_size",
                "label_scenes",
                "label_val_scenes",
                "vocabulary_size",
                "rwm_steps",
                "ppo_steps",
                "ppo_scenes",
                "val_scenes",
                "report_scenes",
                "best_of_n_draws",
                "threads",
                "workers",
                "parallel",
            ),
            1,
        )
        if not self.experiment or "/" in self.experiment:
            raise ValueError(f"pipeline.experiment: a folder name is needed, got {self.experiment!r}")

    def work(self, output_root: str) -> Path:
        """The experiment's folder."""
        return Path(self.work_dir) if self.work_dir else Path(output_root) / "pipeline" / self.experiment

    def data(self, output_root: str) -> Path:
        """The experiment's data root."""
        return Path(self.data_dir) if self.data_dir else self.work(output_root) / "data"
