"""``irl-vla report`` end to end on a tiny split: labels held-out candidates, predicts them, writes every section."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from irl_vla.common.checkpoint import save_checkpoint
from irl_vla.common.config import to_dataclass
from irl_vla.evaluation.reward_report.html_check import check_report_html
from irl_vla.evaluation.reward_report.run import ReportConfig, run_report
from irl_vla.evaluation.reward_report.writer import SECTIONS
from irl_vla.models.reward.config import load_reward_config
from irl_vla.models.reward.inputs import reward_builder_params
from irl_vla.models.reward.model import RewardWorldModel, compute_reward_normalization
from tests import helpers

#: A small raster so that the tiny reward model runs in milliseconds.
SMALL_INPUTS = {"inputs": {"bev_range": [-16.0, 16.0, -16.0, 16.0], "bev_height": 32, "bev_width": 32}}


def save_tiny_reward(path: Path, seed: int, irl: float = 1.0) -> Path:
    """An untrained ``tiny`` reward checkpoint (random weights, statistics of random data) at ``path``."""
    torch.manual_seed(seed)
    cfg = load_reward_config("tiny", {**SMALL_INPUTS, "loss": {"irl": irl}})
    model = RewardWorldModel(cfg)
    model.set_normalization(compute_reward_normalization(torch.randn(4, 4, 7), torch.randn(4, 6, 8, 3)))
    features, privileged = reward_builder_params(cfg)
    doc = {"model": dataclasses.asdict(cfg), "features": features, "privileged": privileged}
    return save_checkpoint(path, weights=model.state_dict(), config=doc, normalization=model.normalization())


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/synth_navtest``: one stop-and-go log."""
    root = tmp_path_factory.mktemp("report_split")
    helpers.tiny_split(root, "synth_navtest", ["stop_and_go"], frame_interval=2)
    return root


