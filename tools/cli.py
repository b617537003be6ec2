"""``irl-vla``: one console script; each subcommand is a hydra app taking ``key=value`` overrides.

Only commands whose stage exists are listed. ``irl-vla <command> --cfg job`` prints the resolved config,
``irl-vla <command> --help`` what the command does, its config groups and its keys with their defaults (from the
command's ``COMMAND``, ``irl_vla.common.command``); ``--hydra-help`` hydra's own help.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

#: Environment variables that ask for full tracebacks instead of one-line errors.
DEBUG_VARIABLES = ("IRL_VLA_DEBUG", "HYDRA_FULL_ERROR")

#: Exceptions that mean the input (config, override, file, data) is wrong: exit status 2, one line.
INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    HydraException,
    OmegaConfBaseException,
)

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130

#: command -> (module with a hydra ``main``, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("tools.generate", "write the embedded splits (synth_navtrain, synth_navtest, synth_navhard)"),
    "preview": ("tools.preview", "camera, bird's-eye and LiDAR PNGs of scenes of a generated split"),
    "eval": ("tools.eval", "EPDMS of agents on a split: per-token CSV, summary.json, a table"),
    "submit": ("tools.submit", "a NAVSIM submission pickle of an agent on a split (or check=<file>)"),
    "navsim-export": ("tools.navsim_export", "an embedded split as a NAVSIM data root (logs, sensors, nuPlan maps)"),
    "cache": ("tools.cache", "the feature cache of a split (features and targets per scene, safetensors)"),
    "label": ("tools.label", "candidate trajectories of a split scored by the simulator (the reward model's data)"),
    "train": (
        "tools.train",
        "train a policy: stage=il (imitation, model=<tiny|default|base|ego_mlp>) | ppo (RL on the reward model); DDP",
    ),
    "rollout": ("tools.rollout", "drive an agent in closed loop (sim=embedded), live view (viz=true), driving score"),
    "report": ("tools.report", "a reward model against the simulator on a held-out split: report.html, report.json"),
    "pipeline": (
        "tools.pipeline",
        "every stage end to end (generate .. submissions), resumable; experiment=smoke at tiny sizes",
    ),
    "bench": (
        "tools.run_bench",
        "benchmarks, one JSON line per measurement "
        "(suites: core, world, scorer, navsim, data, policy, reward, viewer, ppo, closed_loop)",
    ),
}


def usage() -> str:
    """The command list shown by ``irl-vla --help``."""
    width = max(len(c) for c in COMMANDS)
    lines = [
        "usage: irl-vla <command> [hydra overrides, e.g. key=value] [--cfg job] [--help]",
        "",
        "IRL-VLA suite: imitation, reward world model and PPO for driving VLA policies, on the embedded world",
        "by default. Commands:",
        *(f"  {cmd:<{width}}  {desc}" for cmd, (_, desc) in COMMANDS.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the hydra app of the subcommand; returns the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"irl-vla: unknown command {command!r}\n", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    rest = getattr(module, "rewrite_args", lambda a: a)(rest)  # may choose the command's schema (train stage=)
    if any(a in ("-h", "--help") for a in rest) and hasattr(module, "COMMAND"):
        print(module.COMMAND.help())  # its own groups and keys (hydra's help: --hydra-help)
        return 0
    debug = any(os.environ.get(v, "") not in ("", "0") for v in DEBUG_VARIABLES)
    if any(a in ("--cfg", "-c") for a in rest) and "--resolve" not in rest:
        rest.append("--resolve")  # show values, not interpolations
    # hydra's parser wants overrides before flags: `--cfg job key=value` -> `key=value --cfg job`
    overrides = [a for a in rest if "=" in a and not a.startswith("-")]
    rest = overrides + [a for a in rest if a not in overrides]
    sys.argv = [f"irl-vla {command}", *rest]
    try:
        with _errors_propagate(debug):
            module.main()
    except SystemExit as e:  # hydra exits after --help/--cfg and on usage errors
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print(f"\nirl-vla {command}: interrupted. {_resume_hint(command)}", file=sys.stderr)
        return INTERRUPTED
    except INPUT_ERRORS as e:
        if debug:
            traceback.print_exc()
        print(f"irl-vla {command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with IRL_VLA_DEBUG=1 for the traceback)"
        print(f"irl-vla {command}: internal error: {type(e).__name__}: {_one_line(e)}{hint}", file=sys.stderr)
        return 1
    return 0


#: What a rerun of each command does with work an interrupted run finished (shown after Ctrl-C).
RESUME_HINTS: dict[str, str] = {
    "generate": "Logs already written are kept; rerun the same command to generate the rest.",
    "eval": "Metric caches already built are kept; rerun the same command to resume (scores are recomputed).",
    "navsim-export": "Files already exported are kept; rerun the same command to export the rest.",
    "cache": "Feature-cache entries already written are kept; rerun the same command to build the rest.",
    "train": "Checkpoints already written are kept; rerun the same command to resume from the newest.",
    "label": "Label shards already written are kept; rerun the same command to label the rest.",
    "report": "Label shards of the held-out candidates already written are kept; rerun the same command to resume.",
    "pipeline": "Finished steps are kept (their done-markers); rerun the same command to skip them and resume.",
}


def _resume_hint(command: str) -> str:
    """One sentence on what an interrupted ``command`` kept and how to resume."""
    return RESUME_HINTS.get(command, "Files it had finished writing are complete; partial ones were not written.")


def _one_line(error: BaseException) -> str:
    """The error's message folded onto one line (hydra's messages span several)."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, HydraException) and error.__cause__ is not None:
        text = f"{text} ({error.__cause__})"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class _QuietHydraStderr:
    """Standard error without hydra's "Error executing job with overrides" line (the one-line error says it)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text.startswith("Error executing job with overrides:"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _errors_propagate(debug: bool) -> Iterator[None]:
    """Make hydra raise a command's exceptions instead of printing a trimmed traceback and exiting 1."""
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    stderr = sys.stderr
    if not debug:
        sys.stderr = _QuietHydraStderr(stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr = stderr
        if previous is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


if __name__ == "__main__":
    sys.exit(main())
