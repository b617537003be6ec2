"""The label store: shards round-trip without pickle, and a corrupt, changed or duplicated shard is refused by
name."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from irl_vla.labeling.store import (
    CandidateSource,
    CorruptLabelError,
    LabelShard,
    LabelStore,
    ShardRecord,
    read_label_shards,
    read_shard,
    shard_name,
    write_shard,
)
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore


def make_shard(tokens: list[str], k: int = 4, seed: int = 0) -> LabelShard:
    rng = np.random.default_rng(seed)
    n = len(tokens)
    sub = rng.integers(0, 2, (n, k, NUM_SUB_SCORES)).astype(np.float32)
    sub[..., SubScore.EP] = rng.random((n, k))
    sub[0, :, SubScore.EC] = np.nan
    sources = np.full((n, k), CandidateSource.VOCABULARY)
    sources[:, 0] = CandidateSource.EXPERT
    return LabelShard(np.array(tokens), rng.normal(size=(n, k, 8, 3)), sub, rng.random((n, k)), sources)


def write_store(root: Path, shards: list[LabelShard]) -> None:
    store = LabelStore(root)
    records = []
    for i, shard in enumerate(shards):
        sha = write_shard(root / shard_name(i), shard)
        records.append(ShardRecord(shard_name(i), sha, shard.tokens.tolist()))
    store.write_manifest({"k": 4}, records, complete=True)


def test_round_trip(tmp_path: Path) -> None:
    a, b = make_shard(["t0", "t1"]), make_shard(["t2"], seed=1)
    write_store(tmp_path, [a, b])
    labels = read_label_shards(tmp_path)
    assert labels.tokens.tolist() == ["t0", "t1", "t2"]
    np.testing.assert_array_equal(labels.candidates[:2], a.candidates)
    np.testing.assert_array_equal(labels.sub_scores[2], b.sub_scores[0])
    assert np.isnan(labels.sub_scores[0, :, SubScore.EC]).all()
    assert labels.sources.dtype == np.int8 and labels.sources[0, 0] == CandidateSource.EXPERT
    with np.load(tmp_path / shard_name(0), allow_pickle=False) as data:  # plain arrays, no object dtype
        assert all(data[k].dtype != object for k in data.files)


def test_a_corrupt_shard_is_refused_naming_the_file(tmp_path: Path) -> None:
    write_store(tmp_path, [make_shard(["t0"]), make_shard(["t1"], seed=1)])
    bad = tmp_path / shard_name(1)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptLabelError, match=str(bad)):
        read_label_shards(tmp_path)
    with pytest.raises(CorruptLabelError, match=str(bad)):
        read_shard(bad)  # even without the manifest's hash: unreadable, or its arrays fail their checks


def test_a_truncated_or_missing_shard_is_refused_naming_the_file(tmp_path: Path) -> None:
    write_store(tmp_path, [make_shard(["t0"]), make_shard(["t1"], seed=1)])
    bad = tmp_path / shard_name(0)
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(CorruptLabelError, match=str(bad)):
        read_shard(bad)
    bad.unlink()
    with pytest.raises(CorruptLabelError, match=f"{bad}: label shard missing"):
        read_label_shards(tmp_path)


def test_a_pickled_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shard_00000.npz"
    shard = make_shard(["t0"])
    np.savez(
        path,
        tokens=np.array(["t0"], dtype=object),
        candidates=shard.candidates,
        sub_scores=shard.sub_scores,
        epdms=shard.epdms,
        sources=shard.sources,
    )
    with pytest.raises(CorruptLabelError, match=str(path)):
        read_shard(path)


def test_a_scene_in_two_shards_and_misshapen_arrays_are_refused(tmp_path: Path) -> None:
    write_store(tmp_path, [make_shard(["t0", "t1"]), make_shard(["t1"], seed=1)])
    with pytest.raises(CorruptLabelError, match="scene t1 also in"):
        read_label_shards(tmp_path)
    shard = make_shard(["t0"])
    shard.sub_scores = shard.sub_scores[..., :5]
    with pytest.raises(CorruptLabelError, match="sub_scores: expected shape"):
        shard.check("here")
    shard = make_shard(["t0"])
    shard.sources[0, 1] = 9
    with pytest.raises(CorruptLabelError, match="unknown CandidateSource"):
        shard.check("here")


def test_an_unfinished_run_is_refused_unless_asked(tmp_path: Path) -> None:
    store = LabelStore(tmp_path)
    sha = write_shard(tmp_path / shard_name(0), make_shard(["t0"]))
    store.record(ShardRecord(shard_name(0), sha, ["t0"]))
    assert set(store.finished()) == {shard_name(0)}
    store.write_manifest({}, store.finished().values(), complete=False)
    with pytest.raises(CorruptLabelError, match="unfinished"):
        read_label_shards(tmp_path)
    assert read_label_shards(tmp_path, require_complete=False).tokens.tolist() == ["t0"]
    with pytest.raises(FileNotFoundError, match="no label manifest"):
        read_label_shards(tmp_path / "nothing")


def test_byte_flips_inside_the_zip_are_caught_by_the_hash(tmp_path: Path) -> None:
    write_store(tmp_path, [make_shard(["t0"])])
    path = tmp_path / shard_name(0)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(
            f"{k}.npy" for k in ("tokens", "candidates", "sub_scores", "epdms", "sources")
        )
    shard = make_shard(["t0"], seed=5)  # a valid shard, but not the one the manifest recorded
    np.savez(
        path,
        tokens=shard.tokens,
        candidates=shard.candidates,
        sub_scores=shard.sub_scores,
        epdms=shard.epdms,
        sources=shard.sources,
    )
    with pytest.raises(CorruptLabelError, match="changed since it was written"):
        read_label_shards(tmp_path)
