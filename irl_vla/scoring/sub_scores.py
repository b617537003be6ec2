"""``SubScore``: the one enum of NAVSIM v2 sub-scores, used by scorer, reward model, PPO, reports and logs."""

from __future__ import annotations

from enum import IntEnum


class SubScore(IntEnum):
    """Sub-score columns, in the order of NAVSIM v2's CSV. Values are column indices of ``(..., n_sub)`` arrays."""

    NC = 0  # no at-fault collision, {0, 0.5, 1}, multiplier
    DAC = 1  # drivable area compliance, {0, 1}, multiplier
    DDC = 2  # driving direction compliance, {0, 0.5, 1}, multiplier
    TLC = 3  # traffic light compliance, {0, 1}, multiplier
    EP = 4  # ego progress, [0, 1], weighted
    TTC = 5  # time to collision within bound, {0, 1}, weighted
    LK = 6  # lane keeping, {0, 1}, weighted
    HC = 7  # history comfort (v1: comfort), {0, 1}, weighted
    EC = 8  # extended (two-frame) comfort, {0, 1} or undefined (NaN), weighted

    @property
    def navsim_name(self) -> str:
        """Column name in NAVSIM's score CSV."""
        return NAVSIM_COLUMN_NAMES[self]

    @classmethod
    def from_name(cls, name: str) -> SubScore:
        """Look up by short name (``"EP"``, case-insensitive) or NAVSIM column name.

        Raises:
            ValueError: naming the unknown name and the accepted ones.
        """
        key = name.strip()
        if key.upper() in cls.__members__:
            return cls[key.upper()]
        for member, column in NAVSIM_COLUMN_NAMES.items():
            if column == key:
                return member
        raise ValueError(f"unknown sub-score {name!r}; expected one of {[m.name for m in cls]}")


NAVSIM_COLUMN_NAMES: dict[SubScore, str] = {
    SubScore.NC: "no_at_fault_collisions",
    SubScore.DAC: "drivable_area_compliance",
    SubScore.DDC: "driving_direction_compliance",
    SubScore.TLC: "traffic_light_compliance",
    SubScore.EP: "ego_progress",
    SubScore.TTC: "time_to_collision_within_bound",
    SubScore.LK: "lane_keeping",
    SubScore.HC: "history_comfort",
    SubScore.EC: "two_frame_extended_comfort",
}

NUM_SUB_SCORES = len(SubScore)
