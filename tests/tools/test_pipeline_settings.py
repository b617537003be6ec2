"""``irl-vla pipeline`` hashes each step's composed settings, so an edited config file re-runs the step."""

from __future__ import annotations

from pathlib import Path

import yaml

from irl_vla.pipeline.config import PipelineConfig
from irl_vla.pipeline.markers import config_hash
from irl_vla.pipeline.steps import Layout, plan
from tools.pipeline import composed_settings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_a_steps_settings_hold_the_values_of_its_config_files_and_are_stable(tmp_path: Path) -> None:
    steps = {s.name: s for s in plan(PipelineConfig(), Layout(tmp_path / "work", tmp_path / "data"))}
    ppo = composed_settings(steps["ppo"])
    on_file = yaml.safe_load((CONFIGS / "train" / "ppo.yaml").read_text())
    # values that only the yaml file sets (not the pipeline's command line) are part of what the hash sees
    composed = yaml.safe_load(ppo)
    assert composed["train"]["ppo"]["selection_margin"] == on_file["ppo"]["selection_margin"]
    assert composed["train"]["stage"] == "ppo" and composed["train"]["max_steps"] == PipelineConfig().ppo_steps
    # the same files give the same text (the step is skipped), a changed value a different hash
    assert composed_settings(steps["ppo"]) == ppo
    edited = ppo.replace(f"selection_margin: {on_file['ppo']['selection_margin']}", "selection_margin: 0.05")
    assert edited != ppo
    assert config_hash(steps["ppo"], edited) != config_hash(steps["ppo"], ppo)
    # each stage composes its own schema: stage 1 has no PPO settings
    assert "ppo" not in yaml.safe_load(composed_settings(steps["il"]))["train"]
