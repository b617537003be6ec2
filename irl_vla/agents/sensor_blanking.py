"""Blanking an agent's sensors: a diagnostic of how much a learned plan depends on what it sees.

A blanked camera keeps its calibration and size but shows one flat colour (for the VLA, its training mean image,
which its normalisation turns into zeros); a blanked LiDAR has no returns (an empty BEV histogram). The ego
status, the driving command and the navigation instruction are untouched, so a policy that plans the same with
its sensors blanked plans from those alone, as a blind ego-status MLP does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import Enum

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import LidarIndex
from irl_vla.data.scene import AgentInput
from irl_vla.data.sensors import Camera, Lidar


class BlankedSensor(str, Enum):
    """Sensor kinds that can be blanked (``agent.blank_sensors``)."""

    CAMERAS = "cameras"
    LIDAR = "lidar"


def parse_blanked(names: Iterable[str], where: str) -> frozenset[BlankedSensor]:
    """The sensor kinds named in ``names``.

    Raises:
        ValueError: naming ``where`` and the unknown name.
    """
    if isinstance(names, str):
        names = [names]
    out = set()
    for name in names:
        try:
            out.add(BlankedSensor(name))
        except ValueError:
            known = [s.value for s in BlankedSensor]
            raise ValueError(f"{where}: unknown sensor {name!r} to blank, expected some of {known}") from None
    return frozenset(out)


def blank_sensors(
    agent_input: AgentInput, blanked: frozenset[BlankedSensor], colour: npt.NDArray[np.uint8]
) -> AgentInput:
    """A copy of ``agent_input`` with the ``blanked`` sensors of every history frame blanked (the input is kept).

    Args:
        agent_input: what the agent sees.
        blanked: which sensor kinds to blank.
        colour: the flat RGB colour ``(3,)`` of blanked camera images.

    Raises:
        ValueError: when ``colour`` is not three uint8 values.
    """
    colour = np.asarray(colour)
    if colour.shape != (3,) or colour.dtype != np.uint8:
        raise ValueError(f"blank_sensors: colour must be 3 uint8 values, got {colour.shape} {colour.dtype}")
    cameras, lidars = agent_input.cameras, agent_input.lidars
    if BlankedSensor.CAMERAS in blanked:

        def flat(cam: Camera) -> Camera:
            image = None if cam.image is None else np.broadcast_to(colour, cam.image.shape).copy()  # (H, W, 3)
            return Camera(cam.calibration, image)

        cameras = [{name: flat(cam) for name, cam in frame.items()} for frame in cameras]
    if BlankedSensor.LIDAR in blanked:
        empty = np.zeros((len(LidarIndex), 0), dtype=np.float32)  # (6, N = 0): no returns
        lidars = [None if lidar is None else Lidar(empty.copy()) for lidar in lidars]
    return dataclasses.replace(agent_input, cameras=cameras, lidars=lidars)
