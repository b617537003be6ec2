"""Navigation instructions: the language input a policy may read.

A navigation instruction says what a navigation system knows: the next manoeuvre of the route and how far
ahead it is, or the lane the route needs. It never says what is on the road (lights, road users, obstacles,
speed limits): those facts belong to a frame's scene description, a supervision target of the language branch
that no non-privileged agent reads. Every source writes its instructions with the phrases of this module, so a
policy sees one vocabulary: the embedded world from its route (with distances), NAVSIM data from the driving
command (no distances: OpenScene records only the command).
"""

from __future__ import annotations

from irl_vla.data.enums import DrivingCommand

#: The instruction when the route has no manoeuvre ahead.
FOLLOW_ROAD = "Follow the road."

_COMMAND_TEXT = {
    DrivingCommand.LEFT: "Turn left ahead.",
    DrivingCommand.STRAIGHT: "Go straight ahead.",
    DrivingCommand.RIGHT: "Turn right ahead.",
    DrivingCommand.UNKNOWN: FOLLOW_ROAD,
}


def command_instruction(command: DrivingCommand) -> str:
    """The instruction a NAVSIM frame supports: its driving command in words."""
    return _COMMAND_TEXT[DrivingCommand(command)]


def junction_instruction(turn: str, distance: float) -> str:
    """The next junction manoeuvre: ``turn`` (``left``, ``right``, ``straight``), ``distance`` [m] to its stop line.

    At or past the line (``distance <= 0``) a turn is said without a distance; going straight then needs no
    instruction.
    """
    if turn not in ("left", "right", "straight"):
        raise ValueError(f"junction_instruction: turn must be left, right or straight, got {turn!r}")
    if turn == "straight":
        return f"In {distance:.0f} m, go straight through the intersection." if distance > 0 else FOLLOW_ROAD
    if distance <= 0:
        return f"Turn {turn} at the intersection."
    return f"In {distance:.0f} m, turn {turn} at the intersection."


def lane_instruction(side: str, distance: float) -> str:
    """The route needs the lane on ``side`` (``left`` or ``right``) within ``distance`` [m] (its lane ends or turns)."""
    if side not in ("left", "right"):
        raise ValueError(f"lane_instruction: side must be left or right, got {side!r}")
    return f"Move into the {side} lane within {max(distance, 0.0):.0f} m to follow the route."
