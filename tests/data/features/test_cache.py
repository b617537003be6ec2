"""The feature cache: exact reads, stale entries rebuilt, corrupt ones named; the cache command resumes."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import pytest
import torch

from irl_vla.common.parallel import ExecutorConfig, TaskError
from irl_vla.data.features import FeatureDataset
from irl_vla.data.features import cache as cache_module
from irl_vla.data.features.cache import CorruptCacheError
from irl_vla.data.features.caching import CacheConfig, run_cache
from irl_vla.data.features.dataset import LoadStatus
from irl_vla.data.features.ego import DrivingCommandBuilder, EgoStatusBuilder
from irl_vla.data.features.targets import AgentTargetBuilder, TrajectoryTargetBuilder
from irl_vla.data.split import SceneLoader
from tools import cli


class _RehashedLoader(SceneLoader):
    """A split whose logs report another content hash (as after regenerating them)."""

    def log_hash(self, token: str) -> str:
        return "regenerated-" + super().log_hash(token)


def _dataset(source: object, cache: Path, agents: int = 30, **kwargs: object) -> FeatureDataset:
    return FeatureDataset(
        source,  # type: ignore[arg-type]
        [EgoStatusBuilder(), DrivingCommandBuilder()],
        [TrajectoryTargetBuilder(), AgentTargetBuilder(max_agents=agents)],
        cache_dir=cache,
        **kwargs,  # type: ignore[arg-type]
    )


def test_cached_samples_equal_computed_ones(source: partial[SceneLoader], tmp_path: Path) -> None:
    cached = _dataset(source, tmp_path / "cache")
    first, status = cached.load(cached.tokens[0])
    assert set(status.values()) == {LoadStatus.BUILT}
    again, status = cached.load(cached.tokens[0])
    assert set(status.values()) == {LoadStatus.CACHED}
    cold = _dataset(source, None)[0]  # type: ignore[arg-type]
    for key, value in {**cold.features, **cold.targets}.items():
        assert torch.equal({**again.features, **again.targets}[key], value), key
        assert torch.equal({**first.features, **first.targets}[key], value), key


def test_other_settings_sit_beside_and_a_stale_entry_is_rebuilt(
    source: partial[SceneLoader], split_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    token = _dataset(source, cache).load(_dataset(source, cache).tokens[0])[0].token
    # other parameters of one builder: an entry of their own, beside the first one (neither overwrites the other)
    sample, status = _dataset(source, cache, agents=5).load(token)
    assert status == {
        "ego_status": LoadStatus.CACHED,
        "driving_command": LoadStatus.CACHED,
        "trajectory": LoadStatus.CACHED,
        "agents": LoadStatus.BUILT,
    }
    assert sample.targets["agent_states"].shape[0] == 5
    assert len(list((cache / token[:2] / token).glob("agents-*.safetensors"))) == 2
    assert _dataset(source, cache, agents=5).load(token)[1]["agents"] is LoadStatus.CACHED
    back, status = _dataset(source, cache).load(token)
    assert status["agents"] is LoadStatus.CACHED and back.targets["agent_states"].shape[0] == 30
    # a new builder version is other settings too
    EgoStatusBuilder.version += 1
    try:
        assert _dataset(source, cache, agents=5).load(token)[1]["ego_status"] is LoadStatus.BUILT
    finally:
        EgoStatusBuilder.version -= 1
    # the log changed: every entry is rebuilt in place
    status = _dataset(partial(_RehashedLoader, str(split_dir), renderer=None), cache, agents=5).load(token)[1]
    assert set(status.values()) == {LoadStatus.REBUILT}


def test_an_entry_of_an_older_cache_format_is_rebuilt(
    source: partial[SceneLoader], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "CACHE_FORMAT_VERSION", 1)
    token = _dataset(source, tmp_path / "cache").tokens[0]
    _dataset(source, tmp_path / "cache").load(token)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT_VERSION", 2)
    assert set(_dataset(source, tmp_path / "cache").load(token)[1].values()) == {LoadStatus.REBUILT}


def test_an_entry_renamed_to_other_settings_is_named(source: partial[SceneLoader], tmp_path: Path) -> None:
    small, large = _dataset(source, tmp_path / "cache", agents=5), _dataset(source, tmp_path / "cache")
    token = small.tokens[0]
    small.load(token)
    cache = small.cache
    assert cache is not None
    # the 5-agent entry moved to the name of the 30-agent settings (by hand or by a broken copy)
    cache.path(token, "agents", small.fingerprints["agents"]).rename(
        cache.path(token, "agents", large.fingerprints["agents"])
    )
    with pytest.raises(CorruptCacheError, match=r"agents-[0-9a-f]{12}\.safetensors.*holds builder settings"):
        large.load(token)


def test_a_corrupt_entry_is_named(source: partial[SceneLoader], tmp_path: Path) -> None:
    dataset = _dataset(source, tmp_path / "cache")
    token = dataset.tokens[0]
    dataset.load(token)
    path = dataset.cache.path(token, "trajectory", dataset.fingerprints["trajectory"])  # type: ignore[union-attr]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x55  # a damaged tensor byte
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCacheError, match=rf"{path}.*token {token}, builder trajectory.*CRC"):
        dataset.load(token)
    path.write_bytes(b"\x00" * 40)  # not a safetensors file at all
    with pytest.raises(CorruptCacheError, match=rf"{path}.*unreadable"):
        dataset[0]
    repairing = _dataset(source, tmp_path / "cache", repair_corrupt=True)
    with pytest.warns(UserWarning, match=str(path)):
        assert repairing.load(token)[1]["trajectory"] is LoadStatus.REPAIRED
    assert dataset.load(token)[1]["trajectory"] is LoadStatus.CACHED


def _config(split_dir: Path, cache: Path, **kwargs: object) -> CacheConfig:
    return CacheConfig(
        data_root=str(split_dir.parent),
        split=split_dir.name,
        cache_dir=str(cache),
        features={"ego_status": {}, "navigation_instruction": {"max_tokens": 16}},
        targets={"trajectory": {}, "meta_action": {}},
        chunk_size=2,
        executor=ExecutorConfig(backend="sequential", workers=1),
        progress=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_cache_build_resumes_after_a_crash(
    source: partial[SceneLoader], split_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(split_dir, tmp_path / "cache")
    tokens = source().tokens
    assert len(tokens) >= 4
    crash_at = tokens[3]
    original = TrajectoryTargetBuilder.compute

    def crashing(self: TrajectoryTargetBuilder, scene: object) -> dict[str, torch.Tensor]:
        if scene.token == crash_at:  # type: ignore[attr-defined]
            raise RuntimeError("killed")
        return original(self, scene)  # type: ignore[arg-type]

    monkeypatch.setattr(TrajectoryTargetBuilder, "compute", crashing)
    with pytest.raises(TaskError, match=rf"\.\.{tokens[3]}: RuntimeError: killed"):
        run_cache(cfg, source)
    monkeypatch.setattr(TrajectoryTargetBuilder, "compute", original)
    tokenizer = tmp_path / "cache" / "tokenizer.json"
    assert tokenizer.is_file()
    stamp = tokenizer.stat().st_mtime_ns
    report = run_cache(cfg, source)
    assert report.scenes == len(tokens) and tokenizer.stat().st_mtime_ns == stamp  # the tokenizer is reused
    done_before = 3 * 4 + 2  # three whole scenes, and the two builders before the one that failed on the fourth
    assert report.counts["cached"] == done_before
    assert report.counts["built"] == 4 * len(tokens) - done_before
    assert run_cache(cfg, source).counts["cached"] == 4 * len(tokens)


def test_the_cache_command_runs_from_the_cli(split_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "cli_cache"
    args = [
        "cache",
        f"cache.data_root={split_dir.parent}",
        f"cache.split={split_dir.name}",
        f"cache.cache_dir={cache}",
        "cache.max_scenes=2",
        "cache.progress=false",
        "cache.executor.backend=sequential",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"2 scenes in {cache}: entries 0 cached, 20 built" in out
    assert len(list(cache.glob("*/*/*.safetensors"))) == 20
    assert cli.main([*args, "cache.features.cameras.frames=[9]"]) == 2  # history index 9 does not exist
    assert "history index 9" in capsys.readouterr().err
