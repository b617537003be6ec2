"""``StepView``: what the runner hands a viewer each step, and the ``Viewer`` protocol.

A view is backend-neutral: it holds the suite's own types only (``Frame``, ``Map``, ``Trajectory``,
``Candidates``, ``Infraction``), so the live viewer draws the embedded world and CARLA alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import DrivingCommand, MetaAction
from irl_vla.data.scene import Frame
from irl_vla.data.sensors import Cameras
from irl_vla.data.trajectory import Trajectory
from irl_vla.envs.infractions import Infraction

if TYPE_CHECKING:
    from irl_vla.agents.agent import Candidates
    from irl_vla.data.map.map_api import Map
    from irl_vla.envs.route import Route


@dataclass
class StepView:
    """One step of a closed-loop episode, as a viewer draws it.

    Attributes:
        route_id: the route being driven.
        step: index of the step in the episode (0 after the reset).
        time: simulated time since the reset [s].
        frame: the current frame: global ego status, other objects (in the ego frame), traffic-light states,
            instruction, scene description.
        map_api: the location's map, or None when the backend has none.
        route: the route (global dense polyline) being driven.
        plan: the agent's plan at this step, in the current ego frame, or None before the first plan.
        candidates: the agent's K candidate plans (current ego frame) with its own scores, if it has modes.
        candidate_rewards: the reward model's EPDMS estimate of each candidate ``(K,)``, if a model is given.
        learned_reward: the reward model's estimate of the executed plan, if a model is given.
        sub_scores: the simulator's NAVSIM sub-scores of the last rolling window ``(n_sub,)`` by ``SubScore``,
            NaN before the first full window.
        meta_action: the agent's predicted meta-action (language branch), if any.
        infractions: every infraction of the episode so far, oldest first.
        route_completion: route completion so far [%].
        penalty: product of the infraction penalties so far (1 = none).
        cameras: camera images of the current frame, if the observation carries any.
        termination: why the episode ended, at its last step ("" while it runs).
    """

    route_id: str
    step: int
    time: float
    frame: Frame
    map_api: Map | None
    route: Route
    plan: Trajectory | None = None
    candidates: Candidates | None = None
    candidate_rewards: npt.NDArray[np.float64] | None = None
    learned_reward: float | None = None
    sub_scores: npt.NDArray[np.float64] | None = None
    meta_action: MetaAction | None = None
    infractions: list[Infraction] = field(default_factory=list)
    route_completion: float = 0.0
    penalty: float = 1.0
    cameras: Cameras = field(default_factory=dict)
    termination: str = ""

    @property
    def command(self) -> DrivingCommand:
        """The driving command of the current frame."""
        return self.frame.ego_status.command

    @property
    def instruction(self) -> str:
        """The navigation instruction of the current frame."""
        return self.frame.instruction

    @property
    def speed(self) -> float:
        """Ego speed [m/s]."""
        return float(np.linalg.norm(self.frame.ego_status.ego_velocity))


@runtime_checkable
class Viewer(Protocol):
    """Something that shows (or records) a closed-loop episode step by step."""

    def update(self, view: StepView) -> bool:
        """Show one step; returns False when the user asked to stop (window closed, quit key)."""
        ...

    def close(self) -> None:
        """Finish: flush recordings, close windows."""
        ...
