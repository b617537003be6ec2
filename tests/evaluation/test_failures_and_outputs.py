"""An agent's failure on a scene scores 0; two-stage outputs in NAVSIM's layout; the eval agents list.

Hand-made scenes on the T-junction fixture (``tests/scoring/scenes.py``), an agent that fails where it is told
to, and the evaluator and report writers called directly.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents.agent import Agent
from irl_vla.common.config import to_dataclass
from irl_vla.data.scene import AgentInput, Scene
from irl_vla.data.trajectory import DEFAULT_SAMPLING, Trajectory
from irl_vla.data.two_stage import Group
from irl_vla.evaluation.open_loop import AgentEvaluator, evaluate_one_stage, evaluate_two_stage
from irl_vla.evaluation.report import format_table, write_one_stage, write_two_stage
from irl_vla.evaluation.runner import EvalConfig
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheError
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.scene_aggregation import group_score, proximity_weights
from irl_vla.scoring.scene_cache import SceneCache, build_scene_cache
from irl_vla.scoring.sub_scores import SubScore
from tests.scoring.scenes import make_scene, straight_plan
from tools.cli import main


class Flaky(Agent):
    """Drives straight at 10 m/s, except on the scenes of ``failures``: ``raise``, ``huge`` (1e30 m), ``nan``, or
    ``cache`` (the metric cache it reads is damaged: the suite's failure, not the agent's)."""

    requires_scene = True

    def __init__(self, failures: dict[str, str]) -> None:
        super().__init__()
        self.failures = failures

    def name(self) -> str:
        return "flaky"

    def compute_trajectory(self, agent_input: AgentInput, scene: Scene | None = None) -> Trajectory:
        assert scene is not None
        how = self.failures.get(scene.token.split("-")[0])  # "<name>-03": the current frame of scene <name>
        if how == "raise":
            raise RuntimeError("model crashed")
        if how == "cache":
            raise MetricCacheError("metric_cache/x.npz: changed since it was built")
        poses = straight_plan(10.0).astype(np.float32)
        if how == "huge":
            poses[-1, 0] = 1e30
        if how == "nan":
            poses[2, 1] = np.nan
        return Trajectory(poses, DEFAULT_SAMPLING)


def _scene(token: str, ego_x: float = -40.0, shift_s: float = 0.0) -> Scene:
    """A scene on the fixture; ``shift_s`` moves its clock (a previous frame is 0.5 s earlier)."""
    scene = make_scene(ego_x=ego_x, token=token)
    for frame in scene.frames:
        frame.timestamp += round(shift_s * 1e6)
    return scene


def tok(name: str) -> str:
    """The token of scene ``name`` (its current frame, ``make_scene``'s fourth)."""
    return f"{name}-03"


class World:
    """Scenes by token and their metric caches (built once)."""

    def __init__(self, scenes: list[Scene], previous: dict[str, Scene] | None = None) -> None:
        self.scenes = {s.token: s for s in scenes}
        self.previous = previous or {}
        self.caches: dict[str, SceneCache] = {}
        for scene in scenes:
            self.caches[scene.token] = plan_scene(build_scene_cache(scene), PDMClosedPlanner(FastScorer()))

    def evaluator(self, failures: dict[str, str]) -> AgentEvaluator:
        return AgentEvaluator(Flaky(failures), FastScorer(), self.caches.__getitem__)


@pytest.fixture(scope="module")
def one_stage() -> World:
    return World([_scene(f"s{i}", ego_x=-40.0 - 5 * i) for i in range(4)])


def test_failed_scenes_score_0_in_the_split_and_the_valid_mean_is_labelled(one_stage: World, tmp_path: Path) -> None:
    failures = {"s1": "raise", "s2": "huge", "s3": "nan"}
    results = evaluate_one_stage(list(one_stage.scenes), one_stage.scenes.__getitem__, lambda t: None,
                                 one_stage.evaluator(failures))  # fmt: skip
    assert [r.valid for r in results] == [True, False, False, False]
    assert "agent flaky failed on scene s1-03: RuntimeError: model crashed" in results[1].error
    assert "scene s2-03: plan 0 pose 7 has an implausible x (1e+30" in results[2].error  # refused like NaN
    assert "agent flaky failed on scene s3-03" in results[3].error and "non-finite" in results[3].error
    good = results[0].score
    assert 0.5 < good <= 1.0
    summary = write_one_stage(results, tmp_path, {"agent": "flaky", "split": "hand"})
    assert summary["epdms"] == pytest.approx(good / 4)  # failures count as 0: failing never raises a score
    assert summary["epdms_valid_only"] == pytest.approx(good)
    assert summary["num_failed"] == 3 and [f["token"] for f in summary["failed"]] == ["s1-03", "s2-03", "s3-03"]
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [r["score"] for r in rows[1:4]] == ["0.000000"] * 3 and rows[1]["no_at_fault_collisions"] == ""
    assert rows[-1]["token"] == "average_all_frames" and float(rows[-1]["score"]) == pytest.approx(good / 4)
    table = format_table([summary])
    assert "EPDMS valid only" in table and "3/4" in table and f"{100 * good / 4:.1f}" in table


def test_a_damaged_metric_cache_read_by_the_agent_stops_the_run(one_stage: World) -> None:
    with pytest.raises(MetricCacheError, match="changed since it was built"):
        evaluator = one_stage.evaluator({"s0": "cache"})
        evaluate_one_stage([tok("s0")], one_stage.scenes.__getitem__, lambda t: None, evaluator)


@pytest.fixture(scope="module")
def two_stage() -> tuple[World, Group]:
    """One group: a real scene and its predecessor, then two stage-2 (now, previous) pairs near its endpoint."""
    orig, prev = _scene("orig"), _scene("prev", ego_x=-45.0, shift_s=-0.5)
    # the stage-1 plan ends 40 m ahead at x = 0; stage-2 starts 0.2 m and 3 m away from that endpoint
    starts = [("now_a", "pre_a", 0.2), ("now_b", "pre_b", 3.0)]
    stage_two = []
    for now, pre, dx in starts:
        stage_two += [_scene(now, ego_x=0.0 + dx), _scene(pre, ego_x=-5.0 + dx, shift_s=-0.5)]
    world = World([orig, prev, *stage_two], {tok("orig"): prev})
    return world, Group(tok("orig"), tok("prev"), [(tok("now_a"), tok("pre_a")), (tok("now_b"), tok("pre_b"))])


def _run_two_stage(world: World, group: Group, failures: dict[str, str]):
    return evaluate_two_stage(
        [group],
        (world.scenes.__getitem__, world.previous.get),
        world.scenes.__getitem__,
        world.evaluator(failures),
    )[0]


def test_a_failed_stage_two_scene_scores_0_in_its_group(two_stage: tuple[World, Group]) -> None:
    world, group = two_stage
    clean = _run_two_stage(world, group, {})
    assert clean.valid and all(r.valid for r in clean.scenes)
    failed = _run_two_stage(world, group, {"now_a": "raise"})
    assert not failed.valid
    by_token = {r.token.split("-")[0]: r for r in failed.scenes}
    assert not by_token["now_a"].valid and np.isnan(by_token["pre_a"].sub_scores[SubScore.EC])  # pair broken
    s = {t: r.split_score for t, r in by_token.items()}
    assert s["now_a"] == 0.0
    starts = np.array([world.caches[tok(t)].initial_state[:2] for t in ("now_a", "now_b")])
    w_now = proximity_weights(by_token["orig"].endpoint, starts)
    assert w_now[0] > 0.99  # the near start carries the group: its failure costs the whole now side
    starts_prev = np.array([world.caches[tok(t)].initial_state[:2] for t in ("pre_a", "pre_b")])
    w_prev = proximity_weights(by_token["prev"].endpoint, starts_prev)
    expected = group_score(s["orig"], s["prev"], np.array([0.0, s["now_b"]]), np.array([s["pre_a"], s["pre_b"]]),
                           w_now, w_prev)  # fmt: skip
    assert failed.score == pytest.approx(expected) and failed.score < clean.score
    stage_two = 0.5 * (w_now @ [0.0, s["now_b"]] + w_prev @ [s["pre_a"], s["pre_b"]])
    assert failed.stage_two_score == pytest.approx(stage_two)


def test_a_failed_stage_one_plan_gives_uniform_weights(two_stage: tuple[World, Group]) -> None:
    world, group = two_stage
    result = _run_two_stage(world, group, {"orig": "huge"})
    orig = result.stage_one_scenes[0]
    assert not orig.valid and orig.split_score == 0.0
    now = {r.token.split("-")[0]: r.split_score for r in result.stage_two_scenes}
    prev = result.stage_one_scenes[1]
    # no endpoint: NAVSIM's NaN fallback weighs the stage-2 scenes uniformly; S1(orig) = 0 zeroes that side
    assert result.score == pytest.approx(0.5 * prev.score * float(
        proximity_weights(prev.endpoint, np.array([world.caches[tok(t)].initial_state[:2] for t in ("pre_a", "pre_b")]))
        @ [now["pre_a"], now["pre_b"]]))  # fmt: skip
    assert result.stage_one_score == pytest.approx(0.5 * prev.score)


def test_two_stage_csv_has_navsims_layout(two_stage: tuple[World, Group], tmp_path: Path) -> None:
    world, group = two_stage
    results = [_run_two_stage(world, group, {}), _run_two_stage(world, group, {"pre_b": "raise"})]
    summary = write_two_stage(results, tmp_path, {"agent": "flaky", "split": "hand"})
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    names = [s.navsim_name for s in SubScore]
    header = ["token", "valid", *(f"{n}_stage_one" for n in names), *(f"{n}_stage_two" for n in names), "score"]
    assert list(rows[0])[: len(header)] == header
    tokens = [r["token"].split("-")[0] for r in rows]
    assert tokens[-3:] == [f"extended_pdm_score_{row}" for row in ("stage_one", "stage_two", "combined")]
    assert sorted(tokens[:-3]) == sorted(2 * ["orig", "prev", "now_a", "pre_a", "now_b", "pre_b"])  # a row per token
    orig = rows[tokens.index("orig")]
    assert orig["ego_progress_stage_one"] != "" and orig["ego_progress_stage_two"] == ""
    now = rows[tokens.index("now_a")]
    assert now["ego_progress_stage_one"] == "" and now["ego_progress_stage_two"] != ""
    s1, s2, combined = rows[-3:]
    assert float(s1["score"]) == pytest.approx(np.mean([g.stage_one_score for g in results]))
    assert float(s2["score"]) == pytest.approx(np.mean([g.stage_two_score for g in results]))
    assert float(combined["score"]) == pytest.approx(np.mean([g.score for g in results])) == summary["epdms"]
    assert s1["ego_progress_stage_two"] == "" and s2["ego_progress_stage_one"] == ""
    assert combined["valid"] == "False" and summary["epdms_valid_only"] == pytest.approx(results[0].score)
    assert summary["num_failed"] == 1 and summary["num_failed_scenes"] == 1
    assert json.loads((tmp_path / "summary.json").read_text())["mode"] == "two_stage"
    groups = list(csv.DictReader((tmp_path / "groups.csv").open()))
    assert [float(g["score"]) for g in groups] == pytest.approx([g.score for g in results])
    table = format_table([summary]).splitlines()
    assert table[0].split()[3] == "stage"  # rows labelled by stage, as NAVSIM's summary rows
    assert [table[1].split()[3], table[2].split()[0], table[3].split()[0]] == ["1", "2", "combined"]
    assert table[3].split()[-1] == "1/12"  # failed scenes


def test_eval_agents_list_validation() -> None:
    assert to_dataclass({"agents": "constant_velocity"}, EvalConfig, where="eval").agents == ["constant_velocity"]
    with pytest.raises(ValueError, match="EvalConfig.agents: empty"):
        to_dataclass({"agents": []}, EvalConfig, where="eval")
    with pytest.raises(ValueError, match="EvalConfig.jerk_penalty_matrix: 'jerky'"):
        EvalConfig(jerk_penalty_matrix="jerky")


def test_eval_command_reads_one_agent_name_and_refuses_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [f"paths.data_root={tmp_path}", f"paths.output_root={tmp_path / 'out'}", "eval.progress=false"]
    assert main(["eval", *base, "eval.agents=constant_velocity"]) == 2
    assert "manifest.json does not exist" in capsys.readouterr().err  # past the agents: the split is missing
    assert main(["eval", *base, "eval.agents=[]"]) == 2
    assert "EvalConfig.agents: empty" in capsys.readouterr().err