@pytest.fixture(scope="module")
def tiny_vla(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` VLA trained for 2 steps on a one-log ``synth_navtrain`` (its own data root)."""
    from irl_vla.training.il import run_il
    from tests.training.conftest import il_config, model_doc

    root = tmp_path_factory.mktemp("report_vla")
    source = helpers.rendered_source(helpers.tiny_split(root, "synth_navtrain", ["stop_and_go"], 2), helpers.SMALL_RIG)
    torch.set_num_threads(1)
    run_il(il_config(root, str(root / "vla"), max_steps=2), model_doc("tiny"), source)
    return root / "vla"


def tiny_report(root: Path) -> dict:
    """Report settings for the tiny split: 2 scenes x (expert + 3 vocabulary entries + 3 perturbations)."""
    return {
        "data_root": str(root),
        "max_scenes": 2,
        "vocabulary_size": 3,
        "perturbations": {"speed_scales": [0.5], "lateral_offsets": [1.0], "heading_offsets": [], "random": 1},
        "executor": {"backend": "sequential", "workers": 1},
        "progress": False,
    }


def test_report_end_to_end(tiny_split: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    main, other = save_tiny_reward(tmp_path / "rwm_a", 0), save_tiny_reward(tmp_path / "rwm_b", 1, irl=0.0)
    config = to_dataclass(
        {**tiny_report(tiny_split), "reward_checkpoint": str(main), "ablation": [str(other)], "n_worst": 2},
        ReportConfig,
        where="report",
    )
    factory = helpers.rendered_source(tiny_split / "synth_navtest", helpers.SMALL_RIG)
    report, paths = run_report(config, factory, tmp_path / "run", log=lambda _: None)
    assert [p.name for p in paths] == ["report.html", "report.json", "summary.md"]
    # 2 scenes x (expert + 3 vocabulary entries + 3 perturbations)
    assert (report.main.n_scenes, report.main.n_candidates) == (2, 14)
    assert report.main.sources == {"EXPERT": 2, "PERTURBATION": 6, "VOCABULARY": 6}
    summary = check_report_html((tmp_path / "run" / "report.html").read_text(), SECTIONS)
    assert summary.images >= 3 + 2  # reliability, scatter, regret and the two worst disagreements' pictures
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert doc["worst"]["missing_pictures"] == []
    assert [r["source"] for r in doc["ablation"]] == [str(main), str(other)]
    assert [r["label"] for r in doc["ablation"]] == ["rwm_a (IRL weight 1, step 0)", "rwm_b (IRL weight 0, step 0)"]
    assert doc["settings"]["candidates per scene"] == 7
    # the labels are reused by a second report (no relabelling): the store is complete and read back
    again, _ = run_report(config, factory, tmp_path / "run2", log=lambda _: None)
    assert again.main.correlations == report.main.correlations


def test_an_ensemble_reports_its_mean_and_picks_by_its_selection_rule(tiny_split: Path, tmp_path: Path) -> None:
    import numpy as np

    from irl_vla.evaluation.reward_report.metrics import top1_regret
    from irl_vla.models.reward.selection import SelectionConfig, selection_scores

    torch.set_num_threads(1)
    a, b = save_tiny_reward(tmp_path / "rwm_a", 0), save_tiny_reward(tmp_path / "rwm_b", 1)
    base = {**tiny_report(tiny_split), "n_worst": 0, "labels_dir": str(tmp_path / "labels")}
    factory = helpers.rendered_source(tiny_split / "synth_navtest", helpers.SMALL_RIG)

    def report(out: str, **kw: object):
        config = to_dataclass({**base, **kw}, ReportConfig, where="report")
        return run_report(config, factory, tmp_path / out, log=lambda _: None)[0]

    alone = [report(f"alone_{i}", reward_checkpoint=str(ck)) for i, ck in enumerate((a, b))]
    both = report("both", reward_checkpoint=str(a), ensemble=[str(b)], selection={"lcb": 3.0})
    c = both.candidates
    np.testing.assert_allclose(c.predicted, (alone[0].candidates.predicted + alone[1].candidates.predicted) / 2)
    rewards = np.stack([r.candidates.predicted_epdms for r in alone])  # (M, N * K)
    subs = np.stack([r.candidates.predicted for r in alone])
    expected = selection_scores(rewards, subs, SelectionConfig(lcb=3.0))
    np.testing.assert_allclose(c.selection, expected)
    assert both.main.regret == top1_regret(expected, c.simulator_epdms, c.tokens)
    assert both.settings["selection"] == "mean of 2 - 3 std" and both.settings["ensemble"] == [str(b)]
    assert "(top-1 regret) by: mean of 2 - 3 std" in (tmp_path / "both" / "summary.md").read_text()


def test_command_without_a_reward_checkpoint_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.cli import main

    assert main(["report"]) == 2
    assert "report.reward_checkpoint" in capsys.readouterr().err


def test_reward_bench_on_the_tiny_split(tiny_split: Path) -> None:
    from irl_vla.benchmarks.reward_bench import RewardBenchConfig, run
    from irl_vla.common.parallel import ExecutorConfig
    from irl_vla.scoring.metric_cache import build_metric_cache

    torch.set_num_threads(1)
    split = tiny_split / "synth_navtest"
    factory = helpers.rendered_source(split)
    cfg = RewardBenchConfig(
        split_dir=str(split),
        model_size="tiny",
        compare=["light"],
        num_scenes=2,
        num_candidates=8,
        label_scenes=2,
        label_workers=[1],
        ray_workers=0,
        vocabulary_size=4,
    )
    tokens = list(factory().tokens)
    build_metric_cache(factory, cfg.cache_dir, [(t, False) for t in tokens], ExecutorConfig("sequential", 1))
    records = {r["name"]: r for r in run(cfg, 1, factory)}
    assert records["fast_scorer_K8"]["items"] == records["reward_model_scenes_encoded_K8"]["items"] == 16
    ratio = records["reward_over_fast_scorer"]
    assert ratio["ratio"] == pytest.approx(
        records["fast_scorer_K8"]["median_s"] / records["reward_model_K8"]["median_s"], rel=1e-3
    )  # the records' seconds are rounded
    # the light model in the same rounds, and each model on both scenes in one call
    light = records["reward_light_over_fast_scorer"]
    assert light["ratio_batched"] == pytest.approx(
        records["fast_scorer_K8"]["median_s"] / records["reward_model_light_batched_K8"]["median_s"], rel=1e-3
    )
    decoders = (records["reward_model_light_K8"]["decoder"], records["reward_model_K8"]["decoder"])
    assert decoders == ("light", "attention")
    assert records["reward_model_batched_K8"]["items"] == 16
    label = records["label_process_1"]
    # 2 scenes x (expert + 4 vocabulary entries + the default 31 perturbations)
    assert (label["scenes"], label["candidates_per_scene"], label["items"]) == (2, 36, 72)


def test_a_labels_dir_made_with_another_vocabulary_is_refused(tmp_path: Path) -> None:
    import numpy as np

    from irl_vla.evaluation.reward_report.run import label
    from irl_vla.labeling.store import LabelStore

    labels = tmp_path / "labels"
    labels.mkdir()
    LabelStore(labels).write_vocabulary(np.zeros((4, 8, 3), dtype=np.float32))
    np.save(tmp_path / "other.npy", np.ones((4, 8, 3), dtype=np.float32))
    config = ReportConfig(reward_checkpoint="x", labels_dir=str(labels), vocabulary=str(tmp_path / "other.npy"))
    with pytest.raises(ValueError, match="differs from the vocabulary"):
        label(config, lambda: None, None, print)  # type: ignore[arg-type, return-value]


def test_distribution_shift_on_a_policys_samples(tiny_split: Path, tiny_vla: Path, tmp_path: Path) -> None:
    main = save_tiny_reward(tmp_path / "rwm", 0)
    config = to_dataclass(
        {
            "reward_checkpoint": str(main),
            "policies": [str(tiny_vla)],
            "policy_draws": 2,
            "data_root": str(tiny_split),
            "labels_dir": str(tmp_path / "labels"),
            "max_scenes": 2,
            "vocabulary_size": 2,
            "perturbations": {"speed_scales": [0.5], "lateral_offsets": [], "heading_offsets": [], "random": 0},
            "executor": {"backend": "sequential", "workers": 1},
            "progress": False,
            "n_worst": 1,
        },
        ReportConfig,
        where="report",
    )
    factory = helpers.rendered_source(tiny_split / "synth_navtest", helpers.SMALL_RIG)
    report, _ = run_report(config, factory, tmp_path / "run", log=lambda _: None)
    (shift,) = report.shift
    modes = 4  # the tiny test VLA's anchors
    assert shift.agreement.sources == {"POLICY_SAMPLE": 2 * 3 * modes}  # 2 scenes x (modes + 2 draws) x all modes
    assert shift.label == f"policy {tiny_vla.name}"
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["source"] for r in doc["distribution_shift"]] == [str(tiny_vla)]
    assert "policy vla" in (tmp_path / "run" / "summary.md").read_text()


def test_best_of_n_with_real_checkpoints_plans_the_highest_learned_reward(
    tiny_split: Path, tiny_vla: Path, tmp_path: Path
) -> None:
    import numpy as np

    from irl_vla.agents.registry import make_agent

    rwm = save_tiny_reward(tmp_path / "rwm", 0)
    agent = make_agent(
        {"name": "vla_best_of_n", "checkpoint": str(tiny_vla), "reward_checkpoint": str(rwm), "draws": 2}
    )
    agent.initialize()
    loader = helpers.rendered_source(tiny_split / "synth_navtest", helpers.SMALL_RIG)()
    scene = loader.get_scene(loader.tokens[3], agent.get_sensor_config())
    cands = agent.compute_candidates(scene.get_agent_input(), scene)
    assert len(cands) == 3 * 4 and np.isfinite(cands.scores).all()  # (2 draws + the deterministic modes) x 4 modes
    plan = agent.compute_trajectory(scene.get_agent_input(), scene)
    np.testing.assert_allclose(plan.poses, cands.poses[int(np.argmax(cands.scores))])
