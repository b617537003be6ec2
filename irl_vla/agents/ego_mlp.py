"""The ego-status MLP agent: NAVSIM's blind baseline (current velocity, acceleration, command -> plan).

It reads no sensors (only the ego status and the driving command), so it may be submitted. Train it with
``irl-vla train stage=il model=ego_mlp``; evaluate with ``irl-vla eval agent=ego_mlp agent.checkpoint=<dir>``.
"""

from __future__ import annotations

from irl_vla.agents.vla import PolicyAgent


class EgoMLPAgent(PolicyAgent):
    """Plans with a trained ``EgoStatusMLP`` (``irl_vla.models.ego_mlp``)."""

    architecture = "ego_mlp"
