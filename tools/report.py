"""``irl-vla report report.reward_checkpoint=<dir> [overrides]``: validate a learned reward against the simulator."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.evaluation.reward_report.run import ReportConfig, run_report
from irl_vla.evaluation.reward_report.writer import SUMMARY_FILE
from tools.sources import config_sources

COMMAND = Command(
    "report",
    ReportConfig,
    key="report",
    split_key="split",
    summary="Validate a reward model (report.reward_checkpoint) on a held-out split: label candidates (expert, "
    "vocabulary, perturbations) with the simulator, predict them, and write report.html (self-contained, plots "
    "embedded), report.json and summary.md into the run directory; report.ablation compares more reward "
    "checkpoints, report.policies measures distribution shift on policies' samples.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="report")
def main(cfg: DictConfig) -> None:
    """Build the report; print its Markdown summary and every path written."""
    config = COMMAND.load(cfg)
    if not config.reward_checkpoint:
        raise ValueError("report.reward_checkpoint: name the reward model to validate (irl-vla train stage=rwm)")
    sources = config_sources(config)
    run = COMMAND.start(cfg, config)
    _, paths = run_report(config, sources.split, run.dir)
    print(next(p for p in paths if p.name == SUMMARY_FILE).read_text())
    run.finish(paths)
