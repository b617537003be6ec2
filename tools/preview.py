"""``irl-vla preview [token=...] [split=...]``: write camera and BEV PNGs of scenes of a generated split."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.preview import write_preview
from sim_bridges.embedded.render.sensors import SensorRenderer


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="preview")
def main(cfg: DictConfig) -> None:
    """Preview ``token``, or ``per_family`` scenes of every family of the split."""
    loader = SceneLoader(Path(cfg.paths.data_root) / cfg.split)
    out = Path(cfg.out_dir) if cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    if cfg.token:
        picks = [(str(cfg.token), loader.entry(str(cfg.token)).family)]
    else:
        picks, seen = [], {}
        for entry in loader.manifest.logs:
            if seen.get(entry.family, 0) < int(cfg.per_family) and entry.scene_tokens:
                picks.append((entry.scene_tokens[len(entry.scene_tokens) // 2], entry.family))
                seen[entry.family] = seen.get(entry.family, 0) + 1
    renderer = SensorRenderer()
    for token, family in picks:
        scene = loader.get_scene(token)
        paths = write_preview(scene, renderer, out, title=f"{family} | {token}")
        print(f"{family}: {', '.join(str(p) for p in paths)}")
