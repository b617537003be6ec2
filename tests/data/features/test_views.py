"""Two models' inputs of one scene side by side: one builder with two settings, through one feature cache."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from irl_vla.data.features import FeatureDataset
from irl_vla.data.features.dataset import LoadStatus, collate
from irl_vla.data.features.ego import EgoStatusBuilder
from irl_vla.data.features.targets import AgentTargetBuilder, TrajectoryTargetBuilder
from irl_vla.data.features.views import ViewsDataset, strip_view
from irl_vla.data.split import SceneLoader


def _view(source: object, cache: Path, agents: int, tokens: list[str] | None = None) -> FeatureDataset:
    return FeatureDataset(
        source,  # type: ignore[arg-type]
        [EgoStatusBuilder()],
        [TrajectoryTargetBuilder(), AgentTargetBuilder(max_agents=agents)],
        tokens=tokens,
        cache_dir=cache,
    )


def test_one_builder_with_two_settings_in_one_batch(source: partial[SceneLoader], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    policy, reward = _view(source, cache, agents=30), _view(source, cache, agents=5)
    views = ViewsDataset({"": policy, "reward/": reward})
    batch = collate([views[0], views[1]])
    assert batch.targets["agent_states"].shape[:2] == (2, 30)
    assert batch.targets["reward/agent_states"].shape[:2] == (2, 5)
    assert torch.equal(batch.features["reward/ego_status"], batch.features["ego_status"])
    # the reward model reads its own keys back
    own = strip_view(batch.targets, "reward/")
    assert set(own) == {"trajectory", "agent_states", "agent_classes", "agent_mask"}
    assert own["agent_states"].shape[1] == 5
    # both settings' entries sit in the one cache, so neither view rebuilds the other's
    token = views.tokens[0]
    assert len(list((cache / token[:2] / token).glob("agents-*.safetensors"))) == 2
    assert set(policy.load(token)[1].values()) == {LoadStatus.CACHED}
    assert set(reward.load(token)[1].values()) == {LoadStatus.CACHED}


def test_views_that_would_mix_are_refused(source: partial[SceneLoader], tmp_path: Path) -> None:
    policy = _view(source, tmp_path, agents=30)
    with pytest.raises(ValueError, match="prefix 'reward' must be empty or end with '/'"):
        ViewsDataset({"": policy, "reward": _view(source, tmp_path, agents=5)})  # "reward" + "agent_states"...
    other = _view(source, tmp_path, agents=5, tokens=policy.tokens[:1])
    with pytest.raises(ValueError, match="view 'reward/' has other tokens"):
        ViewsDataset({"": policy, "reward/": other})
