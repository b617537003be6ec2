"""``irl-vla submit [overrides]``: a NAVSIM submission pickle of an agent on a split, or ``check=<file>``."""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.config import to_dataclass
from sim_bridges.navsim.openscene import source_factory
from sim_bridges.navsim.submission import SubmitConfig, check_submission, run_submit


def rewrite_args(args: list[str]) -> list[str]:
    """``check=<file>`` is short for ``submit.check=<file>``."""
    return [f"submit.{a}" if a.startswith("check=") else a for a in args]


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="submit")
def main(cfg: DictConfig) -> None:
    """Write and check a submission, or check an existing one (exit status 1 when it is not valid)."""
    config = to_dataclass(OmegaConf.to_container(cfg.submit, resolve=True), SubmitConfig, where="submit")
    if config.check is not None:
        summary, problems = check_submission(config.check)
        print(json.dumps(summary))
        for problem in problems:
            print(f"problem: {problem}")
        print(f"{config.check}: {'valid' if not problems else f'{len(problems)} problems'}")
        if problems:
            sys.exit(1)
        return
    source = source_factory(config.source, config.navsim_root, config.split, config.maps_root, config.split_file)
    path, summary = run_submit(config, source)
    print(json.dumps(summary))
    print(f"wrote {path}")
