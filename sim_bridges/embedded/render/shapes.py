"""What the cameras draw: objects as a few boxes each (shapes a policy can tell apart), as arrays.

An annotated object is one box in the logs; a camera draws it as its class's parts: a vehicle as body, cabin
(glass) and axles, a pedestrian as legs, torso and head, a cyclist as a bicycle (a low, long, thin slab) with
its rider, a cone as base and two tapering tiers, a barrier in red and white, a works sign as post and board.
A ``BoxSet`` holds every box of a frame as arrays (ego frame), with the object each belongs to (drawing order)
and, for signal heads, the lit lamp.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass, BoundingBoxIndex

FloatArray = npt.NDArray[np.float64]

CAR_COLOURS = np.array(
    [(180, 30, 30), (30, 60, 150), (200, 200, 205), (40, 40, 45), (120, 125, 130), (20, 100, 60), (230, 230, 235)]
)
CLOTHES = np.array([(200, 120, 60), (60, 90, 170), (170, 40, 60), (230, 200, 60), (60, 140, 80), (240, 240, 240)])
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    AgentClass.PEDESTRIAN.value: (200, 120, 60),
    AgentClass.BICYCLE.value: (40, 160, 200),
    AgentClass.TRAFFIC_CONE.value: (255, 110, 0),
    AgentClass.BARRIER.value: (210, 40, 40),
    AgentClass.CZONE_SIGN.value: (255, 170, 0),
    AgentClass.GENERIC_OBJECT.value: (130, 100, 70),
}

CORNER_SIGNS = np.array([[(i & 1) * 2 - 1, (i >> 1 & 1) * 2 - 1, (i >> 2 & 1) * 2 - 1] for i in range(8)], float)

#: Fixed colours of parts (``OWN`` takes the object's colour).
OWN = "own"
ROLE_COLOURS: dict[str, tuple[int, int, int]] = {
    "glass": (45, 55, 70),
    "tyre": (20, 20, 22),
    "skin": (225, 180, 150),
    "trousers": (45, 45, 60),
    "frame": (30, 30, 35),
    "white": (235, 235, 235),
    "post": (120, 120, 125),
}

# Parts of each class: (centre x, centre y, bottom z, length, width, height) as fractions of the object's
# length, width and height (x, y from the box centre, z from the ground), and the part's colour role.
_PARTS: dict[str, list[tuple[tuple[float, float, float, float, float, float], str]]] = {
    AgentClass.VEHICLE.value: [
        ((0.0, 0.0, 0.14, 1.0, 1.0, 0.44), OWN),  # body
        ((-0.08, 0.0, 0.58, 0.5, 0.86, 0.42), "glass"),  # cabin, set back from the bonnet
        ((0.31, 0.0, 0.0, 0.16, 1.02, 0.26), "tyre"),  # front axle
        ((-0.31, 0.0, 0.0, 0.16, 1.02, 0.26), "tyre"),  # rear axle
    ],
    AgentClass.PEDESTRIAN.value: [
        ((0.0, 0.0, 0.0, 0.4, 0.55, 0.5), "trousers"),  # legs
        ((0.0, 0.0, 0.5, 0.5, 0.85, 0.33), OWN),  # torso
        ((0.0, 0.0, 0.86, 0.38, 0.38, 0.14), "skin"),  # head
    ],
    AgentClass.BICYCLE.value: [
        ((0.0, 0.0, 0.0, 1.0, 0.15, 0.55), "frame"),  # wheels and frame
        ((-0.08, 0.0, 0.5, 0.3, 0.65, 0.35), OWN),  # rider's body
        ((-0.02, 0.0, 0.87, 0.13, 0.33, 0.13), "skin"),  # rider's head
    ],
    AgentClass.TRAFFIC_CONE.value: [
        ((0.0, 0.0, 0.0, 1.0, 1.0, 0.08), OWN),  # base
        ((0.0, 0.0, 0.08, 0.6, 0.6, 0.45), OWN),  # lower tier
        ((0.0, 0.0, 0.53, 0.3, 0.3, 0.47), "white"),  # upper tier
    ],
    AgentClass.BARRIER.value: [
        ((0.0, 0.0, 0.0, 1.0, 1.0, 0.5), OWN),
        ((0.0, 0.0, 0.5, 1.0, 1.0, 0.5), "white"),
    ],
    AgentClass.CZONE_SIGN.value: [
        ((0.0, 0.0, 0.0, 0.3, 0.1, 0.55), "post"),
        ((0.0, 0.0, 0.55, 0.3, 1.0, 0.45), OWN),  # the board
    ],
}
_PARTS[AgentClass.GENERIC_OBJECT.value] = [((0.0, 0.0, 0.0, 1.0, 1.0, 1.0), OWN)]


def object_colour(name: str, track_token: str) -> tuple[int, int, int]:
    """Main colour of an annotated object: vehicles by a stable hash of their track, people by clothes."""
    palette = {AgentClass.VEHICLE.value: CAR_COLOURS, AgentClass.PEDESTRIAN.value: CLOTHES}.get(name)
    if palette is None and name == AgentClass.BICYCLE.value:
        palette = CLOTHES
    if palette is not None:
        return tuple(int(v) for v in palette[zlib.crc32(track_token.encode()) % len(palette)])  # type: ignore[return-value]
    return CLASS_COLOURS.get(name, (128, 128, 128))


@dataclass
class BoxSet:
    """Boxes to draw, in the ego frame.

    Attributes:
        centre: box centres ``(B, 3)`` [m].
        size: (length, width, height) ``(B, 3)`` [m].
        heading: ``(B,)`` [rad].
        colour: ``(B, 3)`` RGB.
        group: ``(B,)`` the object each box belongs to (objects are drawn far to near, their parts together).
        lamp_z: ``(B,)`` height [m] of a lit lamp on the box's +x face above its centre (NaN: no lamp).
        lamp_colour: ``(B, 3)`` RGB of the lamp.
    """

    centre: FloatArray
    size: FloatArray
    heading: FloatArray
    colour: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    lamp_z: FloatArray = field(default_factory=lambda: np.zeros(0))
    lamp_colour: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    _corners: FloatArray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.centre)
        if len(self.lamp_z) != n:
            self.lamp_z = np.full(n, np.nan)
            self.lamp_colour = np.zeros((n, 3), np.int64)

    def __len__(self) -> int:
        return len(self.centre)

    @classmethod
    def empty(cls) -> BoxSet:
        """No boxes."""
        return cls(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3), np.int64), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, sets: list[BoxSet]) -> BoxSet:
        """All boxes of ``sets``, groups renumbered so they stay distinct."""
        sets = [s for s in sets if len(s)]
        if not sets:
            return cls.empty()
        offset, groups = 0, []
        for s in sets:
            groups.append(s.group + offset)
            offset += int(s.group.max()) + 1
        return cls(
            np.concatenate([s.centre for s in sets]),
            np.concatenate([s.size for s in sets]),
            np.concatenate([s.heading for s in sets]),
            np.concatenate([s.colour for s in sets]),
            np.concatenate(groups),
            np.concatenate([s.lamp_z for s in sets]),
            np.concatenate([s.lamp_colour for s in sets]),
        )

    def corners(self) -> FloatArray:
        """Corners ``(B, 8, 3)`` (bit 0: +x, bit 1: +y, bit 2: +z half extent); computed once per set."""
        if self._corners is None:
            local = CORNER_SIGNS[None] * (self.size[:, None, :] / 2)  # (B, 8, 3)
            c, s = np.cos(self.heading)[:, None], np.sin(self.heading)[:, None]
            x = local[..., 0] * c - local[..., 1] * s
            y = local[..., 0] * s + local[..., 1] * c
            self._corners = np.stack([x, y, local[..., 2]], axis=-1) + self.centre[:, None, :]
        return self._corners


def object_parts(boxes: FloatArray, names: list[str], tokens: list[str]) -> BoxSet:
    """The parts of annotated objects ``boxes`` ``(N, 7)`` (``BoundingBoxIndex`` columns, ego frame)."""
    if not len(boxes):
        return BoxSet.empty()
    templates = [_TEMPLATES.get(n, _TEMPLATES[AgentClass.GENERIC_OBJECT.value]) for n in names]
    counts = np.array([len(tp[0]) for tp in templates])
    obj = np.repeat(np.arange(len(boxes)), counts)  # (B,) object of each part
    frac = np.concatenate([tp[0] for tp in templates])  # (B, 6)
    own = np.array([object_colour(n, tok) for n, tok in zip(names, tokens, strict=True)], dtype=np.int64)
    colour = np.concatenate([tp[1] for tp in templates])  # (B, 3), -1: the object's own
    colour = np.where(colour < 0, own[obj], colour)
    b = boxes[obj]
    dims = b[:, [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]]  # (B, 3)
    h = b[:, BoundingBoxIndex.HEADING]
    lx, ly = frac[:, 0] * dims[:, 0], frac[:, 1] * dims[:, 1]
    c, s = np.cos(h), np.sin(h)
    bottom = b[:, BoundingBoxIndex.Z] - dims[:, 2] / 2
    centre = np.column_stack(
        [
            b[:, BoundingBoxIndex.X] + c * lx - s * ly,
            b[:, BoundingBoxIndex.Y] + s * lx + c * ly,
            bottom + (frac[:, 2] + frac[:, 5] / 2) * dims[:, 2],
        ]
    )
    return BoxSet(centre, frac[:, 3:] * dims, h, colour, obj)


#: Per class: part fractions ``(P, 6)`` and colours ``(P, 3)`` (-1: the object's own colour).
_TEMPLATES = {
    name: (
        np.array([geometry for geometry, _ in parts], dtype=np.float64),
        np.array([(-1, -1, -1) if role == OWN else ROLE_COLOURS[role] for _, role in parts], dtype=np.int64),
    )
    for name, parts in _PARTS.items()
}
