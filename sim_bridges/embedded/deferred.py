"""Observations and frames built at their first read.

A closed-loop step returns an observation and a frame; an agent that replans less often than the env steps, or a
scripted one, reads neither. ``EmbeddedEnv`` returns them unbuilt: each holds a function of a snapshot of the
world (``recorder.Snapshot``, plain values captured at that step) and builds itself, once, when one of its
fields is first read. It is then the object an eager build gives (same class, ``isinstance`` holds, same field
values); a field set before the build keeps the value set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from irl_vla.data.scene import AgentInput, Frame


class _Deferred:
    """Mixin of a dataclass whose fields are filled by ``build`` at the first read of one of them.

    Constructed with the dataclass's own arguments it is an ordinary instance (``dataclasses.replace`` works).
    """

    def __init__(self, *args: Any, build: Callable[[], Any] | None = None, **kwargs: Any) -> None:
        if build is None:
            super().__init__(*args, **kwargs)
        else:
            self.__dict__["_build"] = build

    def __getattr__(self, name: str) -> Any:
        # Only called when ordinary lookup fails: a field not built yet (or a name that does not exist).
        if name.startswith("__") or "_build" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        self.materialise()
        return getattr(self, name)

    def __getstate__(self) -> dict[str, Any]:
        self.materialise()  # copies and pickles carry the values, never the function
        return dict(self.__dict__)

    def materialise(self) -> None:
        """Build the fields now (nothing happens when they are built already)."""
        build = self.__dict__.pop("_build", None)
        if build is not None:
            for key, value in vars(build()).items():
                self.__dict__.setdefault(key, value)

    @property
    def built(self) -> bool:
        """Whether the fields have been built."""
        return "_build" not in self.__dict__


class DeferredAgentInput(_Deferred, AgentInput):
    """An ``AgentInput`` built at its first read (``build``: a function returning the ``AgentInput``)."""


class DeferredFrame(_Deferred, Frame):
    """A ``Frame`` built at its first read (``build``: a function returning the ``Frame``)."""
