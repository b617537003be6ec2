"""``irl-vla eval [overrides]``: EPDMS of agents on a split (per-token CSV, summary.json, a printed table)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.evaluation.runner import EvalConfig, run_eval
from sim_bridges.navsim.openscene import source_factory


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score every configured agent and print the table and output paths."""
    config = to_dataclass(OmegaConf.to_container(cfg.eval, resolve=True), EvalConfig, where="eval")
    source = source_factory(config.source, config.navsim_root, config.split, config.maps_root, config.split_file)
    table, paths = run_eval(config, source)
    print(table)
    for path in paths:
        print(f"wrote {Path(path)}")
