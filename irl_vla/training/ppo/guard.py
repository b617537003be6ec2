"""No simulator in the loop: while a PPO update runs, any call into the EPDMS scorer raises.

PPO learns from the reward model alone; the simulator's scorer is for evaluation on held-out scenes. The guard
wraps the scoring entry points of ``Scorer`` and every subclass (``score``, ``simulate``, ``geometric_metrics``,
``reference_states``, ``reference_metrics``, ``traffic``) for the duration of a ``with no_simulator():`` block,
so a call made by mistake, however deep, fails loudly instead of quietly putting the simulator into training.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from irl_vla.scoring.scorer import Scorer

#: The scorer methods the guard blocks.
GUARDED_METHODS = ("score", "simulate", "geometric_metrics", "reference_states", "reference_metrics", "traffic")


class SimulatorInLoopError(RuntimeError):
    """The scorer was called during a PPO update (PPO must learn from the reward model alone)."""


def _scorer_classes() -> list[type]:
    found, todo = [], [Scorer]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _blocked(cls: type, name: str) -> Callable[..., Any]:
    @functools.wraps(getattr(cls, name))
    def raise_instead(*args: Any, **kwargs: Any) -> Any:
        raise SimulatorInLoopError(
            f"{cls.__name__}.{name} was called during a PPO update: stage 3 learns from the reward model only "
            "(the simulator's scorer is for evaluation on held-out scenes, outside the update)"
        )

    return raise_instead


@contextmanager
def no_simulator() -> Iterator[None]:
    """Within the block, every scorer entry point raises ``SimulatorInLoopError``; restored on exit."""
    saved: list[tuple[type, str, Any]] = []
    try:
        for cls in _scorer_classes():
            for name in GUARDED_METHODS:
                if name in vars(cls):
                    saved.append((cls, name, vars(cls)[name]))
                    setattr(cls, name, _blocked(cls, name))
        yield
    finally:
        for cls, name, original in reversed(saved):
            setattr(cls, name, original)
