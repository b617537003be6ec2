"""Pickles in NAVSIM's formats: read with a restricted unpickler, written so navsim's numpy 1.x can load them.

OpenScene logs and NAVSIM submissions are pickles, and unpickling runs whatever the file names, so the suite
never calls ``pickle.load`` on them: ``load`` admits only the globals those files contain (numpy's array and
scalar reconstructors, and for submissions navsim's ``Trajectory`` and nuPlan's ``TrajectorySampling``) and
refuses anything else with an error that names the file and the global.

Writing: numpy 2 pickles arrays through ``numpy._core.*``, a module numpy 1.x (navsim pins 1.23) does not have;
``dumps`` writes those globals under their ``numpy.core.*`` names, which both numpy generations resolve
(``reference/nuplan_openscene_formats.md`` §2.6), and writes the suite's stand-in classes under the module
paths of the navsim/nuPlan classes they mirror (§4.2).
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from irl_vla.common.io import DataFormatError

# OpenScene's generator writes protocol 5; the Python pickler's protocol-5 buffer path memoizes temporaries
# (ids can repeat), so arrays are written the protocol-4 way (``_reconstruct``), which every reader takes.
PROTOCOL = 4

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # type: ignore[index]
_SCALAR = np.float64(0.0).__reduce__()[0]  # type: ignore[index]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # type: ignore[index]

#: numpy globals of array/scalar pickles, under the names numpy 1.x knows (what ``dumps`` writes).
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
#: The same functions as numpy >= 2 names them (files written by others under numpy 2).
_NUMPY2_ALIASES = {
    (module.replace("numpy.core", "numpy._core"), name): obj for (module, name), obj in NUMPY_GLOBALS.items()
}
#: Globals an OpenScene log pickle may name (protocol <= 2 pickles use ``_codecs.encode`` for bytes).
LOG_GLOBALS: dict[tuple[str, str], Any] = {
    **NUMPY_GLOBALS,
    **_NUMPY2_ALIASES,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, allowed: Mapping[tuple[str, str], Any], source: str) -> None:
        super().__init__(file)
        self.allowed = allowed
        self.source = source
        self.seen: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key not in self.allowed:
            raise DataFormatError(
                f"{self.source}: refusing to unpickle global {module}.{name} (only "
                f"{', '.join(sorted({m for m, _ in self.allowed}))} globals are allowed in this file)"
            )
        self.seen.add(key)
        return self.allowed[key]


def loads(data: bytes, allowed: Mapping[tuple[str, str], Any], source: str = "<bytes>") -> Any:
    """Unpickle ``data`` admitting only the globals in ``allowed`` (name -> object it resolves to).

    Raises:
        DataFormatError: naming ``source`` and the refused global, or when the data is not a valid pickle.
    """
    unpickler = _RestrictedUnpickler(io.BytesIO(data), allowed, source)  # type: ignore[arg-type]
    try:
        return unpickler.load()
    except DataFormatError:
        raise
    except Exception as e:
        raise DataFormatError(f"{source}: not a readable pickle ({type(e).__name__}: {e})") from None


def load(path: str | os.PathLike[str], allowed: Mapping[tuple[str, str], Any]) -> Any:
    """Unpickle the file at ``path`` admitting only the globals in ``allowed``.

    Raises:
        FileNotFoundError: naming the file.
        DataFormatError: naming the file and the refused global, or when the file is not a valid pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return loads(path.read_bytes(), allowed, str(path))


def globals_in(data: bytes, allowed: Mapping[tuple[str, str], Any]) -> set[tuple[str, str]]:
    """The globals a pickle names (it is loaded with the restricted unpickler to find them)."""
    unpickler = _RestrictedUnpickler(io.BytesIO(data), allowed, "<bytes>")  # type: ignore[arg-type]
    unpickler.load()
    return unpickler.seen


class _CompatPickler(pickle._Pickler):  # type: ignore[name-defined,misc]  # the Python pickler can be extended
    """Writes chosen objects (functions, classes) as globals under given names."""

    def __init__(self, file: io.BytesIO, names: Mapping[int, tuple[str, str]]) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self.names = names

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        target = self.names.get(id(obj))
        if target is None:
            super().save(obj, save_persistent_id)
            return
        memo = self.memo.get(id(obj))
        if memo is not None:
            self.write(self.get(memo[0]))
            return
        module, name = target
        self.save(module)
        self.save(name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)


def dumps(obj: Any, classes: Mapping[type, tuple[str, str]] | None = None) -> bytes:
    """Pickle ``obj`` with numpy globals under ``numpy.core.*`` names and ``classes`` under the given names.

    Args:
        obj: builtins, numpy arrays and scalars, and instances of ``classes``.
        classes: stand-in class -> (module, qualified name) it is written as.
    """
    names: dict[int, tuple[str, str]] = {id(o): key for key, o in NUMPY_GLOBALS.items()}
    for cls, target in (classes or {}).items():
        names[id(cls)] = target
    buffer = io.BytesIO()
    _CompatPickler(buffer, names).dump(obj)
    return buffer.getvalue()
