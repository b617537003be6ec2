"""Report generation on a tiny run writes valid HTML and JSON with every section; the HTML check catches faults."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irl_vla.evaluation.reward_report.agreement import TARGETS, evaluate
from irl_vla.evaluation.reward_report.candidates import ScoredCandidates, predicted_epdms
from irl_vla.evaluation.reward_report.html_check import check_report_html
from irl_vla.evaluation.reward_report.writer import (
    SECTIONS,
    LabelledAgreement,
    RewardReport,
    markdown_summary,
    write_report,
)
from irl_vla.scoring.aggregation import aggregate
from irl_vla.scoring.scene_cache import build_scene_cache
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from tests.fixtures import build_straight_scene, build_t_junction


def tiny_candidates(seed: int, noise: float, n: int = 3, k: int = 6) -> ScoredCandidates:
    """``n`` scenes of ``k`` candidates: simulator sub-scores on their levels, predictions = them + noise."""
    rng = np.random.default_rng(seed)
    sim = rng.integers(0, 2, size=(n, k, NUM_SUB_SCORES)).astype(np.float64)
    sim[..., SubScore.NC] = rng.choice([0.0, 0.5, 1.0], size=(n, k))
    sim[..., SubScore.EP] = rng.uniform(0, 1, size=(n, k))
    sim[..., [SubScore.DAC, SubScore.DDC, SubScore.TLC]] = 1.0
    sim[:, : k // 2, SubScore.DAC] = 0.0
    sim[0, :, SubScore.EC] = np.nan  # the first scene has no previous frame
    pred = np.clip(np.nan_to_num(sim, nan=0.5) + rng.normal(0, noise, sim.shape), 0, 1)
    poses = np.zeros((n, k, 8, 3))
    poses[..., 0] = np.linspace(1.0, 16.0, 8) * rng.uniform(0.5, 1.5, size=(n, k, 1))
    sources = np.full((n, k), "VOCABULARY")
    sources[:, 0] = "EXPERT"
    return ScoredCandidates.from_scenes([f"tok{i}" for i in range(n)], poses, sources, sim, aggregate(sim), pred)


def test_predicted_epdms_drops_ec_where_the_simulator_has_none() -> None:
    sim = np.ones((2, NUM_SUB_SCORES))
    sim[0, SubScore.EC] = np.nan
    pred = np.ones((2, NUM_SUB_SCORES))
    pred[:, SubScore.EC] = 0.0
    # row 0: EC dropped -> 1; row 1: EC 0 counts with weight 2 of 16
    np.testing.assert_allclose(predicted_epdms(pred, sim), [1.0, 14 / 16])


def test_scored_candidates_refuses_mismatched_rows() -> None:
    c = tiny_candidates(0, 0.1)
    with pytest.raises(ValueError, match="rows"):
        ScoredCandidates(
            c.tokens, c.poses, c.sources[:-1], c.simulator, c.simulator_epdms, c.predicted, c.predicted_epdms
        )


def test_report_writes_html_json_and_summary(tmp_path: Path) -> None:
    scene = build_straight_scene()
    scene.map_api = build_t_junction()
    cache = build_scene_cache(scene)
    main = tiny_candidates(0, 0.05)
    report = RewardReport(
        title="Reward model validation (tiny)",
        settings={"split": "tiny", "reward_checkpoint": "ck/with_irl"},
        main=evaluate(main, n_worst=3),
        candidates=main,
        ablation=[
            LabelledAgreement("with IRL term", "ck/with_irl", evaluate(main)),
            LabelledAgreement("without IRL term", "ck/no_irl", evaluate(tiny_candidates(0, 0.3))),
        ],
        shift=[LabelledAgreement("policy ck/vla", "ck/vla", evaluate(tiny_candidates(1, 0.2)))],
    )
    caches = {"tok0": cache, "tok1": cache, "tok2": cache}
    paths = write_report(report, tmp_path, caches.__getitem__)
    assert [p.name for p in paths] == ["report.html", "report.json", "summary.md"]
    summary = check_report_html((tmp_path / "report.html").read_text(), SECTIONS)
    assert summary.sections == list(SECTIONS)
    # reliability, scatter, regret, 3 worst-disagreement pictures, the shift's gap plot
    assert summary.images == 7
    doc = json.loads((tmp_path / "report.json").read_text())
    for key in SECTIONS:
        assert key in doc
    assert [t["key"] for t in doc["targets"]] == list(TARGETS)
    assert len(doc["worst"]["candidates"]) == 3 and doc["worst"]["missing_pictures"] == []
    assert [r["label"] for r in doc["ablation"]] == ["with IRL term", "without IRL term"]
    gaps = {g["name"]: g for g in doc["distribution_shift"][0]["gaps"]}
    assert set(gaps) == {s.name for s in SubScore}
    ec = next(m for m in doc["sub_scores"] if m["name"] == "EC")
    assert ec["n_undefined_simulator"] == 6  # the first scene's 6 candidates are counted, not judged
    text = (tmp_path / "summary.md").read_text()
    assert "Spearman" in text and "without IRL term" in text and "policy ck/vla" in text
    assert markdown_summary(report) == text
    # each target: threshold, measured value, met or missed, and by how much
    for check in report.main.targets:
        verdict = "met" if check.met else "missed"
        assert f"| {check.name} | " in text and f"| {verdict} | {abs(check.margin):.3f} |" in text
    assert sum(check.met for check in report.main.targets) < len(TARGETS)  # a missed one is shown as such
    # where the regret comes from: in the JSON, the HTML's ranking section and one line of the summary
    breakdown = doc["regret_breakdown"]
    assert breakdown["mean"] == pytest.approx(doc["ranking"]["regret"]["mean"])
    assert [f["sub_score"] for f in breakdown["failures"]] == ["NC", "DAC", "DDC", "TLC", "EC"]
    assert breakdown["n_scenes"] == 3 and "no_failure" in breakdown
    page = (tmp_path / "report.html").read_text()
    assert "Where the regret comes from" in page and "NC &lt; 1 (an at-fault collision)" in page
    assert f"scenes above {breakdown['threshold']:g} points hold" in text


def test_report_without_ablation_or_caches_says_so(tmp_path: Path) -> None:
    main = tiny_candidates(2, 0.1)
    report = RewardReport("r", {"split": "tiny"}, evaluate(main, n_worst=2), main)
    write_report(report, tmp_path)
    page = (tmp_path / "report.html").read_text()
    check_report_html(page, SECTIONS)
    assert "No reward checkpoints to compare" in page and "No policy checkpoints" in page
    doc = json.loads((tmp_path / "report.json").read_text())
    assert len(doc["worst"]["missing_pictures"]) == 2


def png_1px() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ('<!DOCTYPE html><html><body><section id="a"></section></body></html>', "sections missing"),
        ('<!DOCTYPE html><html><body><section id="a"><div></section></body></html>', "closes <div>"),
        ('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA"></body></html>', "does not decode"),
        ('<!DOCTYPE html><html><body><script src="x.js"></script></body></html>', "outside the file"),
        ('<!DOCTYPE html><html><body><img src="https://a/b.png"></body></html>', "outside the file"),
        ("<html><body></body></html>", "DOCTYPE"),
    ],
)
def test_html_check_catches(page: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_report_html(page, ("a", "b"))


def test_html_check_accepts_a_decodable_image() -> None:
    img = f'<img src="data:image/png;base64,{png_1px()}">'
    page = f'<!DOCTYPE html><html><body><section id="a">{img}</section></body></html>'
    assert check_report_html(page, ("a",)).image_sizes == [(1, 1)]


def test_regret_follows_the_selection_score_not_the_predicted_epdms() -> None:
    # one scene, three candidates: by predicted EPDMS the favourite is candidate 1 (simulator 0.2, regret 70 points);
    # a selection rule that prefers candidate 0 (simulator 0.9) gives regret 0, and nothing else changes
    tokens = np.array(["a"])
    poses = np.zeros((1, 3, 8, 3))
    sources = np.full((1, 3), "VOCABULARY")
    sim = np.ones((1, 3, NUM_SUB_SCORES))
    sim[0, :, SubScore.EP] = [0.9, 0.2, 0.5]
    pred = sim.copy()
    pred[0, :, SubScore.EP] = [0.6, 0.95, 0.3]
    sim_epdms = np.asarray(aggregate(sim))
    plain = evaluate(ScoredCandidates.from_scenes(tokens, poses, sources, sim, sim_epdms, pred))
    picked = ScoredCandidates.from_scenes(tokens, poses, sources, sim, sim_epdms, pred, selection=[[1.0, 0.0, 0.5]])
    ruled = evaluate(picked)
    assert plain.regret.mean > 10 and ruled.regret.mean == 0.0
    assert ruled.correlations == plain.correlations and ruled.pairwise == plain.pairwise
    np.testing.assert_array_equal(picked.select([0, 2]).selection, [1.0, 0.5])
    with pytest.raises(ValueError, match="selection"):
        ScoredCandidates(
            *[
                getattr(picked, f)
                for f in ("tokens", "poses", "sources", "simulator", "simulator_epdms", "predicted", "predicted_epdms")
            ],
            np.zeros(2),
        )
