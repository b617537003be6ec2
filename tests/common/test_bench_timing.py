"""The timing the benchmarks share: interleaved medians and the network benches' timed record."""

from __future__ import annotations

import time

import pytest
import torch

from irl_vla.benchmarks.model_bench import bench_device, ready_policy, timed_record
from irl_vla.benchmarks.timing import interleaved_medians


def test_interleaved_medians_time_each_function_in_turn_after_the_warmup() -> None:
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: (calls.append("b"), time.sleep(0.002))}
    out = interleaved_medians(fns, repeats=3, warmup=2)
    assert calls == ["a", "b"] * 5
    assert out["b"][0] >= 0.002 > out["a"][0]  # wall: the sleep counts
    assert out["b"][1] < 0.002  # thread CPU: sleeping costs none


def test_timed_record_has_throughput_and_cpu_time_from_the_same_calls() -> None:
    calls = []
    rec = timed_record(
        "s", "n", lambda: calls.append(sum(range(200_000))), torch.device("cpu"), items=4, unit="plans", repeats=3
    )
    assert len(calls) == 4  # one warm-up and three timed
    assert rec["suite"] == "s" and rec["name"] == "n" and rec["items"] == 4
    assert rec["plans_per_s"] == pytest.approx(4 / rec["median_s"], rel=1e-2)  # median_s is rounded to 1 us
    assert 0 < rec["cpu_median_ms"] <= 1000 * rec["median_s"] * 1.5


def test_bench_device_and_ready_policy() -> None:
    assert bench_device("cpu") == torch.device("cpu")
    assert bench_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg, _, targets = ready_policy("tiny", 1, seed=0)
    assert len(targets["trajectory"]) >= 4 * cfg.planner.num_modes  # enough plans for K-means anchors
    again, _, _, _ = ready_policy("tiny", 1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
