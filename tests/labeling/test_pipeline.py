"""``irl-vla label``: every scene labelled once, the expert's labels equal what ``irl-vla eval`` scores the human
agent, a killed run resumes with no duplicate and no missing candidate, other settings are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from irl_vla.agents.human import HumanAgent
from irl_vla.data.split import SceneLoader
from irl_vla.evaluation.open_loop import AgentEvaluator, evaluate_one_stage
from irl_vla.labeling.pipeline import LabelSettingsError, run_label
from irl_vla.labeling.store import JOURNAL, CandidateSource, LabelStore, read_label_shards, shard_name
from irl_vla.scoring.fast_scorer import FastScorer
from irl_vla.scoring.metric_cache import MetricCacheStore
from irl_vla.scoring.sub_scores import SubScore
from tests.labeling.conftest import label_config

ROOT = Path(__file__).resolve().parents[2]


def test_every_scene_once_with_the_candidate_layout(labels_dir: Path, label_source: partial[SceneLoader]) -> None:
    labels = read_label_shards(labels_dir)
    tokens = list(label_source().tokens)
    assert sorted(labels.tokens.tolist()) == sorted(tokens) and len(tokens) >= 4
    cfg = label_config(labels_dir.parent, "unused")
    k = 1 + cfg.vocabulary_size + cfg.perturbations.count
    assert labels.candidates.shape == (len(tokens), k, 8, 3)
    expected = [CandidateSource.EXPERT] + [CandidateSource.VOCABULARY] * 4 + [CandidateSource.PERTURBATION] * (k - 5)
    assert (labels.sources == np.asarray(expected)).all()
    vocab = LabelStore(labels_dir).read_vocabulary()
    assert vocab is not None
    np.testing.assert_allclose(labels.candidates[:, 1:5], np.broadcast_to(vocab, (len(tokens), 4, 8, 3)), atol=1e-6)
    # the labels are not vacuous: candidates differ in every kind of sub-score
    for sub in (SubScore.DAC, SubScore.LK, SubScore.EP):
        assert len(np.unique(labels.sub_scores[..., sub])) > 1, sub.name
    assert (
        np.isnan(labels.sub_scores[..., SubScore.EC]).any() and np.isfinite(labels.sub_scores[..., SubScore.EC]).any()
    )


def test_the_expert_candidate_scores_as_eval_scores_the_human_agent(
    labels_dir: Path, label_source: partial[SceneLoader]
) -> None:
    labels = read_label_shards(labels_dir)
    loader = label_source()
    caches = MetricCacheStore(labels_dir.parent / "metric_cache")
    evaluator = AgentEvaluator(HumanAgent(), FastScorer(), caches.load)
    tokens = labels.tokens.tolist()
    results = evaluate_one_stage(tokens, loader.get_scene, loader.get_previous_scene, evaluator)
    for i, result in enumerate(results):
        assert result.valid
        np.testing.assert_allclose(labels.sub_scores[i, 0], result.sub_scores, atol=1e-5, equal_nan=True)
        assert labels.epdms[i, 0] == pytest.approx(result.score, abs=1e-5)


def test_other_settings_are_refused_naming_the_key(labels_dir: Path, label_source: partial[SceneLoader]) -> None:
    cfg = label_config(labels_dir.parent, "labels", vocabulary_size=3)
    with pytest.raises(LabelSettingsError, match="vocabulary_size"):
        run_label(cfg, label_source)


def test_a_rerun_keeps_every_shard(labels_dir: Path, label_source: partial[SceneLoader], tmp_path: Path) -> None:
    cfg = label_config(labels_dir.parent, "labels")
    report = run_label(cfg, label_source)
    assert report.shards_written == 0 and report.shards_kept == len(LabelStore(labels_dir).finished())


_KILLED_RUN = textwrap.dedent(
    """
    import sys
    from functools import partial
    from irl_vla.data.split import SceneLoader
    from irl_vla.labeling.pipeline import run_label
    from tests.labeling.conftest import label_config
    from pathlib import Path
    root = Path(sys.argv[1])
    cfg = label_config(root, sys.argv[2], shard_size=1, perturbations={"random": 400})
    run_label(cfg, partial(SceneLoader, str(root / "synth_navtrain")))
    """
)


def test_a_killed_run_resumes_with_no_duplicate_and_no_missing_candidate(
    labels_dir: Path, label_root: Path, tmp_path: Path
) -> None:
    source = partial(SceneLoader, str(label_root / "synth_navtrain"))
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(label_root), str(out)], env=env, cwd=ROOT)
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    total = len(list(source().tokens))
    done_before = len(LabelStore(out).finished())
    assert 1 <= done_before < total
    cfg = label_config(label_root, "x", shard_size=1, perturbations={"random": 400})
    cfg.output_dir = str(out)
    report = run_label(cfg, source)
    assert report.shards_kept == done_before and report.shards_written == total - done_before
    resumed = read_label_shards(out)
    assert sorted(resumed.tokens.tolist()) == sorted(source().tokens)  # none missing, none twice
    fresh_cfg = label_config(label_root, "x", shard_size=1, perturbations={"random": 400})
    fresh_cfg.output_dir = str(tmp_path / "fresh")
    run_label(fresh_cfg, source)
    fresh = read_label_shards(tmp_path / "fresh")
    assert resumed.tokens.tolist() == fresh.tokens.tolist()
    for name in ("candidates", "sub_scores", "epdms", "sources"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(fresh, name), err_msg=name)


def test_a_damaged_shard_is_labelled_again(
    label_root: Path, label_source: partial[SceneLoader], tmp_path: Path
) -> None:
    cfg = label_config(label_root, "x")
    cfg.output_dir = str(tmp_path / "labels")
    run_label(cfg, label_source)
    before = read_label_shards(tmp_path / "labels")
    shard = tmp_path / "labels" / shard_name(0)
    shard.write_bytes(shard.read_bytes()[:200])
    report = run_label(cfg, label_source)
    assert report.shards_written == 1
    after = read_label_shards(tmp_path / "labels")
    np.testing.assert_array_equal(before.epdms, after.epdms)


def test_a_given_vocabulary_is_used(labels_dir: Path, label_root: Path, label_source: partial[SceneLoader]) -> None:
    cfg = label_config(label_root, "with_vocab", max_scenes=2, vocabulary_size=4, perturbations={"random": 0})
    cfg.vocabulary_path = str(labels_dir / "vocabulary.npy")
    run_label(cfg, label_source)
    given = LabelStore(labels_dir).read_vocabulary()
    labels = read_label_shards(cfg.label_dir)
    np.testing.assert_array_equal(LabelStore(cfg.label_dir).read_vocabulary(), given)
    np.testing.assert_allclose(labels.candidates[0, 1:5], given, atol=1e-6)
