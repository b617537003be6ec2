"""Submissions unpickle as navsim's classes; bad ones are refused; the navsim agent adapter plans like the agent."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents.constant_velocity import ConstantVelocityAgent
from irl_vla.common.io import DataFormatError
from irl_vla.data.sensors import NAVSIM_CAMERA_NAMES, SensorConfig
from irl_vla.data.trajectory import Trajectory
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.embedded.two_stage import TwoStageSpec, generate_two_stage
from sim_bridges.navsim.agent import navsim_agent
from sim_bridges.navsim.export import ExportConfig, export_split
from sim_bridges.navsim.openscene import open_navsim_split
from sim_bridges.navsim.submission import (
    SubmitConfig,
    TeamInfo,
    build_submission,
    check_submission,
    predictions,
    run_submit,
    write_submission,
)
from tests.sim_bridges.navsim.standins import navsim_modules
from tools.cli import main
from tools.sources import navsim_renderer


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("submit")
    cfg = GenerateConfig(data_root=str(root), families=["cut_in"], num_log_frames=25, workers=1, progress=False)
    generate_split("synth_navtest", SplitSpec(logs_per_family=1, frame_interval=5), cfg)
    generate_split("synth_navhard", SplitSpec(logs_per_family=1, hard_only=True, frame_interval=5), cfg)
    generate_two_stage(root / "synth_navhard", TwoStageSpec(pairs_per_group=2), workers=1)
    return root


def _submit(data: Path, split: str, **kw: object) -> tuple[Path, dict]:
    out = data / "out" / split / "submission.pkl"
    return run_submit(SubmitConfig(data_root=str(data), split=split, output=str(out), progress=False, **kw))  # type: ignore[arg-type]


def test_v1_and_v2_submissions_unpickle_as_navsim_classes(data: Path) -> None:
    path, summary = _submit(data, "synth_navtest")
    assert summary["version"] == "v1" and summary["tokens"]["predictions"] == 3
    path2, summary2 = _submit(data, "synth_navhard")
    assert summary2["version"] == "v2"
    assert summary2["tokens"] == {"first_stage_predictions": 2, "second_stage_predictions": 4}  # one group
    with navsim_modules() as navsim:
        doc = pickle.loads(path.read_bytes())
        doc2 = pickle.loads(path2.read_bytes())
    assert set(doc) == {"team_name", "authors", "email", "institution", "country / region", "predictions"}
    assert set(doc2) - set(doc) == {"first_stage_predictions", "second_stage_predictions"}
    for plans in (doc["predictions"][0], doc2["first_stage_predictions"][0], doc2["second_stage_predictions"][0]):
        for value in plans.values():
            assert type(value) is navsim.Trajectory and type(value.trajectory_sampling) is navsim.TrajectorySampling
            assert value.poses.shape == (8, 3) and value.poses.dtype == np.float32
            s = value.trajectory_sampling
            assert (s.num_poses, s.time_horizon, s.interval_length) == (8, 4.0, 0.5)
    assert len(next(iter(doc2["second_stage_predictions"][0]))) == 17  # stage-2 tokens are synthetic


def test_bad_submissions_are_refused_or_reported(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'human' is privileged"):
        _submit(data, "synth_navtest", agent="human")
    plan = Trajectory(np.zeros((8, 3), np.float32))

    def plan_of(token: str) -> Trajectory:  # an agent whose plan goes NaN on one scene
        return plan if token == "a" else Trajectory(np.full((8, 3), np.nan, np.float32))

    with pytest.raises(ValueError, match="token b: the agent failed: ValueError: Trajectory.poses: non-finite"):
        predictions(["a", "b"], plan_of)
    path = tmp_path / "s.pkl"
    write_submission(path, build_submission(TeamInfo(), {"predictions": {"a": plan, "b": plan}}))
    _, problems = check_submission(path, {"predictions": ["a", "c"]})
    assert "predictions: 1 tokens of the split missing: c" in problems
    assert "predictions: 1 tokens of no split scene: b" in problems
    assert main(["submit", f"check={path}", "submit.split=null"]) == 0
    path.write_bytes(pickle.dumps({"team_name": "x", "predictions": [{"a": np.zeros(3)}]}))
    _, problems = check_submission(path)
    assert any("not a navsim Trajectory" in p for p in problems) and any("email" in p for p in problems)
    assert main(["submit", f"check={path}", "submit.split=null"]) == 1
    path.write_bytes(pickle.dumps({"payload": print}))
    with pytest.raises(DataFormatError, match="refusing to unpickle global builtins.print"):
        check_submission(path)


def test_submit_command_writes_and_checks(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = data / "cli" / "submission.pkl"
    args = [f"paths.data_root={data}", f"submit.output={out}", "submit.progress=false", "submit.team.team_name=t"]
    assert main(["submit", *args]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed.splitlines()[0])["tokens"] == {"predictions": 3} and f"wrote {out}" in printed
    assert main(["submit", f"check={out}", f"paths.data_root={data}"]) == 0
    printed = capsys.readouterr().out
    assert f"tokens checked against split {data / 'synth_navtest'}" in printed and f"{out}: valid" in printed


def test_the_navsim_agent_plans_like_the_suite_agent_on_reader_inputs(data: Path, tmp_path: Path) -> None:
    export_split(
        ExportConfig(data_root=str(data), out_root=str(tmp_path), cameras=["cam_f0"], workers=1, progress=False),
        renderer=navsim_renderer(),
    )
    loader = open_navsim_split(str(tmp_path), "synth_navtest")
    token = loader.tokens[-1]
    scene = loader.get_scene(token, SensorConfig(cameras={"cam_f0": True}, lidar_pc=True))
    ours = scene.get_agent_input()
    with navsim_modules() as navsim:
        navsim_input = navsim.AgentInput(
            [
                navsim.EgoStatus(s.ego_pose, s.ego_velocity, s.ego_acceleration, s.driving_command)
                for s in ours.ego_statuses
            ],
            [
                navsim.Cameras(**{n: navsim.Camera(c.image, c.calibration.sensor2lidar_rotation,
                   c.calibration.sensor2lidar_translation, c.calibration.intrinsics, c.calibration.distortion)
                   for n, c in cams.items()})
                for cams in ours.cameras
            ],
            [navsim.Lidar(lidar.lidar_pc if lidar else None) for lidar in ours.lidars],
        )  # fmt: skip
        agent = navsim_agent("constant_velocity")
        assert isinstance(agent, navsim.AbstractAgent) and agent.name() == "irl_vla_constant_velocity"
        agent.initialize()
        plan = agent.compute_trajectory(navsim_input)
        assert type(plan) is navsim.Trajectory and plan.trajectory_sampling.num_poses == 8
        config = agent.get_sensor_config()
        assert type(config) is navsim.SensorConfig and not any(getattr(config, n) for n in NAVSIM_CAMERA_NAMES)
        with pytest.raises(ValueError, match="'pdm_closed' is privileged"):
            navsim_agent("pdm_closed")
    expected = ConstantVelocityAgent().compute_trajectory(ours)
    np.testing.assert_allclose(plan.poses, expected.poses)
    assert np.abs(expected.poses[-1, 0]) > 1.0  # the scene moves: a real plan, not zeros


def _write(path: Path, stages: dict[str, list[str]]) -> Path:
    plan = Trajectory(np.zeros((8, 3), np.float32))
    write_submission(path, build_submission(TeamInfo(), {k: dict.fromkeys(v, plan) for k, v in stages.items()}))
    return path


def _check(path: Path, *args: str) -> int:
    return main(["submit", f"check={path}", *args])


def test_check_compares_against_the_splits_tokens_for_v1_and_both_v2_stages(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from irl_vla.data.split import SceneLoader
    from irl_vla.data.two_stage import TWO_STAGE_FILE, read_groups, two_stage_dir

    root = f"paths.data_root={data}"
    tokens = SceneLoader(data / "synth_navtest").tokens
    stranger = "f" * 16
    assert _check(_write(tmp_path / "v1.pkl", {"predictions": tokens}), root) == 0
    assert _check(_write(tmp_path / "v1_bad.pkl", {"predictions": [*tokens[1:], stranger]}), root) == 1
    printed = capsys.readouterr().out
    assert f"problem: predictions: 1 tokens of the split missing: {tokens[0]}" in printed
    assert f"problem: predictions: 1 tokens of no split scene: {stranger}" in printed

    groups = read_groups(two_stage_dir(data / "synth_navhard") / TWO_STAGE_FILE)
    first = [t for g in groups for t in (g.orig, g.prev)]
    second = [t for g in groups for pair in g.pairs for t in pair]
    navhard = [root, "submit.split=synth_navhard"]
    v2 = {"first_stage_predictions": first, "second_stage_predictions": second}
    assert _check(_write(tmp_path / "v2.pkl", v2), *navhard) == 0
    bad = {"first_stage_predictions": [*first, stranger], "second_stage_predictions": second[1:]}
    assert _check(_write(tmp_path / "v2_bad.pkl", bad), *navhard) == 1
    printed = capsys.readouterr().out
    assert f"first_stage_predictions: 1 tokens of no split scene: {stranger}" in printed
    assert f"second_stage_predictions: 1 tokens of the split missing: {second[0]}" in printed
    assert _check(tmp_path / "v2.pkl", root) == 1  # a one-stage split has no stage 2 to submit
    assert "a v2 submission, but the split has only ['predictions'] to predict" in capsys.readouterr().out


def test_check_names_where_its_tokens_came_from_or_says_it_checked_none(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from irl_vla.data.split import SceneLoader

    tokens = SceneLoader(data / "synth_navtest").tokens
    path = _write(tmp_path / "v1.pkl", {"predictions": tokens[:2]})
    assert _check(path, "submit.split=null") == 0
    assert "completeness NOT checked: no split given" in capsys.readouterr().out
    assert _check(path, f"paths.data_root={tmp_path}") != 0  # the default split does not exist there
    assert f"{tmp_path / 'synth_navtest'}: no split to check the submission's tokens against" in capsys.readouterr().err
    split_file = tmp_path / "navtest.yaml"
    split_file.write_text(f"scene_filter:\n  tokens: [{', '.join(tokens)}]\n")
    assert _check(path, f"submit.split_file={split_file}") == 1
    printed = capsys.readouterr().out
    assert f"tokens checked against split file {split_file}" in printed and f"missing: {tokens[2]}" in printed
    mapping = tmp_path / "navhard_two_stage.yaml"
    mapping.write_text(
        "scene_filter:\n  reactive_all_mapping:\n"
        "    - [aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb, [[ccccccccccccccccc, ddddddddddddddddd]]]\n"
    )
    v2 = {"first_stage_predictions": ["a" * 16, "b" * 16], "second_stage_predictions": ["c" * 17, "d" * 17]}
    assert _check(_write(tmp_path / "v2.pkl", v2), f"submit.split_file={mapping}") == 0
    v2["second_stage_predictions"] = ["c" * 17]
    assert _check(_write(tmp_path / "v2.pkl", v2), f"submit.split_file={mapping}") == 1
    assert f"second_stage_predictions: 1 tokens of the split missing: {'d' * 17}" in capsys.readouterr().out
