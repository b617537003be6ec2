"""The dataset yields the shapes the builders' contract states; collate and DataLoader workers."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from irl_vla.data.features import FeatureDataset, build_feature_builders, build_target_builders, collate
from irl_vla.data.features.builder import TensorSpec, merge_sensor_configs
from irl_vla.data.features.dataset import LoadStatus
from irl_vla.data.features.ego import EgoStatusBuilder
from irl_vla.data.scene import Annotations
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.split import SceneLoader

#: What the contract states for the default builders (docs/features.md), B excluded.
EXPECTED = {
    "ego_status": ((4, 7), torch.float32),
    "driving_command": ((4,), torch.float32),
    "camera_images": ((1, 3, 3, 144, 256), torch.uint8),
    "camera_intrinsics": ((3, 3, 3), torch.float32),
    "camera_to_lidar": ((3, 4, 4), torch.float32),
    "lidar_bev": ((1, 2, 128, 128), torch.float32),
    "instruction_tokens": ((48,), torch.int64),
    "instruction_mask": ((48,), torch.bool),
    "trajectory": ((8, 3), torch.float32),
    "agent_states": ((30, 7), torch.float32),
    "agent_classes": ((30,), torch.int64),
    "agent_mask": ((30,), torch.bool),
    "bev_semantic_map": ((128, 128), torch.int64),
    "meta_action": ((), torch.int64),
    "scene_description_tokens": ((64,), torch.int64),
    "scene_description_mask": ((64,), torch.bool),
}
FEATURES = {"ego_status": {}, "driving_command": {}, "cameras": {}, "lidar_bev": {}, "navigation_instruction": {}}
TARGETS = {"trajectory": {}, "agents": {}, "bev_semantic_map": {}, "meta_action": {}, "scene_description": {}}


def make_dataset(source: partial[SceneLoader], tokenizer: Path, **kwargs: object) -> FeatureDataset:
    features = {**FEATURES, "navigation_instruction": {"tokenizer": str(tokenizer)}}
    targets = {**TARGETS, "scene_description": {"tokenizer": str(tokenizer)}}
    return FeatureDataset(source, build_feature_builders(features), build_target_builders(targets), **kwargs)


def test_samples_have_the_contract_shapes_and_batches_add_b(source: partial[SceneLoader], tokenizer_path: Path) -> None:
    dataset = make_dataset(source, tokenizer_path)
    sample = dataset[0]
    got = {**sample.features, **sample.targets}
    assert {k: (tuple(v.shape), v.dtype) for k, v in got.items()} == EXPECTED
    assert set(sample.features) == {"ego_status", "driving_command", "camera_images", "camera_intrinsics",
                                    "camera_to_lidar", "lidar_bev", "instruction_tokens", "instruction_mask"}
    assert sample.features["camera_images"].float().std() > 5  # rendered pictures
    assert sample.features["instruction_mask"].sum() > 3  # a tokenised sentence
    assert sample.targets["scene_description_mask"].sum() > 3
    assert not torch.equal(sample.features["instruction_tokens"][:8], sample.targets["scene_description_tokens"][:8])
    assert torch.count_nonzero(sample.targets["bev_semantic_map"]) > 100  # the road at least
    assert torch.allclose(sample.features["ego_status"][-1, :3], torch.zeros(3))  # the current pose is the origin
    batch = collate([dataset[0], dataset[1]])
    assert batch.tokens == dataset.tokens[:2]
    assert {k: tuple(v.shape) for k, v in {**batch.features, **batch.targets}.items()} == {
        k: (2, *shape) for k, (shape, _) in EXPECTED.items()
    }


def test_dataloader_workers_give_what_the_dataset_gives(
    source: partial[SceneLoader], tokenizer_path: Path, tmp_path: Path
) -> None:
    dataset = make_dataset(source, tokenizer_path, cache_dir=tmp_path / "cache")
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate)
    batches = list(loader)  # workers fill the cache
    assert [t for b in batches for t in b.tokens] == dataset.tokens
    direct = collate([dataset[i] for i in range(2)])  # read back from the cache here
    for key, value in {**direct.features, **direct.targets}.items():
        assert torch.equal(value, {**batches[0].features, **batches[0].targets}[key]), key


def test_features_read_only_the_agent_input(source: partial[SceneLoader], tokenizer_path: Path) -> None:
    dataset = make_dataset(source, tokenizer_path)
    loader = source()
    token = dataset.tokens[0]
    sensors = merge_sensor_configs([b.sensor_config() for b in dataset.feature_builders])
    scene = loader.get_scene(token, sensors)
    before = {b.name: b.compute(scene.get_agent_input()) for b in dataset.feature_builders}
    for frame in scene.frames:  # what a policy must not see: annotations, the future, the map
        frame.annotations = Annotations.empty()
    for frame in scene.frames[scene.current_index + 1 :]:
        frame.ego_status = dataclasses.replace(frame.ego_status, ego_velocity=frame.ego_status.ego_velocity * 0)
    scene.map_api = None
    after = {b.name: b.compute(scene.get_agent_input()) for b in dataset.feature_builders}
    for name, tensors in before.items():
        assert all(torch.equal(v, after[name][k]) for k, v in tensors.items()), name


def test_builders_refuse_bad_settings_and_clashing_keys(source: partial[SceneLoader]) -> None:
    with pytest.raises(ValueError, match="unknown builder 'nope'"):
        build_feature_builders({"nope": {}})
    with pytest.raises(ValueError, match=r"features\.cameras.*bogus"):
        build_feature_builders({"cameras": {"bogus": 1}})
    with pytest.raises(ValueError, match="CameraBuilder.frames"):
        build_feature_builders({"cameras": {"frames": [-1]}})
    with pytest.raises(ValueError, match="ego_status is listed twice"):
        FeatureDataset(source, [EgoStatusBuilder(), EgoStatusBuilder()])
    with pytest.raises(ValueError, match="uses letters outside"):
        TensorSpec(("B", "T"), torch.float32)
    merged = merge_sensor_configs([SensorConfig(cameras={"cam_f0": [3]}), SensorConfig({"cam_f0": [1]}, lidar_pc=[3])])
    assert merged.cameras == {"cam_f0": [1, 3]} and merged.lidar_pc == [3]


def test_the_data_bench_times_every_mode(source: partial[SceneLoader]) -> None:
    from irl_vla.benchmarks.data_bench import DataBenchConfig, run

    records = list(run(DataBenchConfig(num_samples=2, batch_size=2, workers=[0]), 1, source))
    assert [r["name"] for r in records] == ["log_decode", "dataset_cold_workers_0", "dataset_cached_workers_0"]
    assert records[0]["items"] == 1 and records[0]["logs_per_s"] > 0  # the tiny split has one log
    assert all(r["items"] == 2 and r["samples_per_s"] > 0 for r in records[1:])
    assert records[2]["cache_bytes_per_sample"] > 500_000  # the rig's images dominate
    with pytest.raises(ValueError, match="DataBenchConfig.workers"):
        DataBenchConfig(workers=[-1])


def test_store_writes_checked_entries_once_and_refuses_what_it_cannot_hold(
    source: partial[SceneLoader], tmp_path: Path
) -> None:
    builder = EgoStatusBuilder(num_history_frames=4)
    token = source().tokens[0]
    computed = FeatureDataset(source, [builder]).load(token)[0].features
    dataset = FeatureDataset(source, [builder], tokens=[token], cache_dir=tmp_path)
    assert dataset.store(token, {builder.name: computed}) == [builder.name]
    assert dataset.store(token, {builder.name: computed}) == []  # current: only read
    sample, status = dataset.load(token)
    assert set(status.values()) == {LoadStatus.CACHED}
    assert all(torch.equal(sample.features[k], v) for k, v in computed.items())
    wrong = {k: v[:1] for k, v in computed.items()}
    other = FeatureDataset(source, [builder], tokens=[token], cache_dir=tmp_path / "other")
    with pytest.raises(ValueError, match=f"scene {token}"):
        other.store(token, {builder.name: wrong})  # checked against the builder's specs, as computed samples are
    with pytest.raises(ValueError, match="no cache"):
        FeatureDataset(source, [builder]).store(token, {builder.name: computed})
    with pytest.raises(ValueError, match=r"\['driving_command'\] are not this dataset's"):
        dataset.store(token, {"driving_command": computed})
