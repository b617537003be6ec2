"""``irl-vla``: one console script; each subcommand is a hydra app taking ``key=value`` overrides.

Only commands whose stage exists are listed. ``irl-vla <command> --cfg job`` prints the resolved config,
``irl-vla <command> --help`` the hydra help of that command.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module with a hydra ``main``, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("tools.generate", "write the embedded splits (synth_navtrain, synth_navtest, synth_navhard)"),
    "preview": ("tools.preview", "camera and bird's-eye PNGs of scenes of a generated split"),
    "eval": ("tools.eval", "EPDMS of agents on a split: per-token CSV, summary.json, a table"),
    "submit": ("tools.submit", "a NAVSIM submission pickle of an agent on a split (or check=<file>)"),
    "navsim-export": ("tools.navsim_export", "an embedded split as a NAVSIM data root (logs, sensors, nuPlan maps)"),
    "bench": ("tools.run_bench", "benchmarks, one JSON line per measurement (suites: core, world, scorer)"),
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
    rest = getattr(module, "rewrite_args", lambda a: a)(rest)
    if any(a in ("--cfg", "-c") for a in rest) and "--resolve" not in rest:
        rest.append("--resolve")  # show values, not interpolations
    # hydra's parser wants overrides before flags: `--cfg job key=value` -> `key=value --cfg job`
    overrides = [a for a in rest if "=" in a and not a.startswith("-")]
    rest = overrides + [a for a in rest if a not in overrides]
    sys.argv = [f"irl-vla {command}", *rest]
    try:
        module.main()
    except SystemExit as e:  # hydra exits on errors and after --help/--cfg
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
