"""``irl-vla preview [token=...] [split=...]``: write camera and BEV PNGs of scenes of a generated split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.preview import write_preview
from sim_bridges.embedded.render.sensors import SensorRenderer


@dataclass
class PreviewConfig:
    """Settings of ``irl-vla preview`` (top-level keys: ``token=...``).

    Attributes:
        split: the split directory under ``paths.data_root``.
        token: a scene token; ``None``: scenes of every family (see ``per_family``).
        per_family: with ``token=null``: this many scenes of each family (the middle of a log).
        out_dir: where the PNGs go; ``None``: the run directory ``<output_root>/preview/<split>/<timestamp>``.
    """

    split: str = "synth_navtest"
    token: str | None = None
    per_family: int = 1
    out_dir: str | None = None

    def __post_init__(self) -> None:
        if self.per_family < 1:
            raise ValueError(f"PreviewConfig.per_family: expected >= 1, got {self.per_family}")


COMMAND = Command(
    "preview",
    PreviewConfig,
    split_key="split",
    summary="Write PNGs of scenes of a generated split: every camera side by side and one by one, a bird's-eye "
    "view and the LiDAR BEV feature's channels.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="preview")
def main(cfg: DictConfig) -> None:
    """Preview ``token``, or ``per_family`` scenes of every family of the split."""
    config = COMMAND.load(cfg)
    loader = SceneLoader(Path(cfg.paths.data_root) / config.split)
    run = COMMAND.start(cfg, config)
    out = Path(config.out_dir) if config.out_dir else run.dir
    if config.token:
        picks = [(config.token, loader.entry(config.token).family)]
    else:
        picks, seen = [], {}
        for entry in loader.manifest.logs:
            if seen.get(entry.family, 0) < config.per_family and entry.scene_tokens:
                picks.append((entry.scene_tokens[len(entry.scene_tokens) // 2], entry.family))
                seen[entry.family] = seen.get(entry.family, 0) + 1
    renderer = SensorRenderer()
    written = []
    for token, family in picks:
        scene = loader.get_scene(token)
        paths = write_preview(scene, renderer, out, title=f"{family} | {token}")
        print(f"{family}: {', '.join(str(p) for p in paths)}")
        written += paths
    run.finish(written)
