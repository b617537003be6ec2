"""Colours of the viewer, and the colour map that turns a learned reward into a candidate's colour.

Every colour that a test or a user looks for is named here once. The reward map runs from dark purple (low)
through teal to yellow (high), a perceptually ordered ramp that holds no pure red, green or magenta, so a
candidate is never mistaken for a traffic light or for the executed plan.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from irl_vla.data.enums import AgentClass

RGB = tuple[int, int, int]

BACKGROUND: RGB = (58, 66, 52)  # off-road ground
DRIVABLE: RGB = (84, 86, 92)  # roadblocks, connectors, intersections, car parks
ROUTE_AREA: RGB = (78, 92, 118)  # the route's roadblocks, tinted
LANE_LINE: RGB = (205, 205, 195)
CROSSWALK: RGB = (168, 168, 160)
STOP_LINE: RGB = (235, 235, 235)
ROUTE_LINE: RGB = (0, 170, 255)
PLAN: RGB = (255, 0, 255)  # the executed (tracked) plan
TRAIL: RGB = (255, 170, 60)  # where the ego has been
EGO: RGB = (250, 250, 250)
OUTLINE: RGB = (15, 15, 15)
LIGHT_RED: RGB = (255, 32, 32)
LIGHT_GREEN: RGB = (32, 230, 64)
PANEL: RGB = (24, 26, 30)
TEXT: RGB = (232, 232, 232)
TEXT_DIM: RGB = (150, 150, 155)
TEXT_ALERT: RGB = (255, 90, 80)
INFRACTION: RGB = TEXT_ALERT  # where an infraction happened, in the BEV
TEXT_OK: RGB = (120, 220, 130)

#: Fill colour of each annotation class in the BEV.
AGENT_COLOURS: dict[AgentClass, RGB] = {
    AgentClass.VEHICLE: (70, 130, 220),
    AgentClass.PEDESTRIAN: (255, 150, 40),
    AgentClass.BICYCLE: (240, 210, 60),
    AgentClass.TRAFFIC_CONE: (255, 110, 20),
    AgentClass.BARRIER: (200, 200, 200),
    AgentClass.CZONE_SIGN: (230, 160, 60),
    AgentClass.GENERIC_OBJECT: (150, 120, 100),
}

#: Anchor colours of the reward map at evenly spaced values from low to high (after viridis's look).
_REWARD_ANCHORS = np.array(
    [(68, 1, 84), (65, 68, 135), (42, 120, 142), (34, 168, 132), (122, 209, 81), (253, 231, 37)], dtype=np.float64
)  # (A, 3)


def reward_colours(rewards: npt.ArrayLike, value_range: tuple[float, float] = (0.0, 1.0)) -> npt.NDArray[np.uint8]:
    """Colours ``(..., 3)`` of rewards on the reward map; values outside ``value_range`` are clipped.

    A NaN reward (a candidate without an estimate) is drawn grey.

    Args:
        rewards: learned rewards ``(...)``.
        value_range: the rewards at the map's two ends (low, high).

    Raises:
        ValueError: when ``value_range`` is not increasing.
    """
    low, high = value_range
    if not high > low:
        raise ValueError(f"reward_colours: value_range must increase, got {value_range}")
    values = np.asarray(rewards, dtype=np.float64)
    t = np.clip((values - low) / (high - low), 0.0, 1.0) * (len(_REWARD_ANCHORS) - 1)
    t = np.nan_to_num(t, nan=0.0)
    lo = np.minimum(np.floor(t).astype(int), len(_REWARD_ANCHORS) - 2)
    frac = (t - lo)[..., None]
    colours = _REWARD_ANCHORS[lo] * (1 - frac) + _REWARD_ANCHORS[lo + 1] * frac  # (..., 3)
    colours = np.where(np.isnan(values)[..., None], 128.0, colours)
    return np.round(colours).astype(np.uint8)


def agent_colour(name: str) -> RGB:
    """Fill colour of an annotation class name (grey for a name the palette does not know)."""
    try:
        return AGENT_COLOURS[AgentClass(name)]
    except ValueError:
        return (128, 128, 128)
