"""The agent interface, the baselines and the registry (settings from ``configs/agent``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import configs
from irl_vla.agents.agent import Agent, AgentConfig, AgentContext, Candidates
from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.agents.human import HumanAgent
from irl_vla.agents.pdm_closed import PDMClosedAgent
from irl_vla.agents.registry import AGENTS, agent_yaml, make_agent, resolve_agent, submittable_agent
from irl_vla.data.enums import DrivingCommand, SE2Index
from irl_vla.data.scene import AgentInput, EgoStatus, one_hot_command
from irl_vla.data.trajectory import Trajectory, TrajectorySampling


def _input(speed: float) -> AgentInput:
    status = EgoStatus(
        np.zeros(3), np.array([speed, 0.0]), np.zeros(2), one_hot_command(DrivingCommand.STRAIGHT), False
    )
    return AgentInput([status], [{}], [None])


def test_every_registry_entry_has_a_yaml_with_exactly_its_settings() -> None:
    folder = Path(configs.__file__).parent / "agent"
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(AGENTS)
    for name, entry in AGENTS.items():
        doc = OmegaConf.to_container(OmegaConf.load(folder / f"{name}.yaml"))
        assert doc == {"defaults": [f"{name}_schema"], "name": name}, name  # defaults live in the dataclass only
        assert resolve_agent(name) == entry.config(name=name)
        assert make_agent(name, AgentContext(metric_cache=lambda t: None)).name() == name


def test_unknown_agents_and_bad_settings_are_named() -> None:
    known = r"available: \['constant_velocity', 'ego_mlp', 'human'"
    with pytest.raises(ValueError, match=rf"unknown agent 'nobody'; {known}"):
        make_agent("nobody")
    with pytest.raises(ValueError, match="agent human: Key 'speed' not in 'AgentConfig'"):
        make_agent({**agent_yaml("human"), "speed": 3})
    with pytest.raises(ValueError, match="interval_length"):
        make_agent({**agent_yaml("constant_velocity"), "interval_length": -0.5})


def test_settings_reach_the_agent() -> None:
    agent = make_agent({**agent_yaml("constant_velocity"), "num_poses": 4, "interval_length": 1.0})
    plan = agent.compute_trajectory(_input(2.0))
    np.testing.assert_allclose(plan.poses[:, SE2Index.X], [2.0, 4.0, 6.0, 8.0])
    assert plan.trajectory_sampling == TrajectorySampling(num_poses=4, interval_length=1.0)


def test_privileged_agents_get_what_they_read_at_construction_and_are_not_submittable() -> None:
    assert not ConstantVelocityAgent().privileged and HumanAgent().privileged
    with pytest.raises(ValueError, match="pdm_closed plans from the metric cache: its AgentContext has none"):
        make_agent("pdm_closed")
    assert isinstance(make_agent("pdm_closed", AgentContext(metric_cache=lambda t: None)), PDMClosedAgent)
    for name in ("human", "pdm_closed"):
        with pytest.raises(ValueError, match=f"agent '{name}' is privileged"):
            submittable_agent(name)
    assert submittable_agent("constant_velocity").name() == "constant_velocity"
    with pytest.raises(ValueError, match="HumanAgent needs the scene"):
        HumanAgent().compute_trajectory(_input(1.0))


def test_the_batched_call_plans_each_scene_in_order() -> None:
    agent = ConstantVelocityAgent()
    inputs = [_input(v) for v in (0.0, 1.0, 3.0)]  # (B,)
    plans = agent.compute_trajectories(inputs)
    assert [float(p.poses[-1, SE2Index.X]) for p in plans] == [0.0, 4.0, 12.0]
    with pytest.raises(ValueError, match="3 inputs but 1 scenes"):
        agent.compute_trajectories(inputs, scenes=[None])  # type: ignore[list-item]
    assert agent.compute_candidates(inputs[0]) is None  # a baseline has no modes


class _Modes(Agent):
    """An agent with K modes: plans the best-scoring one."""

    def name(self) -> str:
        return "modes"

    def compute_candidates(self, agent_input, scene=None):  # type: ignore[no-untyped-def]
        poses = np.zeros((3, 8, 3), np.float32)  # (K, T, 3)
        poses[:, :, SE2Index.X] = np.arange(3)[:, None] * np.arange(1, 9)
        return Candidates(poses, np.array([0.1, 0.7, 0.2], np.float32))

    def compute_trajectory(self, agent_input, scene=None):  # type: ignore[no-untyped-def]
        return self.compute_candidates(agent_input).best()


def test_candidates_carry_k_modes_with_scores() -> None:
    agent = _Modes()
    candidates = agent.compute_candidates(_input(1.0))
    assert candidates is not None and len(candidates) == 3
    plan = agent.compute_trajectory(_input(1.0))
    assert isinstance(plan, Trajectory) and float(plan.poses[-1, SE2Index.X]) == 8.0  # mode 1 scores highest
    with pytest.raises(ValueError, match="Candidates.scores"):
        Candidates(np.zeros((3, 8, 3), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="Candidates.poses"):
        Candidates(np.zeros((3, 5, 3), np.float32), np.zeros(3, np.float32))
    agent.reset()  # the closed-loop hook exists for every agent
    assert AgentConfig().trajectory_sampling.num_poses == 8
