"""Export an embedded split as a NAVSIM data root, read it back, evaluate it: same scenes, sensors and scores."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from irl_vla.data.map import MapObject
from irl_vla.data.map.map_io import object_to_dict
from irl_vla.data.sensors import SensorConfig
from irl_vla.data.source import SceneSources
from irl_vla.data.split import SceneLoader
from irl_vla.evaluation.runner import EvalConfig, run_eval
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.navsim.export import ExportConfig, export_split, shift_frame, shift_object, tile_of
from sim_bridges.navsim.openscene import (
    filter_from_yaml,
    navsim_split,
    open_navsim_split,
    read_log_pickle,
    write_log_pickle,
)
from sim_bridges.navsim.pickles import dumps
from sim_bridges.navsim.submission import SubmitConfig
from tools.cli import main
from tools.sources import navsim_renderer

SPLIT = "synth_navtest"


def assert_same_objects(got: list[MapObject], want: list[MapObject]) -> None:
    """Same objects and fields; coordinates within 1e-9 m (headings are recomputed from moved points)."""
    by_key = {(o.layer, o.id): object_to_dict(o) for o in got}
    assert set(by_key) == {(o.layer, o.id) for o in want}
    for obj in want:
        for key, value in object_to_dict(obj).items():
            other = by_key[(obj.layer, obj.id)][key]
            if isinstance(value, list) and value and isinstance(value[0], list):
                np.testing.assert_allclose(other, value, atol=1e-9, err_msg=f"{obj.layer} {obj.id} {key}")
            else:
                assert other == value, (obj.layer, obj.id, key)


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ExportConfig]:
    data = tmp_path_factory.mktemp("embedded")
    cfg = GenerateConfig(
        data_root=str(data), families=["signalised_intersection", "merge"], num_log_frames=20, workers=1, progress=False
    )
    generate_split(SPLIT, SplitSpec(logs_per_family=1, frame_interval=6), cfg)
    out = tmp_path_factory.mktemp("navsim")
    export = ExportConfig(data_root=str(data), split=SPLIT, out_root=str(out), workers=1, progress=False)
    export_split(export, renderer=navsim_renderer(export.image_width))
    return data, out, export


def test_exported_scenes_and_maps_read_back_the_same(roots: tuple[Path, Path, ExportConfig]) -> None:
    data, out, export = roots
    embedded = SceneLoader(data / SPLIT)
    navsim = open_navsim_split(str(out), SPLIT)
    scenes = set(embedded.tokens)  # the exported split also lists each scene's predecessor (navsim pairs them)
    assert [t for t in navsim.tokens if t in scenes] == embedded.tokens
    predecessors = {p.token for t in embedded.tokens if (p := embedded.get_previous_scene(t)) is not None}
    assert set(navsim.tokens) - scenes == predecessors
    logs = [e.log_name for e in embedded.manifest.logs]
    for token in embedded.tokens:
        original, read = embedded.get_scene(token), navsim.get_scene(token)
        tile = tile_of(logs.index(embedded.entry(token).log_name), export)
        assert read.scene_metadata.map_name == export.location and not read.scene_metadata.is_synthetic
        for before, after in zip(original.frames, read.frames, strict=True):
            moved = shift_frame(before, tile)
            assert (after.token, after.timestamp) == (moved.token, moved.timestamp)
            np.testing.assert_allclose(after.ego_status.ego_pose, moved.ego_status.ego_pose, atol=1e-9)
            np.testing.assert_array_equal(after.ego_status.ego_velocity, moved.ego_status.ego_velocity)
            np.testing.assert_array_equal(after.ego_status.driving_command, moved.ego_status.driving_command)
            assert after.roadblock_ids == moved.roadblock_ids and after.traffic_lights == moved.traffic_lights
            np.testing.assert_array_equal(after.annotations.boxes, moved.annotations.boxes)
            assert after.annotations.names == moved.annotations.names
            assert after.annotations.track_tokens == moved.annotations.track_tokens
            assert (after.instruction, after.scene_description, after.meta_action) == (
                moved.instruction,
                moved.scene_description,
                moved.meta_action,
            )
        previous, expected = navsim.get_previous_scene(token), embedded.get_previous_scene(token)
        assert (previous and previous.token) == (expected and expected.token)
        # the log's tile of the merged map is the original map, moved
        assert read.map_api is not None and original.map_api is not None
        tile_objects = [
            o for o in read.map_api.all_objects() if tile.id_shift <= int(o.id) < tile.id_shift + export.id_stride
        ]
        assert_same_objects(tile_objects, [shift_object(o, tile) for o in original.map_api.all_objects()])


def test_exported_sensors_match_the_rendered_ones(roots: tuple[Path, Path, ExportConfig]) -> None:
    data, out, export = roots
    embedded = SceneLoader(data / SPLIT)
    navsim = open_navsim_split(str(out), SPLIT)
    token = embedded.tokens[0]
    sensors = SensorConfig(cameras={"cam_f0": [3], "cam_b0": [3]}, lidar_pc=[3])
    read = navsim.get_scene(token, sensors)
    rendered = navsim_renderer(export.image_width)().attach(embedded.get_scene(token), sensors)
    for name in ("cam_f0", "cam_b0"):
        a, b = read.frames[3].cameras[name], rendered.frames[3].cameras[name]
        assert a.image is not None and b.image is not None and a.image.shape == b.image.shape
        assert np.abs(a.image.astype(float) - b.image.astype(float)).mean() < 3.0  # JPEG at quality 95
        np.testing.assert_allclose(a.calibration.intrinsics, b.calibration.intrinsics)
        np.testing.assert_allclose(a.calibration.sensor2lidar_rotation, b.calibration.sensor2lidar_rotation)
    assert read.frames[3].lidar is not None and rendered.frames[3].lidar is not None
    np.testing.assert_array_equal(read.frames[3].lidar.lidar_pc, rendered.frames[3].lidar.lidar_pc)
    agent_input = read.get_agent_input()
    assert set(agent_input.cameras[3]) == {"cam_f0", "cam_b0"} and agent_input.cameras[0] == {}
    bare = navsim.get_scene(token)  # sensors loaded for one scene stay with that scene
    assert bare.frames[3].cameras == {} and bare.frames[3].lidar is None


def test_eval_on_the_exported_root_scores_like_the_embedded_split(roots: tuple[Path, Path, ExportConfig]) -> None:
    data, out, _ = roots
    common = {"data_root": str(data), "split": SPLIT, "workers": 1, "progress": False}
    run_eval(EvalConfig(**common, output_dir=str(data / "eval_a")))
    cfg = EvalConfig(**common, output_dir=str(data / "eval_b"), source="navsim", navsim_root=str(out))
    run_eval(cfg, SceneSources(navsim_split(str(out), SPLIT)))
    for agent in ("constant_velocity", "human", "pdm_closed"):
        a = list(csv.DictReader((data / "eval_a" / agent / "scores.csv").open()))
        b = list(csv.DictReader((data / "eval_b" / agent / "scores.csv").open()))
        assert all(r["valid"] == "True" for r in b)
        # the NAVSIM side also scores the predecessors it lists (its average runs over both); per scene both agree
        assert a[-1]["token"] == b[-1]["token"] == "average_all_frames" and len(b) > len(a)
        a = a[:-1]
        b = [r for r in b if r["token"] in {r["token"] for r in a}]
        assert [r["token"] for r in a] == [r["token"] for r in b]
        for ra, rb in zip(a, b, strict=True):
            for key in ra:
                if key not in ("token", "valid") and ra[key] not in ("", "nan"):
                    assert float(ra[key]) == pytest.approx(float(rb[key]), abs=1e-6), (agent, ra["token"], key)


def test_bad_logs_are_named(roots: tuple[Path, Path, ExportConfig], tmp_path: Path) -> None:
    _, out, _ = roots
    logs = tmp_path / "navsim_logs" / SPLIT
    shutil.copytree(out / "navsim_logs" / SPLIT, logs)
    shutil.copytree(out / "maps", tmp_path / "maps")
    victim = sorted(logs.iterdir())[0]
    frames = read_log_pickle(victim)
    del frames[2]["ego2global_rotation"]
    write_log_pickle(victim, frames)
    with pytest.raises(DataFormatError, match=rf"{victim.name} frame 2 \(frame {frames[2]['token']}\): missing key"):
        open_navsim_split(str(tmp_path), SPLIT)
    frames[2]["ego2global_rotation"] = np.array([1.0, 0.0, np.nan, 0.0])
    write_log_pickle(victim, frames)
    with pytest.raises(DataFormatError, match="ego2global_rotation holds NaN"):
        open_navsim_split(str(tmp_path), SPLIT)
    victim.write_bytes(dumps([{"token": "x", "log_name": "another_log"}]))
    with pytest.raises(DataFormatError, match="not the file's stem"):
        open_navsim_split(str(tmp_path), SPLIT)


def test_navsim_export_command_prints_where_things_went(
    roots: tuple[Path, Path, ExportConfig], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _, _ = roots
    args = [f"paths.data_root={data}", f"navsim_export.out_root={tmp_path}", "navsim_export.cameras=[]"]
    assert main(["navsim-export", *args, "navsim_export.lidar=false", "navsim_export.progress=false"]) == 0
    printed = capsys.readouterr().out
    assert f"maps_root: {tmp_path / 'maps'}" in printed and (tmp_path / "export.json").is_file()
    assert len(list((tmp_path / "navsim_logs" / SPLIT).iterdir())) == 2
    assert not (tmp_path / "sensor_blobs").exists()  # nothing rendered, nothing written


def test_bad_settings_and_missing_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EvalConfig.navsim_root: required with source=navsim"):
        EvalConfig(source="navsim")
    with pytest.raises(ValueError, match=r"EvalConfig.source: 'carla' is not one of"):
        EvalConfig(source="carla")
    with pytest.raises(ValueError, match="EvalConfig.mode: two-stage scoring reads embedded"):
        EvalConfig(source="navsim", navsim_root="x", mode="two_stage")
    with pytest.raises(ValueError, match="SubmitConfig.version: v2 reads embedded"):
        SubmitConfig(source="navsim", navsim_root="x", version="v2")
    with pytest.raises(ValueError, match="SubmitConfig.version: 'v3'"):
        SubmitConfig(version="v3")
    with pytest.raises(ValueError, match="ExportConfig.location: 'carla-town01' is not one of nuPlan's"):
        ExportConfig(location="carla-town01")
    with pytest.raises(ValueError, match=r"ExportConfig.cameras: unknown cameras \['cam_x'\]"):
        ExportConfig(cameras=["cam_x"])
    with pytest.raises(FileNotFoundError, match="navsim_logs/test does not exist"):
        open_navsim_split(str(tmp_path), "test")
    (tmp_path / "navsim_logs" / "test").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no .pkl logs"):
        open_navsim_split(str(tmp_path), "test")
    split_file = tmp_path / "split.yaml"
    split_file.write_text("scene_filter: [1, 2]\n")
    with pytest.raises(DataFormatError, match="split.yaml: no scene_filter mapping"):
        filter_from_yaml(split_file)
    split_file.write_text("scene_filter: {num_history_frames: many}\n")
    with pytest.raises(DataFormatError, match="split.yaml: bad scene_filter"):
        filter_from_yaml(split_file)
