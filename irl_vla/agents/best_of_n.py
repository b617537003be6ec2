"""Best-of-N with the reward model: the VLA samples N candidates, the learned reward picks one.

Per scene the policy runs ``draws`` stochastic denoising chains (each gives all K of its modes) and, with
``include_deterministic``, its deterministic modes too: ``N = (draws + 1) * K`` candidates. The reward model
(``agent.reward_checkpoint``) predicts each candidate's sub-scores and its reward (their EPDMS through the suite's
one aggregation function); the plan is the candidate of highest reward (the first of equal ones).
``compute_candidates`` returns all N with their rewards as scores. With ``agent.ensemble`` (more reward
checkpoints, e.g. other training seeds) every member scores every candidate, and ``agent.selection``
(``irl_vla.models.reward.selection``) turns their predictions into the score the plan maximises: the members'
mean reward, optionally minus ``lcb`` times their standard deviation, optionally after a gate on the predicted
multipliers.

With ``anchor_to_state`` (the default, as ``agent=vla``) every candidate is refitted to the ego's current
velocity and acceleration (``irl_vla.agents.state_anchoring``) *before* the reward model scores it: the reward
judges the plans as they would be executed, and the executed plan keeps consecutive plans comfortable (HC, EC).
Picking among raw modes instead lets each frame's plan start off the ego's motion (a jump in acceleration), which
the simulator's comfort terms punish.

The noise of a scene's chains is seeded by ``(seed, scene token)``, so a scene gets the same plan in any order and
in any worker. The agent reads the scene (``requires_scene``): the reward model's inputs may include the map
raster and the annotated boxes (privileged), so it is never submittable, even with a sensor-only reward model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from irl_vla.agents.agent import AgentConfig, AgentContext, Candidates
from irl_vla.agents.state_anchoring import DEFAULT_JERK_WEIGHT
from irl_vla.agents.vla import PolicyAgentConfig, VLAAgent, VLAAgentConfig
from irl_vla.data.features.builder import merge_sensor_configs
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory, TrajectorySampling
from irl_vla.labeling.candidates import scene_seed
from irl_vla.models.reward.selection import SelectionConfig, selection_scores

if TYPE_CHECKING:
    from irl_vla.models.reward.checkpoint import LoadedRewardModel
    from irl_vla.training.policy import Policy


@dataclass
class BestOfNAgentConfig(PolicyAgentConfig):
    """Settings of ``agent=vla_best_of_n`` (``configs/agent/vla_best_of_n.yaml``).

    Attributes:
        reward_checkpoint: the reward model that picks (a checkpoint or a ``train stage=rwm`` run directory).
        ensemble: more reward checkpoints that score the candidates with it (an ensemble; e.g. other seeds).
        selection: how the members' predictions become the score the plan maximises (see the module).
        draws: stochastic denoising chains per scene, each giving all of the policy's modes.
        include_deterministic: also offer the policy's deterministic modes (what ``agent=vla`` chooses from).
        seed: seeds the chains' noise, with the scene token.
        anchor_to_state: refit every candidate to the ego's current velocity and acceleration before scoring
            and executing it (as ``agent=vla`` does with its plan).
        anchor_jerk_weight: the refit's weight of the integrated squared jerk [s^5].
    """

    reward_checkpoint: str | None = None
    ensemble: list[str] = field(default_factory=list)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    draws: int = 4
    include_deterministic: bool = True
    seed: int = 0
    anchor_to_state: bool = VLAAgentConfig.anchor_to_state
    anchor_jerk_weight: float = DEFAULT_JERK_WEIGHT

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.anchor_jerk_weight < 0:
            raise ValueError(f"agent vla_best_of_n: anchor_jerk_weight must be >= 0, got {self.anchor_jerk_weight}")
        if self.draws < 0:
            raise ValueError(f"agent vla_best_of_n: draws must be >= 0, got {self.draws}")
        if self.draws == 0 and not self.include_deterministic:
            raise ValueError("agent vla_best_of_n: no candidates (draws = 0 and include_deterministic = false)")
        if self.selection.lcb > 0 and not self.ensemble:
            raise ValueError(
                f"agent vla_best_of_n: selection.lcb = {self.selection.lcb:g} needs agent.ensemble (more reward "
                "checkpoints); one model has no spread"
            )


class BestOfNAgent(VLAAgent):
    """The VLA's candidates picked by a learned reward (see the module docstring).

    Args:
        policy: the VLA (``None``: loaded from ``checkpoint``).
        reward: the reward model and its input builders (``None``: loaded from ``reward_checkpoint``).
        trajectory_sampling: the plan's sampling.
        name: the agent's name in reports.
        checkpoint: the policy's checkpoint or run directory.
        reward_checkpoint: the reward model's checkpoint or run directory.
        ensemble: more reward checkpoints scoring with it.
        ensemble_models: those models already loaded (``None``: loaded from ``ensemble``).
        selection: how the members' predictions pick the plan.
        draws: stochastic chains per scene.
        include_deterministic: also offer the deterministic modes.
        seed: seeds the chains' noise, with the scene token.
        device: where both networks run.
        anchor_to_state: refit the candidates to the ego state before scoring them (see the module).
        anchor_jerk_weight: the refit's jerk weight [s^5].
    """

    requires_scene: ClassVar[bool] = True

    def __init__(
        self,
        policy: Policy | None = None,
        reward: LoadedRewardModel | None = None,
        trajectory_sampling: TrajectorySampling = DEFAULT_SAMPLING,
        name: str = "vla_best_of_n",
        *,
        checkpoint: str | None = None,
        reward_checkpoint: str | None = None,
        ensemble: list[str] | None = None,
        ensemble_models: list[LoadedRewardModel] | None = None,
        selection: SelectionConfig | None = None,
        draws: int = 4,
        include_deterministic: bool = True,
        seed: int = 0,
        device: str = "cpu",
        anchor_to_state: bool = VLAAgentConfig.anchor_to_state,
        anchor_jerk_weight: float = DEFAULT_JERK_WEIGHT,
    ) -> None:
        super().__init__(
            policy,
            trajectory_sampling,
            name,
            checkpoint=checkpoint,
            device=device,
            anchor_to_state=anchor_to_state,
            anchor_jerk_weight=anchor_jerk_weight,
        )
        self._reward = reward
        self.ensemble = list(ensemble or [])
        self._ensemble_models = ensemble_models
        self.selection = selection or SelectionConfig()
        self.reward_checkpoint, self.draws, self.include_deterministic, self.seed = (
            reward_checkpoint,
            draws,
            include_deterministic,
            seed,
        )

    @classmethod
    def from_config(cls, config: AgentConfig, context: AgentContext) -> BestOfNAgent:
        """The agent of ``config``'s checkpoints (loaded by ``initialize``)."""
        assert isinstance(config, BestOfNAgentConfig)
        return cls(
            None,
            None,
            config.trajectory_sampling,
            config.name,
            checkpoint=config.checkpoint,
            reward_checkpoint=config.reward_checkpoint,
            ensemble=config.ensemble,
            selection=config.selection,
            draws=config.draws,
            include_deterministic=config.include_deterministic,
            seed=config.seed,
            device=config.device,
            anchor_to_state=config.anchor_to_state,
            anchor_jerk_weight=config.anchor_jerk_weight,
        )

    def initialize(self) -> None:
        """Load the policy's and the reward models' checkpoints."""
        super().initialize()
        self.members  # noqa: B018 - loads them now

    @property
    def reward(self) -> LoadedRewardModel:
        """The reward model, loaded from ``reward_checkpoint`` on first use.

        Raises:
            ValueError: when no reward checkpoint is named, it holds no reward model, or its model reads the logged
                futures of the other road users (an oracle, not a driving agent).
        """
        if self._reward is None:
            from irl_vla.models.reward.checkpoint import load_reward_model

            if not self.reward_checkpoint:
                raise ValueError(
                    "agent vla_best_of_n picks by a learned reward: name it with agent.reward_checkpoint=<checkpoint "
                    "or run dir> (irl-vla train stage=rwm writes one)"
                )
            self._reward = load_reward_model(self.reward_checkpoint, device=self.device)
        return _refuse_future(self._reward, self.reward_checkpoint or "the given reward")

    @property
    def members(self) -> list[LoadedRewardModel]:
        """The reward models that score the candidates: ``reward``, then those of ``ensemble`` (loaded on first use).

        Raises:
            ValueError: as ``reward``, for any member.
        """
        if self._ensemble_models is None:
            from irl_vla.models.reward.checkpoint import load_reward_model

            self._ensemble_models = [load_reward_model(p, device=self.device) for p in self.ensemble]
        names = self.ensemble or [f"ensemble member {i}" for i in range(len(self._ensemble_models))]
        others = [_refuse_future(m, name) for m, name in zip(self._ensemble_models, names, strict=True)]
        return [self.reward, *others]

    def get_sensor_config(self) -> SensorConfig:
        """The sensors of the policy's and the reward models' inputs."""
        return merge_sensor_configs([self.policy.sensor_config(), *(m.builders.sensor_config() for m in self.members)])

    @torch.no_grad()
    def sample_candidates(self, agent_input: AgentInput, token: str) -> np.ndarray:
        """The policy's N candidates ``(N, T, 3)`` at its own sampling (``token`` seeds the noise)."""
        policy = self.policy
        features = policy.features([agent_input])
        generator = torch.Generator(device=policy.device).manual_seed(scene_seed(self.seed, token))
        model = policy.model
        was_training = model.training
        model.eval()
        try:
            sets = [model(features)["modes"]] if self.include_deterministic else []
            sets += [model(features, stochastic=True, generator=generator)["modes"] for _ in range(self.draws)]
        finally:
            model.train(was_training)
        return torch.cat(sets, dim=1)[0].float().cpu().numpy()  # (N, T, 3)

    @torch.no_grad()
    def rewards(self, scene: Scene, candidates: np.ndarray) -> np.ndarray:
        """The score ``(N,)`` the plan maximises among candidates ``(N, T, 3)`` in ``scene``.

        The learned reward of one model; the members' by ``selection`` with an ensemble or a rule.
        """
        from irl_vla.models.reward.heads import HeadKey
        from irl_vla.models.reward.loss import RewardKey

        rewards, subs = [], []
        for member in self.members:
            device = next(member.model.parameters()).device
            features = {k: v.to(device) for k, v in member.builders.batch([scene]).items()}
            plans = torch.as_tensor(candidates, dtype=torch.float32, device=device)[None]  # (1, N, T, 3)
            out = member.model.score_candidates(member.model.encode_scene(features), plans)
            rewards.append(out[RewardKey.REWARD][0].float().cpu().numpy())  # (N,)
            if self.selection.gate > 0:
                subs.append(out[HeadKey.SUB_SCORES][0].float().cpu().numpy())  # (N, S)
        return selection_scores(np.stack(rewards), np.stack(subs) if subs else None, self.selection)

    def compute_candidates(self, agent_input: AgentInput, scene: Scene | None = None) -> Candidates:
        """All N candidates (anchored to the ego state with ``anchor_to_state``) with their scores (``rewards``).

        Raises:
            ValueError: without the scene (the reward model reads it).
        """
        if scene is None:
            raise ValueError("agent vla_best_of_n: needs the scene (its reward model reads it); it is privileged")
        modes = self.sample_candidates(agent_input, scene.token)  # (N, T, 3)
        modes = np.stack([self._anchored(m, agent_input) for m in modes])  # as executed (``anchor_to_state``)
        rewards = self.rewards(scene, modes)
        if not np.isfinite(rewards).all():
            raise ValueError(f"agent vla_best_of_n: scene {scene.token}: the reward model gave non-finite rewards")
        poses = np.stack([self._plan(m).poses for m in modes])
        return Candidates(poses, rewards.astype(np.float32), self.trajectory_sampling)

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        """The candidate of highest learned reward (selection score)."""
        return self.compute_candidates(agent_input, scene).best()

    def compute_trajectories(
        self, agent_inputs: list[AgentInput], scenes: list[Scene] | None = None
    ) -> list[Trajectory]:
        """One scene after the other (each scene's candidates are scored together)."""
        if scenes is None or len(scenes) != len(agent_inputs):
            raise ValueError("agent vla_best_of_n: compute_trajectories needs one scene per input")
        return [self.compute_trajectory(a, s) for a, s in zip(agent_inputs, scenes, strict=True)]


def _refuse_future(loaded: LoadedRewardModel, name: str) -> LoadedRewardModel:
    """``loaded``, unless its model reads the log's future (an oracle, not a driving agent).

    Raises:
        ValueError: naming the model.
    """
    if loaded.model.reads_future:
        raise ValueError(
            f"agent vla_best_of_n: the reward model of {name} reads the log's future (model.inputs.use_agent_futures: "
            "the road users'; use_red_lights: the lights'): picking by it would drive by the future; use one "
            "without them"
        )
    return loaded
