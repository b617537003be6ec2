"""Safe on-disk map format: one JSON document, exact float round trip, no pickle.

Layout::

    {"format": "irl_vla.map", "version": 1, "name": str,
     "layers": {"lane": [{"id": ..., "polygon": {"exterior": [[x, y], ...], "interiors": [...]}, ...}], ...}}

Arrays are nested lists; enums are stored by value. JSON floats are written with ``repr`` and so read back
bit-identical.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from enum import Enum
from typing import Any

import numpy as np
from shapely.errors import GEOSException
from shapely.geometry import Polygon

from irl_vla.common.io import DataFormatError, read_json, write_json
from irl_vla.data.map.map_api import Map
from irl_vla.data.map.map_objects import LAYER_CLASSES, MapLayer, MapObject

FORMAT = "irl_vla.map"
VERSION = 1


def _encode_value(value: Any) -> Any:
    if isinstance(value, Polygon):
        return {
            "exterior": np.asarray(value.exterior.coords).tolist(),
            "interiors": [np.asarray(r.coords).tolist() for r in value.interiors],
        }
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Enum):
        return value.value
    return value


def _decode_value(value: Any, hint: Any) -> Any:
    if hint is Polygon:  # from arrays: shapely then skips a Python loop over the coordinates
        exterior, interiors = value["exterior"], value["interiors"]
        if isinstance(exterior, list) and not exterior:
            if interiors:
                raise ValueError("a polygon with holes but no exterior")
            return Polygon()
        return Polygon(_coords(exterior), [_coords(ring) for ring in interiors])
    if hint is np.ndarray or typing.get_origin(hint) is np.ndarray:
        return np.asarray(value, dtype=np.float64)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


def _coords(ring: Any) -> np.ndarray:
    coords = np.asarray(ring, dtype=np.float64)
    if coords.ndim != 2:
        raise ValueError(f"a polygon ring needs (N, 2) or (N, 3) coordinates, got shape {coords.shape}")
    return coords


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` of a map object class (resolved once: it costs more than decoding an object)."""
    return typing.get_type_hints(cls)


def object_to_dict(obj: MapObject) -> dict[str, Any]:
    """A map object as JSON-compatible data."""
    return {f.name: _encode_value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def object_from_dict(layer: MapLayer, data: dict[str, Any]) -> MapObject:
    """Rebuild a map object of ``layer`` from ``object_to_dict`` output.

    Raises:
        ValueError/TypeError: on missing or malformed fields (wrapped by ``load_map``).
    """
    cls = LAYER_CLASSES[layer]
    hints = _field_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"missing field {f.name!r}")
            continue
        kwargs[f.name] = _decode_value(data[f.name], _array_or(hints[f.name]))
    return cls(**kwargs)


def _array_or(hint: Any) -> Any:
    # ``npt.NDArray[...]`` resolves to ``np.ndarray[...]`` (Python 3.11) or, with numpy's PEP 695 alias on
    # Python >= 3.12, to ``NDArray[...]`` whose alias value is ``np.ndarray[...]``; ``X | None`` is left as is.
    origin = typing.get_origin(hint)
    value = getattr(origin, "__value__", None)  # a ``type X = ...`` alias: look through it
    if value is not None:
        return _array_or(value)
    if origin is np.ndarray:
        return np.ndarray
    return hint


def map_to_dict(map_api: Map) -> dict[str, Any]:
    """The whole map as JSON-compatible data."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": map_api.name,
        "layers": {
            layer.value: [object_to_dict(o) for o in map_api.objects(layer)]
            for layer in MapLayer
            if map_api.objects(layer)
        },
    }


def save_map(map_api: Map, path: str | os.PathLike[str]) -> None:
    """Write ``map_api`` to ``path`` atomically."""
    write_json(path, map_to_dict(map_api), indent=None)


def map_from_dict(data: Any, source: str = "<dict>") -> Map:
    """Rebuild a ``Map`` from ``map_to_dict`` output; errors name ``source``, the layer and the object."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataFormatError(f"{source}: not an {FORMAT} file")
    if data.get("version") != VERSION:
        raise DataFormatError(f"{source}: unsupported {FORMAT} version {data.get('version')!r} (expected {VERSION})")
    objects: list[MapObject] = []
    for layer_name, items in data.get("layers", {}).items():
        try:
            layer = MapLayer(layer_name)
        except ValueError:
            raise DataFormatError(f"{source}: unknown layer {layer_name!r}") from None
        for i, item in enumerate(items):
            try:
                objects.append(object_from_dict(layer, item))
            except (KeyError, ValueError, TypeError, GEOSException) as e:
                oid = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
                raise DataFormatError(f"{source}: {layer_name} {oid!r}: {e}") from e
    try:
        return Map(str(data.get("name", "")), objects)
    except ValueError as e:
        raise DataFormatError(f"{source}: {e}") from e


def load_map(path: str | os.PathLike[str]) -> Map:
    """Read a map written by ``save_map``.

    Raises:
        FileNotFoundError: if the file does not exist.
        DataFormatError: naming the file (and layer/object) on any malformed content.
    """
    return map_from_dict(read_json(path), str(path))
