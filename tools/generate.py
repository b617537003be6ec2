"""``irl-vla generate [overrides]``: write the embedded splits (synth_navtrain, synth_navtest, synth_navhard)."""

from __future__ import annotations

import json

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from irl_vla.common.config import to_dataclass
from sim_bridges.embedded.generate import GenerateConfig, generate_split


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="generate")
def main(cfg: DictConfig) -> None:
    """Generate every configured split (or those in ``generate.only``) and print where they went."""
    gen = to_dataclass(OmegaConf.to_container(cfg.generate, resolve=True), GenerateConfig, where="generate")
    names = list(gen.splits) if gen.only is None else list(gen.only)
    unknown = sorted(set(names) - set(gen.splits))
    if unknown:
        raise ValueError(f"generate.only: unknown splits {unknown}; configured: {sorted(gen.splits)}")
    for name in names:
        bar = tqdm(desc=name, unit="log", disable=not gen.progress)

        def progress(done: int, total: int, bar: tqdm = bar) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        manifest = generate_split(name, gen.splits[name], gen, progress)
        bar.close()
        print(json.dumps({"split": name, "path": f"{gen.data_root}/{name}", **manifest.counts()}))
