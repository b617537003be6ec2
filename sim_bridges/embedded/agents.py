"""Agents of the embedded world: road users and static objects that move along ``Path``s."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass
from sim_bridges.embedded.idm import IDMParams
from sim_bridges.embedded.paths import Path


@dataclass
class StopPoint:
    """A place on an agent's path where it may have to stop.

    Attributes:
        s: arc length of the stop line on the agent's path [m].
        connector_id: lane connector entered after it (its light decides for signalised stops).
        kind: ``"light"`` (obey the light) or ``"yield"`` (give way to priority traffic in the junction).
    """

    s: float
    connector_id: str
    kind: str = "light"


@dataclass
class Agent:
    """A road user or object.

    Attributes:
        track_token: stable id over the log.
        agent_class: NAVSIM class.
        length: [m].
        width: [m].
        height: [m].
        path: path followed (centre of the object moves along it).
        s: arc length of the object's centre on ``path`` [m].
        speed: [m/s] along the path.
        target_speed: desired speed [m/s] (0 for static objects).
        idm: longitudinal parameters.
        lateral: offset to the left of the path [m] (parked cars, nudges).
        stops: stop lines on the path, in order.
        start_time: the agent stands still before this time [s] (pedestrians waiting to cross).
        reactive: whether it reacts to others (False: replays its plan regardless).
        accel: last longitudinal acceleration [m/s^2].
    """

    track_token: str
    agent_class: AgentClass
    length: float
    width: float
    height: float
    path: Path
    s: float
    speed: float = 0.0
    target_speed: float = 0.0
    idm: IDMParams = field(default_factory=IDMParams)
    lateral: float = 0.0
    stops: list[StopPoint] = field(default_factory=list)
    start_time: float = 0.0
    reactive: bool = True
    accel: float = 0.0

    @property
    def is_static(self) -> bool:
        """Never moves (cones, barriers, parked cars)."""
        return self.target_speed <= 0.0

    @property
    def pose(self) -> npt.NDArray[np.float64]:
        """(x, y, heading) of the box centre [m, rad]."""
        return self.path.pose_at(self.s, self.lateral)
