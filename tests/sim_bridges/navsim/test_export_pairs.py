"""The exported split file lists every scene's predecessor, so navsim's one-stage script pairs them for EC."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from irl_vla.data.split import SceneLoader
from sim_bridges.embedded.generate import GenerateConfig, SplitSpec, generate_split
from sim_bridges.navsim.export import ExportConfig, export_split
from sim_bridges.navsim.openscene import filter_from_yaml, read_log_pickle
from tools.sources import navsim_renderer

SPLIT = "synth_navtest"


def navsim_pairs(listed: set[str], frames: list[dict]) -> dict[str, str]:
    """Pairs as navsim's one-stage aggregator infers them: among the listed tokens of each log, sorted by start
    time, a token pairs with the one before it when they start at most 0.55 s apart."""
    by_log: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for d in frames:
        if d["token"] in listed:
            by_log[d["log_name"]].append((d["timestamp"] / 1e6, d["token"]))
    pairs = {}
    for starts in by_log.values():
        starts.sort()
        for (t_prev, prev), (t_now, now) in pairwise(starts):
            if abs(t_now - t_prev) <= 0.55:
                pairs[now] = prev
    return pairs


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SceneLoader, Path]:
    data = tmp_path_factory.mktemp("embedded")
    cfg = GenerateConfig(data_root=str(data), families=["lead_vehicle", "merge"], num_log_frames=24, workers=1,
                         progress=False)  # fmt: skip
    generate_split(SPLIT, SplitSpec(logs_per_family=1, frame_interval=5), cfg)
    out = tmp_path_factory.mktemp("navsim")
    export_split(ExportConfig(data_root=str(data), split=SPLIT, out_root=str(out), cameras=[], lidar=False,
                              workers=1, progress=False), renderer=navsim_renderer())  # fmt: skip
    return SceneLoader(data / SPLIT), out


def test_the_split_file_lists_every_scenes_predecessor(exported: tuple[SceneLoader, Path]) -> None:
    loader, out = exported
    listed = filter_from_yaml(out / "train_test_split" / f"{SPLIT}.yaml").tokens
    assert listed is not None and len(set(listed)) == len(listed)
    expected = {}
    for token in loader.tokens:
        previous = loader.get_previous_scene(token)
        if previous is not None:
            expected[token] = previous.token
    assert expected, "the fixture's scenes must have predecessors"
    assert set(listed) == set(loader.tokens) | set(expected.values())

    frames = [d for log in sorted((out / "navsim_logs" / SPLIT).iterdir()) for d in read_log_pickle(log)]
    pairs = navsim_pairs(set(listed), frames)
    assert {t: pairs.get(t) for t in expected} == expected  # every scene that has a predecessor is paired with it
    assert not set(pairs) - set(expected)  # and nothing else: scenes 2.5 s apart do not pair
    # without the predecessors (the split's scenes alone, 2.5 s apart) navsim finds no pair at all
    assert navsim_pairs(set(loader.tokens), frames) == {}
