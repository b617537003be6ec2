"""``InfoKey``: every key of a closed-loop ``info`` dict, named once."""

from __future__ import annotations

from enum import Enum


class InfoKey(str, Enum):
    """Keys of the ``info`` dicts of ``ClosedLoopEnv.reset`` / ``step`` and of the runner's per-step records.

    The value type of each key is in the comment; R = in the reset ``info``, S = in every step ``info``,
    E = in the step ``info`` that ends the episode, O = optional (a backend or runner may add it).
    """

    ROUTE = "route"  # R: ``Route`` being driven (global dense polyline, length, id)
    MAP = "map"  # R: the location's ``Map`` (``irl_vla.data.map``), or None when the backend has none
    FRAME = "frame"  # R, S: the current ``Frame`` (global ego pose, annotations in the ego frame, light states)
    TIME = "time"  # R, S: simulated time since the reset [s]
    EGO_TRACE = "ego_trace"  # S: ``(N, len(TraceIndex))`` ego samples at the simulation rate since the last step
    INFRACTIONS = "infractions"  # S: ``list[Infraction]`` raised during this step (empty when none)
    ROUTE_COMPLETION = "route_completion"  # S: route completion so far [%], 0..100
    TERMINATION = "termination"  # E: ``TerminationReason``
    SPEED_LIMIT = "speed_limit"  # O, S: speed limit at the ego [m/s], None when unknown (route timeout budget)
    TRAFFIC_SPEED = "traffic_speed"  # O, S: mean speed of the surrounding vehicles [m/s], None with none (min speed)
    SUB_SCORES = "sub_scores"  # O, S: ``(n_sub,)`` NAVSIM sub-scores of the last rolling window, by ``SubScore``
    LEARNED_REWARD = "learned_reward"  # O, S: the reward model's EPDMS estimate of the executed plan
    CANDIDATE_REWARDS = "candidate_rewards"  # O, S: ``(K,)`` the reward model's estimate of each candidate
    PLAN = "plan"  # O, S: the ``Trajectory`` the backend is tracking (relative to the frame it was planned in)
    META_ACTION = "meta_action"  # O, S: the agent's predicted ``MetaAction`` (language branch), if any
    LANE_INVASIONS = "lane_invasions"  # O, S: ``list[str]`` lane markings crossed during this step (CARLA's sensor)
