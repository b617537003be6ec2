import dataclasses

import pytest
from omegaconf import OmegaConf

from irl_vla.benchmarks.policy_bench import PolicyBenchConfig, run
from tests.models.vla.helpers import tiny_config


def test_policy_bench_records_latency_throughput_and_memory(tmp_path):
    path = tmp_path / "small.yaml"
    OmegaConf.save(OmegaConf.create(dataclasses.asdict(tiny_config())), path)
    records = list(run(PolicyBenchConfig(sizes=[str(path)], train_batch=2), repeats=1))
    names = [r["name"] for r in records]
    size = str(path)
    assert names == [f"{n}_{size}" for n in ("parameters", "plan", "sample_chain", "train_step", "peak_memory")]
    params, plan, _, train, memory = records
    assert params["total"] == sum(v for k, v in params.items() if k not in ("suite", "name", "total"))
    assert plan["items"] == 1 and plan["median_ms"] > 0 and plan["cpu_median_ms"] > 0 and plan["target_ms"] == 50
    assert train["items"] == 2 and train["samples_per_s"] > 0 and train["precision"] == "fp32"
    assert memory["peak_mb"] > 0


def test_policy_bench_config_is_checked():
    with pytest.raises(ValueError, match="device"):
        PolicyBenchConfig(device="tpu")
    with pytest.raises(ValueError, match="train_batch"):
        PolicyBenchConfig(train_batch=0)
    with pytest.raises(ValueError, match="precision"):
        PolicyBenchConfig(precision="fp16")


def test_policy_bench_trains_in_bf16_when_asked(tmp_path, monkeypatch):
    from irl_vla.training import trainer

    monkeypatch.setattr(trainer, "native_bf16", lambda device: True)  # emulated where the CPU lacks it
    path = tmp_path / "small.yaml"
    OmegaConf.save(OmegaConf.create(dataclasses.asdict(tiny_config())), path)
    records = list(run(PolicyBenchConfig(sizes=[str(path)], train_batch=2, precision="bf16"), repeats=1))
    assert records[3]["precision"] == "bf16" and records[3]["samples_per_s"] > 0
