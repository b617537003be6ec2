"""``irl-vla eval [overrides]``: EPDMS of agents on a split (per-token CSV, summary.json, a printed table)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.agents.registry import register_agent_group
from irl_vla.common.command import Command, register_group
from irl_vla.evaluation.runner import EvalConfig, run_eval
from irl_vla.scoring.aggregation import EPDMS, PDMS
from tools.sources import config_sources

register_group("aggregation", {"epdms": EPDMS, "pdms": PDMS}, package="eval.aggregation")
register_agent_group()
COMMAND = Command(
    "eval",
    EvalConfig,
    key="eval",
    split_key="split",
    summary="Score agents on a split with the EPDMS scorer (metric caches missing are built first); writes a "
    "per-token scores.csv and a summary.json per agent into the run directory and prints a table.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score the selected agent (``agent=<name>``) or every agent of ``eval.agents``; print the table and paths."""
    config = COMMAND.load(cfg)
    agents = None if cfg.get("agent") is None else [OmegaConf.to_container(cfg.agent, resolve=True)]
    sources = config_sources(config)
    run = COMMAND.start(cfg, config)
    if config.output_dir is None:
        config.output_dir = str(run.dir)
    table, paths = run_eval(config, sources, agents)
    print(table)
    run.finish(paths)
