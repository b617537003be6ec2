"""The agents by name, each with its settings (the hydra ``agent`` group, ``configs/agent/<name>.yaml``).

``irl-vla eval agent=pdm_closed`` selects one agent and its settings (``agent.<key>=...`` overrides them);
``eval.agents=[a, b]`` names several, each with the settings of its yaml. An entry pairs the agent's class
with the dataclass of its settings; ``Agent.from_config`` builds it from them and an ``AgentContext`` (what
privileged agents read), so nothing is injected into an agent after it is built.

A new agent: subclass ``Agent`` (``irl_vla.agents.agent``), add an entry here and a yaml under
``configs/agent/`` (``docs/agents.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from omegaconf import OmegaConf

from irl_vla.agents.agent import Agent, AgentConfig, AgentContext
from irl_vla.agents.best_of_n import BestOfNAgent, BestOfNAgentConfig
from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.agents.ego_mlp import EgoMLPAgent
from irl_vla.agents.human import HumanAgent
from irl_vla.agents.pdm_closed import PDMClosedAgent
from irl_vla.agents.vla import PolicyAgentConfig, VLAAgent, VLAAgentConfig
from irl_vla.common.command import register_group
from irl_vla.common.config import to_dataclass

#: The package and folder holding the ``agent`` config group.
CONFIG_PACKAGE, CONFIG_GROUP = "configs", "agent"


@dataclass(frozen=True)
class AgentEntry:
    """One agent of the registry.

    Attributes:
        agent: its class (built with ``Agent.from_config``).
        config: the dataclass of its settings.
        summary: one line for listings.
    """

    agent: type[Agent]
    config: type[AgentConfig]
    summary: str

    @property
    def privileged(self) -> bool:
        """Whether the agent reads the scene or the metric cache (so it may not be submitted)."""
        return self.agent.requires_scene or self.agent.requires_metric_cache


AGENTS: dict[str, AgentEntry] = {
    "constant_velocity": AgentEntry(
        ConstantVelocityAgent, AgentConfig, "holds the current speed and heading; reads no sensors"
    ),
    "human": AgentEntry(HumanAgent, AgentConfig, "replays the logged expert (privileged: reads the scene)"),
    "pdm_closed": AgentEntry(
        PDMClosedAgent, AgentConfig, "the PDM-Closed planner's plan (privileged: reads the metric cache)"
    ),
    "vla": AgentEntry(VLAAgent, VLAAgentConfig, "the stage-1 VLA of a checkpoint (agent.checkpoint=<dir>)"),
    "ego_mlp": AgentEntry(EgoMLPAgent, PolicyAgentConfig, "NAVSIM's ego-status MLP of a checkpoint (agent.checkpoint)"),
    "vla_best_of_n": AgentEntry(
        BestOfNAgent,
        BestOfNAgentConfig,
        "the VLA's sampled candidates picked by a reward model (agent.checkpoint, agent.reward_checkpoint; privileged)",
    ),
}


def register_agent_group() -> None:
    """Register each agent's settings as hydra's schema ``agent/<name>_schema``.

    ``configs/agent/<name>.yaml`` lists it first and holds only what differs from the entry's dataclass, so
    ``agent=<name>`` shows every key with its default (``--cfg job``) and checks its type while composing.
    """
    register_group(CONFIG_GROUP, {f"{name}_schema": entry.config(name=name) for name, entry in AGENTS.items()})


def agent_yaml(name: str) -> dict[str, Any]:
    """The settings of agent ``name`` as its yaml gives them (defaults: its dataclass's, as its schema).

    Raises:
        ValueError: for an unknown agent (naming the known ones).
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; available: {sorted(AGENTS)}")
    path = resources.files(CONFIG_PACKAGE) / CONFIG_GROUP / f"{name}.yaml"
    if not path.is_file():
        return {"name": name}
    doc = OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=True)
    assert isinstance(doc, dict)
    return {str(k): v for k, v in doc.items() if k != "defaults"}  # the schema it lists is the entry's dataclass


def resolve_agent(spec: str | Mapping[str, Any] | AgentConfig) -> AgentConfig:
    """The validated settings of an agent given by name (its yaml), by a settings mapping, or already resolved.

    Raises:
        ValueError: naming the agent and the key that is unknown or invalid.
    """
    if isinstance(spec, AgentConfig):
        return spec
    doc = agent_yaml(spec) if isinstance(spec, str) else dict(spec)
    name = doc.get("name")
    if not isinstance(name, str) or name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; available: {sorted(AGENTS)}")
    return to_dataclass(doc, AGENTS[name].config, where=f"agent {name}")


def submittable_agent(spec: str | Mapping[str, Any] | AgentConfig) -> Agent:
    """The agent ``spec`` names, refused if it is privileged (submissions and navsim see sensors only).

    Raises:
        ValueError: naming a privileged agent, or as ``make_agent``.
    """
    config = resolve_agent(spec)
    if AGENTS[config.name].privileged:
        raise ValueError(f"agent {config.name!r} is privileged (reads the scene or the metric cache): not submittable")
    return make_agent(config)


def make_agent(spec: str | Mapping[str, Any] | AgentConfig, context: AgentContext | None = None) -> Agent:
    """The agent ``spec`` names (see ``resolve_agent``), built with ``context`` (empty by default).

    Raises:
        ValueError: for an unknown agent or bad settings, or a privileged agent whose context lacks what it reads.
    """
    config = resolve_agent(spec)
    return AGENTS[config.name].agent.from_config(config, context or AgentContext())
