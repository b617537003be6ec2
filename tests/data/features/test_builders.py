"""Builders on hand-made inputs: BEV rasters cell by cell, LiDAR counts, agent boxes, resizing, the tokenizer."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from irl_vla.data.enums import BoundingBoxIndex, LidarIndex, MetaAction
from irl_vla.data.features.bev import BevGrid
from irl_vla.data.features.bev_semantic import BevSemanticClass, BevSemanticTargetBuilder
from irl_vla.data.features.cameras import CameraBuilder
from irl_vla.data.features.lidar import LidarBevBuilder, LidarBevChannel
from irl_vla.data.features.targets import (
    IGNORE_INDEX,
    AgentStateIndex,
    AgentTargetBuilder,
    MetaActionTargetBuilder,
    TrajectoryTargetBuilder,
)
from irl_vla.data.features.tokenizer import SpecialToken, build_tokenizer, load_tokenizer, save_tokenizer
from irl_vla.data.scene import Annotations, Scene
from irl_vla.data.sensors import Camera, CameraCalibration, Lidar
from tests.fixtures import build_straight_scene, build_t_junction


def _scene_with(boxes: list[tuple[float, float, float, float, float]], names: list[str]) -> Scene:
    """The straight scene on the T-junction, with boxes (x, y, heading, length, width) in the current frame."""
    scene = build_straight_scene()
    scene.map_api = build_t_junction()
    arr = np.zeros((len(boxes), len(BoundingBoxIndex)))
    for k, (x, y, h, length, width) in enumerate(boxes):
        arr[k, [BoundingBoxIndex.X, BoundingBoxIndex.Y, BoundingBoxIndex.HEADING]] = x, y, h
        arr[k, [BoundingBoxIndex.LENGTH, BoundingBoxIndex.WIDTH, BoundingBoxIndex.HEIGHT]] = length, width, 1.5
    tokens = [f"t{k}" for k in range(len(boxes))]
    scene.current_frame.annotations = Annotations(arr, names, np.ones((len(boxes), 3)), tokens, tokens)
    return scene


def test_bev_semantic_map_paints_cell_centres_by_class() -> None:
    # ego at x = -40 (global) heading east on lane w_in_0 (y = -1.75); lanes are 3.5 m wide
    scene = _scene_with([(10.0, 0.0, 0.0, 4.0, 2.0), (-6.0, 3.0, np.pi / 2, 1.0, 1.0)], ["vehicle", "pedestrian"])
    grid = BevGrid()
    bev = BevSemanticTargetBuilder(grid).compute(scene)["bev_semantic_map"].numpy()
    # the vehicle covers x in [8, 12], y in [-1, 1]: rows 80..87, columns 62..65, exactly
    vehicle = np.argwhere(bev == BevSemanticClass.VEHICLE)
    assert vehicle[:, 0].min() == 80 and vehicle[:, 0].max() == 87
    assert vehicle[:, 1].min() == 62 and vehicle[:, 1].max() == 65 and len(vehicle) == 32
    assert np.count_nonzero(bev == BevSemanticClass.PEDESTRIAN) == 4  # 1 m x 1 m = 2 x 2 cells
    # the road: ego's lane centre line at y = 0 runs through the ego's row, drivable area beside it
    row = 59  # cell centres at x = -2.25 m
    assert bev[row, 63] == bev[row, 64] == BevSemanticClass.LANE_CENTERLINE  # y = -0.25 and 0.25: on the band
    assert bev[row, 65] == BevSemanticClass.DRIVABLE_AREA  # y = 0.75: beside it
    assert bev[row, 71] == BevSemanticClass.LANE_CENTERLINE  # y = 3.75 - 0.25: the oncoming lane's centre line
    assert bev[row, 0] == BevSemanticClass.BACKGROUND  # 32 m to the right: off the road
    # the junction's crosswalk (global x 50.5..53.5) is 90 m ahead: outside the 32 m grid
    assert not np.any(bev == BevSemanticClass.CROSSWALK)
    near = dataclasses.replace(BevGrid(), x_max=96.0)
    bev_far = BevSemanticTargetBuilder(near).compute(scene)["bev_semantic_map"].numpy()
    assert np.any(bev_far == BevSemanticClass.CROSSWALK)


def test_agent_targets_keep_the_nearest_boxes_on_the_grid() -> None:
    boxes = [(20.0, 0.0, 0.1, 4.0, 2.0), (5.0, -3.0, 0.0, 1.0, 1.0), (50.0, 0.0, 0.0, 4.0, 2.0), (-8.0, 2.0, 0, 4, 2)]
    scene = _scene_with(boxes, ["vehicle", "pedestrian", "vehicle", "barrier"])
    out = AgentTargetBuilder(max_agents=2).compute(scene)
    assert out["agent_mask"].tolist() == [True, True]
    assert out["agent_states"][:, AgentStateIndex.X].tolist() == [5.0, -8.0]  # nearest first, 50 m one off the grid
    assert out["agent_classes"].tolist() == [1, 4]  # AgentClass order: pedestrian, barrier
    out = AgentTargetBuilder(max_agents=5).compute(scene)
    assert out["agent_mask"].tolist() == [True, True, True, False, False]
    assert out["agent_classes"][3:].tolist() == [IGNORE_INDEX] * 2
    assert torch.all(out["agent_states"][3:] == 0)
    assert out["agent_states"][2, AgentStateIndex.HEADING] == pytest.approx(0.1)


def test_trajectory_and_meta_action_targets() -> None:
    scene = build_straight_scene(speed=10.0)
    traj = TrajectoryTargetBuilder(num_poses=8).compute(scene)["trajectory"]
    assert torch.allclose(traj[:, 0], torch.arange(1, 9) * 5.0) and torch.all(traj[:, 1:] == 0)
    assert MetaActionTargetBuilder().compute(scene)["meta_action"].item() == IGNORE_INDEX  # unlabelled
    scene.current_frame.meta_action = MetaAction.SLOW_DOWN
    label = MetaActionTargetBuilder().compute(scene)["meta_action"].item()
    assert label == list(MetaAction).index(MetaAction.SLOW_DOWN)


def test_lidar_bev_counts_points_per_cell_and_height_and_saturates() -> None:
    scene = build_straight_scene()
    points = np.zeros((len(LidarIndex), 9), dtype=np.float32)
    points[LidarIndex.X] = [10.1] * 7 + [0.1, 40.0]  # seven in one cell, one near the ego, one off the grid
    points[LidarIndex.Y] = [-3.9] * 7 + [0.1, 0.0]
    points[LidarIndex.Z] = [1.0] * 6 + [0.0, 9.0, 1.0]  # six high, one on the ground; 9 m is above max_height
    scene.frames[scene.current_index].lidar = Lidar(points)
    bev = LidarBevBuilder(max_per_cell=5).compute(scene.get_agent_input())["lidar_bev"][0]
    assert bev[LidarBevChannel.ABOVE, 84, 56] == 1.0  # six counts saturate at five
    assert bev[LidarBevChannel.BELOW, 84, 56] == pytest.approx(1 / 5)
    assert bev.sum() == pytest.approx(1.2)  # nothing else: the high point and the far one are dropped
    scene.frames[scene.current_index].lidar = None
    with pytest.raises(ValueError, match="LiDAR is not loaded at history index 3"):
        LidarBevBuilder().compute(scene.get_agent_input())


def test_lidar_bev_intensity_channel_keeps_the_brightest_ground_return() -> None:
    scene = build_straight_scene()
    points = np.zeros((len(LidarIndex), 5), dtype=np.float32)
    points[LidarIndex.X] = [10.1, 10.2, 10.3, 20.1, 20.1]  # three ground returns in one cell (paint among road)
    points[LidarIndex.Y] = [-3.9, -3.8, -3.7, 5.1, 5.1]
    points[LidarIndex.Z] = [0.0, 0.0, 0.0, 1.0, 0.0]  # a bright box return above the ground is no paint
    points[LidarIndex.INTENSITY] = [0.1, 0.6, 0.1, 0.8, 0.05]
    scene.frames[scene.current_index].lidar = Lidar(points)
    plain = LidarBevBuilder().compute(scene.get_agent_input())["lidar_bev"][0]
    builder = LidarBevBuilder(intensity=True)
    bev = builder.compute(scene.get_agent_input())["lidar_bev"][0]
    assert plain.shape[0] == 2 and bev.shape[0] == len(LidarBevChannel) == builder.dims()["C"]
    assert torch.equal(bev[: LidarBevChannel.INTENSITY], plain)  # the counts are unchanged
    assert bev[LidarBevChannel.INTENSITY, 84, 56] == pytest.approx(0.6)  # the marking, not the mean
    assert bev[LidarBevChannel.INTENSITY, 104, 74] == pytest.approx(0.05)  # the ground return under the box
    assert bev[LidarBevChannel.INTENSITY].sum() == pytest.approx(0.65)  # empty cells stay 0
    # Without it, the fingerprint is the one entries had before the option existed; with it, another.
    assert "intensity" not in LidarBevBuilder().params()
    assert builder.fingerprint() != LidarBevBuilder().fingerprint()


def test_cameras_are_resized_with_their_intrinsics() -> None:
    scene = build_straight_scene()
    k = np.array([[400.0, 0, 256], [0, 400, 144], [0, 0, 1]])
    cal = CameraCalibration(np.eye(3), np.array([1.7, 0.0, 1.6]), k)
    image = np.zeros((288, 512, 3), dtype=np.uint8)
    image[:, 256:] = 200  # right half bright
    scene.frames[scene.current_index].cameras = {"cam_f0": Camera(cal, image)}
    out = CameraBuilder(cameras=("cam_f0",), height=144, width=256).compute(scene.get_agent_input())
    assert out["camera_images"].shape == (1, 1, 3, 144, 256)
    assert out["camera_images"][0, 0, :, :, :127].max() == 0 and out["camera_images"][0, 0, :, :, 129:].min() == 200
    assert torch.allclose(out["camera_intrinsics"][0], torch.tensor([[200.0, 0, 128], [0, 200, 72], [0, 0, 1]]))
    assert out["camera_to_lidar"][0, :3, 3].tolist() == pytest.approx([1.7, 0.0, 1.6])
    with pytest.raises(ValueError, match="camera cam_l0 is not loaded"):
        CameraBuilder(cameras=("cam_l0",)).compute(scene.get_agent_input())


def test_tokenizer_is_deterministic_splits_digits_and_round_trips(tmp_path: Path) -> None:
    texts = ["In 35 m, turn left at the intersection.", "Follow the road.", "Turn right at the intersection."] * 3
    shuffled = texts[:]
    random.Random(0).shuffle(shuffled)
    a, b = build_tokenizer(texts), build_tokenizer(shuffled)
    assert a.get_vocab() == b.get_vocab() and a.to_str() == b.to_str()
    enc = a.encode("In 350 m, turn LEFT at the roundabout.")
    assert enc.tokens == ["[BOS]", "in", "3", "5", "0", "m", ",", "turn", "left", "at", "the", "[UNK]", ".", "[EOS]"]
    assert [a.token_to_id(t.value) for t in SpecialToken] == [0, 1, 2, 3]
    save_tokenizer(a, tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    assert loaded.encode("Follow the road.").ids == a.encode("Follow the road.").ids
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a tokenizer file"):
        load_tokenizer(tmp_path / "bad.json")
