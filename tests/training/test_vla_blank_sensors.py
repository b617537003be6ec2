"""``agent.blank_sensors``: the VLA shown flat cameras and an empty LiDAR (a diagnostic of its reliance on them)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from irl_vla.agents.registry import make_agent, submittable_agent
from irl_vla.agents.sensor_blanking import BlankedSensor, blank_sensors
from irl_vla.data.split import SceneLoader
from irl_vla.training.il import run_il
from tests.training.conftest import il_config, model_doc


@pytest.fixture(scope="module")
def vla_run(split_root: Path, source: partial[SceneLoader], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("vla_blank_run")
    run_il(il_config(split_root, str(run), max_steps=2), model_doc("tiny"), source)
    return run


def test_blanked_sensors_reach_the_network_as_zero_images_and_an_empty_bev(
    vla_run: Path, source: partial[SceneLoader]
) -> None:
    agent = submittable_agent({"name": "vla", "checkpoint": str(vla_run), "blank_sensors": ["cameras", "lidar"]})
    plain = submittable_agent({"name": "vla", "checkpoint": str(vla_run)})
    loader = source()
    inputs = [loader.get_scene(t, plain.get_sensor_config()).get_agent_input() for t in loader.tokens[:3]]
    before = [[cam.image.copy() for cam in frame.values() if cam.image is not None] for frame in inputs[0].cameras]

    seen: list[dict[str, torch.Tensor]] = []
    policy = agent.policy
    features = policy.features
    policy.features = lambda xs: seen.append(features(xs)) or seen[-1]  # type: ignore[method-assign]
    blanked = agent.compute_trajectories(inputs)
    model = policy.model
    lidar = seen[0]["lidar_bev"]
    images = model.image_norm.scaled(seen[0]["camera_images"], 1.0 / 255.0)
    assert lidar.abs().sum() == 0  # no returns
    assert images.abs().max() < 0.05  # the training mean image, up to rounding to uint8: zeros after normalisation
    np.testing.assert_array_equal(seen[0]["ego_status"], features(inputs)["ego_status"])  # the rest as it was

    # the inputs themselves are not touched, and the plans differ from the network's with its sensors
    after = [[cam.image for cam in frame.values() if cam.image is not None] for frame in inputs[0].cameras]
    for b, a in zip(before, after, strict=True):
        for x, y in zip(b, a, strict=True):
            np.testing.assert_array_equal(x, y)
    normal = plain.compute_trajectories(inputs)
    assert any(not np.allclose(n.poses, z.poses, atol=1e-4) for n, z in zip(normal, blanked, strict=True))
    # the candidates are the blanked network's too
    candidates = agent.compute_candidates(inputs[0])
    assert candidates is not None and np.isfinite(candidates.poses).all()


def test_blanking_one_kind_keeps_the_other_and_bad_names_are_refused(
    vla_run: Path, source: partial[SceneLoader]
) -> None:
    loader = source()
    sensors = submittable_agent({"name": "vla", "checkpoint": str(vla_run)}).get_sensor_config()
    x = loader.get_scene(loader.tokens[0], sensors).get_agent_input()
    colour = np.array([10, 20, 30], dtype=np.uint8)
    y = blank_sensors(x, frozenset({BlankedSensor.LIDAR}), colour)
    assert y.cameras is x.cameras and y.ego_statuses is x.ego_statuses and y.instruction == x.instruction
    assert any(lidar is not None for lidar in x.lidars)
    assert all((a is None) == (b is None) for a, b in zip(x.lidars, y.lidars, strict=True))
    assert all(lidar is None or lidar.lidar_pc.shape[1] == 0 for lidar in y.lidars)
    z = blank_sensors(x, frozenset({BlankedSensor.CAMERAS}), colour)
    assert z.lidars is x.lidars
    shown = [cam.image for frame in z.cameras for cam in frame.values() if cam.image is not None]
    assert shown and all((image == colour).all() for image in shown)
    with pytest.raises(ValueError, match="blank_sensors: unknown sensor 'radar'"):
        make_agent({"name": "vla", "checkpoint": "unused", "blank_sensors": ["radar"]})
    with pytest.raises(ValueError, match="colour must be 3 uint8"):
        blank_sensors(x, frozenset({BlankedSensor.CAMERAS}), np.zeros(3))
