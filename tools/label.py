"""``irl-vla label [overrides]``: candidate trajectories of a split's scenes scored by the simulator (stage 2)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.labeling.pipeline import LabelConfig, run_label
from tools.sources import config_sources

COMMAND = Command(
    "label",
    LabelConfig,
    key="label",
    split_key="split",
    summary="Label candidate trajectories for the reward model: per scene the expert, a K-means vocabulary of the "
    "split's trajectories, stage-1 policy samples (label.policy_checkpoint) and perturbations, each scored by the "
    "fast scorer (every sub-score and EPDMS, human filter, EC against the previous frame). Sharded npz under "
    "label.output_dir; a rerun resumes.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="label")
def main(cfg: DictConfig) -> None:
    """Label the split's scenes; print what was done and where."""
    config = COMMAND.load(cfg)
    run = COMMAND.start(cfg, config)
    sources = config_sources(config)
    report = run_label(config, sources.split)
    print(report.summary())
    run.finish([report.label_dir])
