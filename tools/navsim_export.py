"""``irl-vla navsim-export [overrides]``: an embedded split as a NAVSIM data root (logs, sensors, nuPlan maps)."""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.common.progress import ProgressBar
from sim_bridges.navsim.export import ExportConfig, export_split
from tools.sources import navsim_renderer

COMMAND = Command(
    "navsim_export",
    ExportConfig,
    key="navsim_export",
    split_key="split",
    summary="Write an embedded split as a NAVSIM data root (OpenScene logs, sensor blobs, nuPlan maps, navsim's "
    "split file); a rerun exports only missing or changed logs.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="navsim_export")
def main(cfg: DictConfig) -> None:
    """Export the split and print where everything went."""
    config = COMMAND.load(cfg)
    run = COMMAND.start(cfg, config)
    with ProgressBar(f"export {config.split}", config.progress, unit="log") as bar:
        summary = export_split(config, bar, renderer=navsim_renderer(config.image_width))
    print(json.dumps({k: summary[k] for k in ("split", "location", "num_logs", "num_scenes")}))
    for name, path in summary["paths"].items():
        print(f"{name}: {path}")
    run.finish()
