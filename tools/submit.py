"""``irl-vla submit [overrides]``: a NAVSIM submission pickle of an agent on a split, or ``check=<file>``."""

from __future__ import annotations

import json
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.agents.registry import register_agent_group
from irl_vla.common.command import Command
from sim_bridges.navsim.submission import SubmitConfig, check_submission, run_submit, tokens_to_check
from tools.sources import config_sources

register_agent_group()
COMMAND = Command(
    "submit",
    SubmitConfig,
    key="submit",
    split_key="split",
    summary="Write a NAVSIM leaderboard submission of an agent's plans on a split into the run directory and check "
    "it; `check=<file>` validates an existing submission against the split's tokens instead.",
)


def rewrite_args(args: list[str]) -> list[str]:
    """``check=<file>`` is short for ``submit.check=<file>``."""
    return [f"submit.{a}" if a.startswith("check=") else a for a in args]


def check(config: SubmitConfig) -> int:
    """Check ``config.check`` against its split's tokens; print what is wrong; the exit status (1: not valid)."""
    assert config.check is not None
    expected, where = tokens_to_check(config)
    summary, problems = check_submission(config.check, expected)
    print(json.dumps(summary))
    for problem in problems:
        print(f"problem: {problem}")
    if expected is None:
        print(f"completeness NOT checked: {where}; only the format was checked")
    else:
        print(f"tokens checked against {where}")
    print(f"{config.check}: {'valid' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="submit")
def main(cfg: DictConfig) -> None:
    """Write and check a submission, or check an existing one (exit status 1 when it is not valid)."""
    config = COMMAND.load(cfg)
    if config.check is not None:
        status = check(config)
        if status:
            sys.exit(status)
        return
    assert config.split is not None
    agent = None if cfg.get("agent") is None else OmegaConf.to_container(cfg.agent, resolve=True)
    sources = config_sources(config)
    run = COMMAND.start(cfg, config)
    if config.output is None:
        config.output = str(run.dir / "submission.pkl")
    path, summary = run_submit(config, sources, agent)
    print(json.dumps(summary))
    run.finish([path])
