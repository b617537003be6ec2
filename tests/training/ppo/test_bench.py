"""``irl-vla bench ppo`` on the tiny policy: a record per phase, in samples per second."""

from __future__ import annotations

from irl_vla.benchmarks.ppo_bench import PPOBenchConfig, run
from irl_vla.training.ppo.config import PPOSettings


def test_ppo_bench_reports_rollout_update_and_iteration_samples_per_second() -> None:
    for reward_size in ("analytic", "tiny"):
        cfg = PPOBenchConfig(sizes=["tiny"], scenes=2, reward_size=reward_size, ppo=PPOSettings(samples_per_anchor=2))
        records = list(run(cfg, repeats=1))
        assert [r["name"] for r in records] == ["rollout_tiny", "update_pass_tiny", "iteration_tiny"]
        assert all(r["suite"] == "ppo" and r["samples_per_s"] > 0 and r["reward"] == reward_size for r in records)
        assert records[0]["items"] == 2 * 2 * records[0]["anchors"]  # scenes x samples per anchor x anchors
