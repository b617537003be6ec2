"""Log records: exact round trip, byte-identical writes, clear errors for missing or corrupt files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from irl_vla.common.io import DataFormatError
from irl_vla.data.log_io import LogRecord, log_to_bytes, read_log, write_log
from scenarios.registry import load_families
from sim_bridges.embedded.recorder import record_log
from sim_bridges.embedded.scenario_world import build_scenario


@pytest.fixture(scope="module")
def record() -> LogRecord:
    inst = build_scenario(load_families()["signalised_intersection"], 1)
    frames = record_log(inst.world, inst.route_ids, inst.route_centerline, log_name="log_a", num_frames=16)
    return LogRecord("log_a", inst.world.map, frames, [(frames[3].token, 0), (frames[5].token, 2)], meta={"seed": 1})


def test_round_trip_is_exact_and_bytes_are_deterministic(tmp_path: Path, record: LogRecord) -> None:
    path = tmp_path / "a.log.json.gz"
    write_log(record, path)
    back = read_log(path)
    assert back.map == record.map and back.scenes == record.scenes and back.meta == {"seed": 1}
    for fa, fb in zip(record.frames, back.frames, strict=True):
        assert fa.token == fb.token and fa.instruction == fb.instruction and fa.meta_action is fb.meta_action
        assert fa.scene_description == fb.scene_description and fa.scene_description
        assert np.array_equal(fa.ego_status.ego_pose, fb.ego_status.ego_pose)
        assert np.array_equal(fa.annotations.boxes, fb.annotations.boxes)
        assert fa.traffic_lights == fb.traffic_lights
    assert log_to_bytes(back) == path.read_bytes() == log_to_bytes(record)
    scene = back.scene(record.frames[5].token)
    assert scene.current_frame.token == record.frames[5].token and len(scene.frames) == 14


def test_missing_truncated_and_foreign_files_raise_naming_the_file(tmp_path: Path, record: LogRecord) -> None:
    with pytest.raises(FileNotFoundError, match="nope.log.json.gz"):
        read_log(tmp_path / "nope.log.json.gz")
    path = tmp_path / "b.log.json.gz"
    write_log(record, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"b.log.json.gz: corrupt log record"):
        read_log(path)
    path.write_bytes(gzip.compress(b'{"format": "other"}'))
    with pytest.raises(DataFormatError, match="b.log.json.gz: not an irl_vla.log file"):
        read_log(path)
    path.write_bytes(gzip.compress(data and gzip.decompress(data).replace(b'"ego_pose":[', b'"ego_pose":["x",', 1)))
    with pytest.raises(DataFormatError, match=r"b.log.json.gz: bad field frames\[0\]"):
        read_log(path)


def test_sensors_attached_to_a_scene_stay_out_of_the_log(record: LogRecord) -> None:
    from irl_vla.data.enums import LidarIndex
    from irl_vla.data.sensors import Lidar

    token, _ = record.scenes[0]
    scene = record.scene(token)
    scene.current_frame.lidar = Lidar(np.zeros((len(LidarIndex), 3), np.float32))
    again = record.scene(token)
    assert again.current_frame.lidar is None and again.current_frame.token == token
    assert all(f.lidar is None for f in record.frames)


def test_a_log_of_the_previous_version_asks_for_regeneration(tmp_path: Path, record: LogRecord) -> None:
    """Version 1 mixed scene facts into the instruction; such a log is refused, naming the file and the fix."""
    import json

    doc = json.loads(gzip.decompress(log_to_bytes(record)))
    doc["version"] = 1
    for frame in doc["frames"]:
        frame["instruction"] += " " + frame.pop("scene_description")
    path = tmp_path / "old.log.json.gz"
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(DataFormatError, match=r"old.log.json.gz: irl_vla.log version 1, expected 2.*regenerate"):
        read_log(path)
