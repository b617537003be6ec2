"""``irl-vla pipeline [experiment=<name>] [overrides]``: every stage of IRL-VLA end to end, resumable."""

from __future__ import annotations

import importlib
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from irl_vla.common.command import Command
from irl_vla.pipeline.config import PipelineConfig
from irl_vla.pipeline.results import write_results
from irl_vla.pipeline.runner import run_steps
from irl_vla.pipeline.steps import EVAL_SPLITS, Layout, Step, plan
from tools.cli import COMMANDS

COMMAND = Command(
    "pipeline",
    PipelineConfig,
    key="pipeline",
    summary="Run IRL-VLA end to end: generate the splits, feature caches, stage 1 (the VLA and the ego-status MLP "
    "baseline), labelling, stage 2 (the reward model), stage 3 (PPO), evaluation (one-stage synth_navtest, two-stage "
    "synth_navhard), the reward report and submissions of the final policy; then print one table and write "
    "results.json and results.md. A step whose done-marker is valid is skipped, so a rerun resumes a killed run. "
    "experiment=smoke runs it all at tiny sizes.",
)


@contextmanager
def _hydra_ready() -> Iterator[None]:
    """Hydra's config search initialised (it is inside ``irl-vla pipeline``; outside, for as long as needed)."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with hydra.initialize_config_module(config_module="configs", version_base="1.3"):
        yield


def composed_settings(step: Step) -> str:
    """The step's configuration as ``irl-vla <command> <args>`` composes it (config files, defaults, overrides), YAML.

    Part of the step's config hash, so that an edited config file (``configs/train/ppo.yaml``) re-runs the steps
    whose settings it changes. Interpolations stay unresolved: the text depends on the files, not on the clock.
    """
    module = importlib.import_module(COMMANDS[step.command][0])
    args = getattr(module, "rewrite_args", lambda a: a)(list(step.args))  # train stage=... picks its schema
    with _hydra_ready():
        cfg = hydra.compose(config_name=step.command.replace("-", "_"), overrides=args)
    return OmegaConf.to_yaml(cfg)


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="pipeline")
def main(cfg: DictConfig) -> None:
    """Run (or resume) the experiment's steps; print the results table, the paths and every step's wall time."""
    config = COMMAND.load(cfg)
    output_root = str(cfg.paths.output_root)
    layout = Layout(config.work(output_root), config.data(output_root))
    steps = plan(config, layout)
    unknown = sorted(set(config.extra) - {s.name for s in steps})
    if unknown:
        raise ValueError(f"pipeline.extra: unknown steps {unknown}; steps: {[s.name for s in steps]}")
    # a `kill` of the pipeline stops the running steps too (run_steps stops them on the SystemExit)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"[pipeline] experiment {config.experiment}: {len(steps)} steps in {layout.work}")
    start = time.perf_counter()
    env = {"OMP_NUM_THREADS": str(config.threads), "MKL_NUM_THREADS": str(config.threads)}
    done = run_steps(
        steps,
        layout.steps_dir,
        layout.logs_dir,
        env=env,
        parallel=config.parallel,
        settings=composed_settings,
        rerun=config.rerun,
    )
    submissions = [layout.submission(s) for s in EVAL_SPLITS]
    results, paths = write_results(layout, config.experiment, done, submissions, time.perf_counter() - start)
    print(paths[1].read_text())
    print(f"reward report {results['report']}")
    for path in submissions:
        print(f"submission {path}")
    for path in paths:
        print(f"wrote {path}")
