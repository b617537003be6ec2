"""``irl-vla eval [overrides]``: EPDMS of agents on a split (per-token CSV, summary.json, a printed table)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.evaluation.runner import EvalConfig, run_eval
from tools.sources import scene_sources


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score the selected agent (``agent=<name>``) or every agent of ``eval.agents``; print the table and paths."""
    config = to_dataclass(OmegaConf.to_container(cfg.eval, resolve=True), EvalConfig, where="eval")
    agents = None if cfg.get("agent") is None else [OmegaConf.to_container(cfg.agent, resolve=True)]
    sources = scene_sources(
        config.source,
        config.data_root,
        config.split,
        config.navsim_root,
        config.maps_root,
        config.split_file,
        config.sensor_cache,
    )
    table, paths = run_eval(config, sources, agents)
    print(table)
    for path in paths:
        print(f"wrote {Path(path)}")
