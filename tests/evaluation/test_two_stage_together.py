"""Two-stage scoring of several agents with reactive traffic: their plans of a scene are rolled out together.

Same results as scoring each agent alone (failures included), fewer rollouts. Hand-made scenes with vehicles on the
T-junction fixture (``tests/scoring/scenes.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from irl_vla.data.scene import Scene
from irl_vla.data.two_stage import Group
from irl_vla.evaluation.open_loop import AgentEvaluator, evaluate_two_stage, evaluate_two_stage_agents
from irl_vla.scoring import reactive_traffic
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.pdm_closed import PDMClosedPlanner, plan_scene
from irl_vla.scoring.scene_cache import build_scene_cache
from irl_vla.scoring.scorer import ScorerConfig
from tests.evaluation.test_failures_and_outputs import Flaky
from tests.scoring.scenes import Obj, make_scene
from tests.scoring.test_reactive_reuse import Straight

REACTIVE = ScorerConfig(traffic="reactive")
VEHICLES = (Obj("vehicle", -58.0, -1.75, 0.0, 9.0, token="behind"), Obj("vehicle", -20.0, -1.75, 0.0, 5.0))


def _scene(name: str, ego_x: float, shift_s: float = 0.0) -> Scene:
    scene = make_scene(ego_x=ego_x, ego_speed=8.0, objects=VEHICLES, token=name)
    for frame in scene.frames:
        frame.timestamp += round(shift_s * 1e6)
    return scene


def _world() -> tuple[dict[str, Scene], dict[str, Scene], Group]:
    scenes = [_scene("orig", -40.0), _scene("prev", -44.0, -0.5)]
    for now, pre, dx in (("now_a", "pre_a", 0.2), ("now_b", "pre_b", 2.0)):
        scenes += [_scene(now, -10.0 + dx), _scene(pre, -14.0 + dx, -0.5)]
    by_token = {s.token: s for s in scenes}
    group = Group("orig-03", "prev-03", [("now_a-03", "pre_a-03"), ("now_b-03", "pre_b-03")])
    return by_token, {"orig-03": by_token["prev-03"]}, group


def _caches(scenes: dict[str, Scene]):
    planner = PDMClosedPlanner(FastScorer())
    return {t: plan_scene(build_scene_cache(s), planner) for t, s in scenes.items()}


AGENTS = {  # two drivers and one that fails on a stage-2 scene (its pair breaks) and sends a refused plan at orig
    "slow": lambda: Straight(3.0),
    "fast": lambda: Straight(11.0),
    "flaky": lambda: Flaky({"now_a": "raise", "pre_b": "huge"}),
}


def test_agents_scored_together_get_what_each_gets_alone_with_fewer_rollouts(monkeypatch):
    runs = []
    run = reactive_traffic._Rollout.run
    monkeypatch.setattr(reactive_traffic._Rollout, "run", lambda self: runs.append(self.k) or run(self))
    scenes, previous, group = _world()

    alone = {}
    for name, make in AGENTS.items():
        caches = _caches(scenes)
        evaluator = AgentEvaluator(make(), FastScorer(REACTIVE), caches.__getitem__)
        alone[name] = evaluate_two_stage([group], (scenes.__getitem__, previous.get), scenes.__getitem__, evaluator)[0]
    rollouts_alone = len(runs)

    runs.clear()
    caches, scorer = _caches(scenes), FastScorer(REACTIVE)
    read = []

    def reader(token: str) -> Scene:
        read.append(token)
        return scenes[token]

    together = evaluate_two_stage_agents(
        [group],
        [((reader, previous.get), reader, AgentEvaluator(m(), scorer, caches.__getitem__)) for m in AGENTS.values()],
    )
    assert len(read) == len(AGENTS) * (1 + 2 * len(group.pairs))  # each agent reads each scene once
    # alone: every scored plan and the human filter's in each of the 6 (real) scenes, but for flaky's 2 failures
    assert rollouts_alone == 2 * 12 + 8
    # together: one rollout a scene, of every agent's plan and the human's (once for all): 3 rows, 4 with flaky's
    assert runs == [4, 4, 3, 4, 4, 3]
    for name, result in zip(AGENTS, (r[0] for r in together), strict=True):
        want = alone[name]
        assert result.valid == want.valid and result.score == want.score, name
        for got, exp in zip(result.scenes, want.scenes, strict=True):
            assert (got.token, got.valid, got.error) == (exp.token, exp.valid, exp.error), name
            np.testing.assert_array_equal(got.sub_scores, exp.sub_scores, err_msg=f"{name} {got.token}")
    assert not together[2][0].valid  # the failures were met, as alone


def test_log_replay_scores_agents_one_after_the_other_without_planning_ahead(monkeypatch):
    scenes, previous, group = _world()
    caches = _caches(scenes)
    calls = []
    monkeypatch.setattr(
        "irl_vla.evaluation.open_loop.simulate_reactive_traffic_rows", lambda *a, **k: calls.append(a) or pytest.fail()
    )
    scorer = FastScorer()
    evaluate_two_stage_agents(
        [group],
        [((scenes.__getitem__, previous.get), scenes.__getitem__, AgentEvaluator(m(), scorer, caches.__getitem__))
         for m in AGENTS.values()],
    )  # fmt: skip
    assert calls == []
