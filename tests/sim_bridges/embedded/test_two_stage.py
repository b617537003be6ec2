"""Stage-2 scenes: faithful replay, starts around the expert's endpoint, the mapping file, resume, clear errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError, write_json
from irl_vla.common.parallel import TaskError
from irl_vla.data.split import MANIFEST, SceneLoader
from irl_vla.data.two_stage import TWO_STAGE_FILE, read_groups, two_stage_dir
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.two_stage import ENDPOINT_FRAMES, TwoStageSpec, generate_two_stage

SPEC = SplitSpec(logs_per_family=1, hard_only=True, frame_interval=5)
STILL = TwoStageSpec(pairs_per_group=1, position_std=0.0, lateral_range=0.0, speed_std=0.0)


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two_stage")
    cfg = GenerateConfig(data_root=str(root), families=["cut_in"], num_log_frames=25, workers=1, progress=False)
    generate_split("synth_navhard", SPEC, cfg)
    return root / "synth_navhard"


def test_without_perturbation_the_stage_two_scene_is_the_logged_future(split_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "synth_navhard"
    work.mkdir()
    for name in (MANIFEST, "logs"):
        (work / name).symlink_to(split_dir / name)
    counts = generate_two_stage(work, STILL, workers=1)
    assert counts == {"groups": 1, "pairs": 1, "rejected_draws": 0, "dropped_pairs": 0}  # only c = 8 fits 25 frames
    (group,) = read_groups(two_stage_dir(work) / TWO_STAGE_FILE)
    loader, stage_two = SceneLoader(work), SceneLoader(two_stage_dir(work))
    orig = loader.get_scene(group.orig)
    previous = loader.get_previous_scene(group.orig)
    assert previous is not None and previous.token == group.prev
    ((now_token, prev_token),) = group.pairs
    now, prev = stage_two.get_scene(now_token), stage_two.get_scene(prev_token)
    log = loader.log(loader.entry(group.orig))
    c = next(start for tok, start in log.scenes if tok == group.orig) + 3
    for scene, index in ((now, c + ENDPOINT_FRAMES), (prev, c + ENDPOINT_FRAMES - 1)):
        assert len(scene.token) == 17 and scene.scene_metadata.is_synthetic
        assert scene.scene_metadata.corresponding_original_scene == group.orig
        for k, frame in enumerate(scene.frames):  # the replayed world retraces the log exactly
            logged = log.frames[index - 3 + k]
            assert frame.timestamp == logged.timestamp
            np.testing.assert_allclose(frame.ego_status.ego_pose, logged.ego_status.ego_pose, atol=1e-9)
            np.testing.assert_allclose(frame.annotations.boxes, logged.annotations.boxes, atol=1e-9)
            assert frame.traffic_lights == logged.traffic_lights
    assert now.current_frame.timestamp - orig.current_frame.timestamp == 4_000_000
    assert now.current_frame.timestamp - prev.current_frame.timestamp == 500_000


def test_perturbed_starts_spread_around_the_endpoint_and_rerun_resumes(split_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "synth_navhard"
    work.mkdir()
    for name in (MANIFEST, "logs"):
        (work / name).symlink_to(split_dir / name)
    spec = TwoStageSpec(pairs_per_group=4)
    generate_two_stage(work, spec, workers=1)
    out = two_stage_dir(work)
    doc = json.loads((out / TWO_STAGE_FILE).read_text())
    (group,) = doc["groups"]
    offsets = np.array(group["offsets_m"])
    assert len(group["pairs"]) == 4 and len(set(map(tuple, group["pairs"]))) == 4
    assert np.all(offsets > 0.0) and np.all(offsets < 2 * 2 * spec.position_std + 2 * spec.lateral_range)
    loader, stage_two = SceneLoader(work), SceneLoader(out)
    endpoint = loader.log(loader.manifest.logs[0]).frames[8 + ENDPOINT_FRAMES].ego_status.ego_pose
    for (now_token, _), offset in zip(group["pairs"], offsets, strict=True):
        start = stage_two.get_scene(now_token).current_frame.ego_status.ego_pose
        assert np.hypot(*(start[:2] - endpoint[:2])) == pytest.approx(offset, abs=1e-3)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "logs").iterdir()}
    generate_two_stage(work, spec, workers=1)  # nothing to redo
    assert {p: p.stat().st_mtime_ns for p in (out / "logs").iterdir()} == stamps
    generate_two_stage(work, replace(spec, base_seed=1), workers=1)  # other settings: redone
    redone = json.loads((out / TWO_STAGE_FILE).read_text())["groups"][0]
    assert redone["offsets_m"] != group["offsets_m"]


def test_a_log_the_world_does_not_retrace_is_refused(split_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "synth_navhard"
    work.mkdir()
    (work / "logs").symlink_to(split_dir / "logs")
    manifest = json.loads((split_dir / MANIFEST).read_text())
    manifest["logs"][0]["seed"] += 1  # the manifest no longer names the seed the log was driven with
    write_json(work / MANIFEST, manifest)
    with pytest.raises(
        TaskError, match="synth_navhard-cut_in-00000: DataFormatError: .* does not retrace the logged ego"
    ):
        generate_two_stage(work, STILL, workers=1)


def test_a_malformed_mapping_is_named(tmp_path: Path) -> None:
    path = tmp_path / TWO_STAGE_FILE
    write_json(path, {"format": "irl_vla.two_stage", "version": 1, "groups": [{"orig": "a", "prev": "b"}]})
    with pytest.raises(DataFormatError, match=r"two_stage.json: bad groups\[0\]"):
        read_groups(path)
    write_json(path, {"format": "irl_vla.two_stage", "version": 1, "groups": [{"orig": "a", "prev": "b", "pairs": []}]})
    with pytest.raises(DataFormatError, match="has no stage-2 pairs"):
        read_groups(path)
    with pytest.raises(ValueError, match="pairs_per_group"):
        TwoStageSpec(pairs_per_group=0)


def test_a_mapping_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / TWO_STAGE_FILE
    write_json(path, {"format": "irl_vla.two_stage", "version": 99, "groups": []})
    with pytest.raises(DataFormatError, match="irl_vla.two_stage version 99, expected 1"):
        read_groups(path)
    write_json(path, {"format": "something_else", "groups": []})
    with pytest.raises(DataFormatError, match="not an irl_vla.two_stage mapping"):
        read_groups(path)
