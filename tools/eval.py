"""``irl-vla eval [overrides]``: EPDMS of agents on a split (per-token CSV, summary.json, a printed table)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.evaluation.runner import EvalConfig, run_eval


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Score every configured agent and print the table and output paths."""
    config = to_dataclass(OmegaConf.to_container(cfg.eval, resolve=True), EvalConfig, where="eval")
    table, paths = run_eval(config)
    print(table)
    for path in paths:
        print(f"wrote {Path(path)}")
