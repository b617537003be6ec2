"""Anchoring the VLA's plan to the ego's current motion (``irl_vla.agents.state_anchoring``, ``agent=vla``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from irl_vla.agents.agent import AgentContext
from irl_vla.agents.registry import make_agent, resolve_agent
from irl_vla.agents.state_anchoring import anchor_plan, fit_polynomial
from irl_vla.agents.vla import VLAAgent, VLAAgentConfig
from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.scene import AgentInput, EgoStatus, one_hot_command
from irl_vla.data.trajectory import DEFAULT_SAMPLING
from irl_vla.scoring.comfort import extended_comfort
from irl_vla.scoring.simulation import SimulationConfig, simulate_plans
from irl_vla.scoring.states import initial_state

TIMES = DEFAULT_SAMPLING.times  # (T,) [s]


def _input(speed: float, accel: float) -> AgentInput:
    status = EgoStatus(
        np.zeros(3), np.array([speed, 0.0]), np.array([accel, 0.0]), one_hot_command(DrivingCommand.STRAIGHT), False
    )
    return AgentInput([status], [{}], [None])


class _FixedPolicy:
    """A stand-in for a trained policy: every scene gets the same plan (the network's mode)."""

    def __init__(self, poses: np.ndarray) -> None:
        self.poses = poses  # (T, 3)
        self.model = SimpleNamespace(cfg=SimpleNamespace(inputs=SimpleNamespace(num_poses=len(poses))))

    def predict(self, agent_inputs: list[AgentInput]) -> dict[str, torch.Tensor]:
        plans = np.stack([self.poses] * len(agent_inputs))  # (B, T, 3)
        return {"trajectory": torch.from_numpy(plans.astype(np.float32))}


def _wiggly_plan(speed: float = 10.0, wiggle: float = 0.4) -> np.ndarray:
    """About the right speed [m/s], blind to the acceleration, its poses off by +-``wiggle`` [m] in turn (the
    size of a short-trained VLA's errors)."""
    x = speed * TIMES + wiggle * (-1.0) ** np.arange(len(TIMES))
    return np.stack([x, np.zeros_like(TIMES), np.zeros_like(TIMES)], axis=-1)


def _extended_comfort(agent: VLAAgent, now: AgentInput, before: AgentInput, dt: float = 0.5) -> float:
    """EC of the agent's plans in two frames ``dt`` apart, simulated from each frame's ego state."""
    sim = SimulationConfig()
    states = []
    for agent_input in (now, before):
        plan = agent.compute_trajectory(agent_input)
        ego = agent_input.current
        start = initial_state(np.zeros(3), ego.ego_velocity, ego.ego_acceleration)
        states.append(simulate_plans(plan.poses[None], plan.trajectory_sampling, start, sim)[0])
    return float(extended_comfort(states[0], states[1], dt, sim.dt))


def test_anchoring_makes_consecutive_plans_comfortable() -> None:
    # the car accelerates at 1 m/s^2 through 10 m/s; the network's plan ignores that and wiggles
    policy = _FixedPolicy(_wiggly_plan())
    now, before = _input(10.5, 1.0), _input(10.0, 1.0)
    raw = VLAAgent(policy, anchor_to_state=False)
    anchored = VLAAgent(policy)
    assert _extended_comfort(raw, now, before) == 0.0  # the old behaviour: the network's mode as is
    assert _extended_comfort(anchored, now, before) == 1.0


def test_the_fit_keeps_the_ego_state_and_a_plan_already_consistent_with_it() -> None:
    noisy = _wiggly_plan()[:, SE2Index.X]
    coefficients = fit_polynomial(TIMES, noisy, [0.0, 12.0, 0.75], jerk_weight=1.0)
    np.testing.assert_allclose(coefficients[:3], [0.0, 12.0, 0.75])  # x(0), x'(0) = vx, x''(0) / 2 = ax / 2
    # constant acceleration from the current state has no jerk: returned as it is, for any weight
    x = 10.0 * TIMES - 0.5 * 2.0 * TIMES**2
    plan = np.stack([x, 0.1 * TIMES**2, 0.02 * TIMES], axis=-1)
    for weight in (0.0, 1.0, 100.0):
        out = anchor_plan(plan, TIMES, np.array([10.0, 0.0]), np.array([-2.0, 0.2]), weight)
        np.testing.assert_allclose(out, plan, atol=1e-9)


def test_the_fit_follows_the_network_where_the_state_allows() -> None:
    # a stop plan from 5 m/s: the anchored plan still stops about where the network said
    x = np.minimum(5.0 * TIMES - 2.5 * TIMES**2 / 2, 5.0)
    plan = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=-1)
    out = anchor_plan(plan, TIMES, np.array([5.0, 0.0]), np.array([0.0, 0.0]), 1.0)
    assert abs(out[-1, SE2Index.X] - plan[-1, SE2Index.X]) < 0.5
    headings = np.array([3.0, 3.1, -3.1, -3.0, -2.9, -2.8, -2.7, -2.6])  # a turn through pi stays a turn
    turn = np.stack([np.zeros(8), np.zeros(8), headings], axis=-1)
    out = anchor_plan(turn, TIMES, np.zeros(2), np.zeros(2), 0.0)
    assert np.abs(np.angle(np.exp(1j * (out[:, SE2Index.HEADING] - headings)))).max() < 0.5


def test_bad_plans_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        anchor_plan(np.full((8, 3), np.nan), TIMES, np.zeros(2), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"poses \(T, 3\) and times \(T,\)"):
        anchor_plan(np.zeros((8, 2)), TIMES, np.zeros(2), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="jerk_weight must be >= 0"):
        fit_polynomial(TIMES, TIMES, [0.0], -1.0)
    with pytest.raises(ValueError, match="anchor_jerk_weight must be >= 0"):
        VLAAgentConfig(name="vla", anchor_jerk_weight=-1.0)


def test_the_settings_reach_the_agent() -> None:
    assert resolve_agent("vla") == VLAAgentConfig(name="vla")  # anchored by default
    agent = make_agent({"name": "vla", "anchor_to_state": False, "anchor_jerk_weight": 3.0}, AgentContext())
    assert isinstance(agent, VLAAgent)
    assert (agent.anchor_to_state, agent.anchor_jerk_weight) == (False, 3.0)
