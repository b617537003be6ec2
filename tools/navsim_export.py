"""``irl-vla navsim-export [overrides]``: an embedded split as a NAVSIM data root (logs, sensors, nuPlan maps)."""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from irl_vla.common.progress import ProgressBar
from sim_bridges.navsim.export import ExportConfig, export_split
from tools.sources import navsim_renderer


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="navsim_export")
def main(cfg: DictConfig) -> None:
    """Export the split and print where everything went."""
    config = to_dataclass(OmegaConf.to_container(cfg.navsim_export, resolve=True), ExportConfig, where="navsim_export")
    with ProgressBar(f"export {config.split}", config.progress, unit="log") as bar:
        summary = export_split(config, bar, renderer=navsim_renderer(config.image_width))
    print(json.dumps({k: summary[k] for k in ("split", "location", "num_logs", "num_scenes")}))
    for name, path in summary["paths"].items():
        print(f"{name}: {path}")
