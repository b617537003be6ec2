"""``irl-vla generate [overrides]``: write the embedded splits (synth_navtrain, synth_navtest, synth_navhard)."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from irl_vla.common.command import Command
from irl_vla.common.progress import ProgressBar
from irl_vla.data.two_stage import two_stage_dir
from sim_bridges.embedded.generate import GenerateConfig, generate_split
from sim_bridges.embedded.two_stage import generate_two_stage

COMMAND = Command(
    "generate",
    GenerateConfig,
    key="generate",
    summary="Generate the embedded splits (scenario logs, scenes, maps; two-stage scenes where a split asks) "
    "under data_root; a rerun completes what is missing.",
)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="generate")
def main(cfg: DictConfig) -> None:
    """Generate every configured split (or those in ``generate.only``) and print where they went."""
    gen = COMMAND.load(cfg)
    names = list(gen.splits) if gen.only is None else list(gen.only)
    unknown = sorted(set(names) - set(gen.splits))
    if unknown:
        raise ValueError(f"generate.only: unknown splits {unknown}; configured: {sorted(gen.splits)}")
    run = COMMAND.start(cfg, gen)
    written = []
    for name in names:
        with ProgressBar(name, gen.progress, unit="log") as bar:
            manifest = generate_split(name, gen.splits[name], gen, bar)
        print(json.dumps({"split": name, "path": f"{gen.data_root}/{name}", **manifest.counts()}))
        written.append(Path(gen.data_root) / name)
        if gen.splits[name].two_stage:
            out = two_stage_dir(Path(gen.data_root) / name)
            with ProgressBar(out.name, gen.progress, unit="log") as bar:
                counts = generate_two_stage(
                    Path(gen.data_root) / name,
                    gen.splits[name].two_stage_spec(gen.two_stage),
                    executor=gen.executor(),
                    families_dir=gen.families_dir,
                    progress=bar,
                )
            print(json.dumps({"split": out.name, "path": str(out), **counts}))
            written.append(out)
    run.finish(written)
