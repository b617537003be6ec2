"""Fixed-time traffic-light programmes: phases cycle green -> amber -> all-red."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class LightState(IntEnum):
    """State of the light governing a lane connector."""

    GREEN = 0
    AMBER = 1
    RED = 2


@dataclass(frozen=True)
class SignalTiming:
    """Durations of one phase.

    Attributes:
        green: [s].
        amber: [s].
        all_red: clearance with every phase red [s].
    """

    green: float = 12.0
    amber: float = 3.0
    all_red: float = 1.5

    def __post_init__(self) -> None:
        if self.green <= 0 or self.amber < 0 or self.all_red < 0:
            raise ValueError(f"SignalTiming: need green > 0 and amber, all_red >= 0, got {self}")

    @property
    def phase_length(self) -> float:
        """Duration of one phase including clearance [s]."""
        return self.green + self.amber + self.all_red


class TrafficLightProgramme:
    """States of every signalised lane connector over time.

    Args:
        phases: lists of lane-connector ids that are green together, in cycle order.
        timing: phase durations.
        offset: time into the cycle at ``t = 0`` [s].
    """

    def __init__(self, phases: list[list[str]], timing: SignalTiming, offset: float = 0.0) -> None:
        if not phases or any(not p for p in phases):
            raise ValueError("TrafficLightProgramme: need at least one non-empty phase")
        self.phases = phases
        self.timing = timing
        self.offset = offset
        self._phase_of = {cid: k for k, phase in enumerate(phases) for cid in phase}

    @property
    def cycle(self) -> float:
        """Cycle length [s]."""
        return self.timing.phase_length * len(self.phases)

    @property
    def connector_ids(self) -> list[str]:
        """Every signalised lane connector."""
        return list(self._phase_of)

    def state(self, connector_id: str, t: float) -> LightState:
        """Light state of ``connector_id`` at time ``t`` [s]."""
        k = self._phase_of[connector_id]
        tau = (t + self.offset) % self.cycle - k * self.timing.phase_length
        if 0 <= tau < self.timing.green:
            return LightState.GREEN
        if self.timing.green <= tau < self.timing.green + self.timing.amber:
            return LightState.AMBER
        return LightState.RED

    def states(self, t: float) -> dict[str, LightState]:
        """States of all signalised connectors at ``t`` [s]."""
        return {cid: self.state(cid, t) for cid in self._phase_of}

    def time_to_change(self, connector_id: str, t: float) -> float:
        """Time [s] until the state of ``connector_id`` next changes."""
        k = self._phase_of[connector_id]
        tau = ((t + self.offset) - k * self.timing.phase_length) % self.cycle
        bounds = [self.timing.green, self.timing.green + self.timing.amber, self.cycle]
        return next(b - tau for b in bounds if tau < b)
