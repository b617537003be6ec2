"""One source of defaults: every command's ``--cfg job`` shows its dataclass's defaults; groups, shared keys, loader."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from irl_vla.common.command import Command
from irl_vla.common.config import PathsConfig, RunConfig, to_dataclass
from irl_vla.scoring.aggregation import EPDMS, PDMS, AggregationConfig, aggregate
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore
from irl_vla.training.il import ILConfig
from tools.cli import COMMANDS, main

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def _walk(node: object):
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
    else:
        yield node


def _command(name: str) -> Command:
    module = importlib.import_module(COMMANDS[name][0])
    assert hasattr(module, "COMMAND"), f"{module.__name__}: declares no COMMAND (irl_vla.common.command.Command)"
    return module.COMMAND


def _defaults(schema: type) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(schema))  # type: ignore[return-value]


def _cfg_job(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main([*args, "--cfg", "job"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.fixture
def no_root_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The roots at their defaults (the test session points them at temporary folders)."""
    monkeypatch.delenv("IRL_VLA_DATA_ROOT", raising=False)
    monkeypatch.delenv("IRL_VLA_OUTPUT_ROOT", raising=False)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_no_absolute_paths(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for value in _walk(data):
        if isinstance(value, str):
            assert not value.startswith(("/", "~")), f"{path}: absolute path {value!r}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cfg_job_shows_the_dataclass_defaults(
    command: str, capsys: pytest.CaptureFixture[str], no_root_variables: None
) -> None:
    spec = _command(command)
    cfg = _cfg_job(capsys, command, *(["model=small"] if command == "train" else []))  # a model without a recipe
    assert cfg["paths"] == _defaults(PathsConfig) and cfg["run"] == _defaults(RunConfig)
    shown = cfg[spec.key] if spec.key else {k: cfg[k] for k in _defaults(spec.schema)}
    assert shown == _defaults(spec.schema)


def test_train_il_of_the_default_model_takes_its_recipe_and_the_command_line_wins(
    capsys: pytest.CaptureFixture[str], no_root_variables: None
) -> None:
    recipe = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "recipe" / "il_default.yaml"))
    assert isinstance(recipe, dict) and recipe.pop("extra_splits") == ["${train.split}_two_stage"]
    shown = _cfg_job(capsys, "train")["train"]

    def within(part: dict, whole: dict) -> bool:  # a nested recipe key (optimizer.lr) keeps its group's others
        return all(within(v, whole[k]) if isinstance(v, dict) else whole[k] == v for k, v in part.items())

    assert within(recipe, shown), (recipe, shown)
    assert shown["optimizer"]["warmup_steps"] == _defaults(ILConfig)["optimizer"]["warmup_steps"]
    assert shown["extra_splits"] == ["synth_navtrain_two_stage"]  # the training split's own stage-2 scenes
    other = _cfg_job(capsys, "train", "train.split=synth_navtest")["train"]
    assert other["extra_splits"] == ["synth_navtest_two_stage"]
    shown = _cfg_job(capsys, "train", "train.max_steps=7", "train.extra_splits=[]")["train"]
    assert (shown["max_steps"], shown["extra_splits"], shown["precision"]) == (7, [], recipe["precision"])
    for other in ("model=tiny", "model=ego_mlp", "stage=ppo"):  # no recipe of their own: the stage's defaults
        assert _cfg_job(capsys, "train", other)["train"]["max_steps"] != recipe["max_steps"], other


def test_bench_suites_show_their_dataclass_defaults(
    capsys: pytest.CaptureFixture[str], no_root_variables: None
) -> None:
    from tools.run_bench import SUITES

    assert sorted(p.stem for p in (CONFIG_DIR / "bench").glob("*.yaml")) == sorted(SUITES)
    for suite, (schema, _) in SUITES.items():
        assert _cfg_job(capsys, "bench", suite)["bench"] == _defaults(schema), suite


def test_shared_run_keys_reach_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    shared = ["run.workers=7", "run.backend=sequential", "run.seed=11", "run.progress=false", "paths.data_root=here"]
    cfg = _cfg_job(capsys, "eval", *shared)["eval"]
    assert (cfg["workers"], cfg["backend"], cfg["progress"], cfg["data_root"]) == (7, "sequential", False, "here")
    cfg = _cfg_job(capsys, "generate", *shared)["generate"]
    assert cfg["base_seed"] == 11 and cfg["two_stage"]["base_seed"] == 11 and cfg["workers"] == 7
    assert _cfg_job(capsys, "cache", *shared)["cache"]["executor"] == {
        "backend": "sequential",
        "workers": 7,
        "ray_address": None,
    }
    assert _cfg_job(capsys, "eval", *shared, "eval.workers=3")["eval"]["workers"] == 3  # its own key still wins


def test_a_bad_value_is_refused_when_composing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "eval.workers=many", "--cfg", "job"]) == 2
    assert "eval.workers" in capsys.readouterr().err


def test_paths_group_matches_its_dataclass() -> None:
    for option in sorted((CONFIG_DIR / "paths").glob("*.yaml")):
        to_dataclass(OmegaConf.to_container(OmegaConf.load(option), resolve=True), PathsConfig, where=option.stem)


def test_unknown_key_and_bad_value_name_the_group() -> None:
    with pytest.raises(ValueError, match="paths.*not_a_key"):
        to_dataclass({"not_a_key": 1}, PathsConfig, where="paths")
    with pytest.raises(ValueError, match="aggregation.*unknown sub-score 'QQ'"):
        to_dataclass({"multiplicative": ["QQ"]}, AggregationConfig, where="aggregation")


def test_a_given_dict_replaces_the_default_dict() -> None:
    """A mapping for a dict field is the dict (the union with the default's keys would keep unwanted weights)."""
    assert to_dataclass({"weights": {"EP": 1.0}, "optional": []}, AggregationConfig).weights == {"EP": 1.0}
    nested = to_dataclass({"aggregation": {"weights": {"EP": 1.0}, "optional": []}}, _evaluation_config())
    assert nested.aggregation.weights == {"EP": 1.0} and nested.aggregation.multiplicative == EPDMS.multiplicative


def _evaluation_config() -> type:
    from irl_vla.evaluation.runner import EvalConfig

    return EvalConfig


def test_aggregation_group_is_what_eval_scores_with(capsys: pytest.CaptureFixture[str]) -> None:
    spec = _command("eval")
    with initialize_config_module(config_module="configs", version_base="1.3"):
        default, pdms = (spec.load(compose("eval", overrides=o)) for o in ([], ["aggregation=pdms"]))
    assert default.aggregation == EPDMS
    rows = np.random.default_rng(0).uniform(size=(16, NUM_SUB_SCORES))
    s = {name: rows[:, SubScore.from_name(name)] for name in ("NC", "DAC", "TTC", "EP", "HC")}
    v1 = s["NC"] * s["DAC"] * (5 * s["TTC"] + 5 * s["EP"] + 2 * s["HC"]) / 12
    np.testing.assert_allclose(aggregate(rows, pdms.aggregation), v1)
    np.testing.assert_allclose(aggregate(rows, PDMS), v1)


def test_struct_mode_rejects_unknown_override() -> None:
    _command("bench")
    with initialize_config_module(config_module="configs", version_base="1.3"):
        cfg = compose("bench")
        assert OmegaConf.is_struct(cfg)
        with pytest.raises(Exception, match="nonexistent"):
            compose("bench", overrides=["nonexistent=1"])


def test_the_groups_of_the_learning_stages_exist() -> None:
    for group in ("agent", "model", "train", "sim"):
        assert sorted((CONFIG_DIR / group).glob("*.yaml")), f"configs/{group}/ has no option"


@pytest.mark.parametrize("command", ["eval", "submit"])
def test_agent_options_show_their_dataclass_defaults(
    command: str, capsys: pytest.CaptureFixture[str], no_root_variables: None
) -> None:
    from irl_vla.agents.registry import AGENTS, agent_yaml, resolve_agent

    _command(command)
    assert sorted(p.stem for p in (CONFIG_DIR / "agent").glob("*.yaml")) == sorted(AGENTS)
    for name, entry in AGENTS.items():
        shown = _cfg_job(capsys, command, f"agent={name}")["agent"]
        assert shown == _defaults(entry.config) | {"name": name}, name
        assert resolve_agent(agent_yaml(name)) == entry.config(name=name)  # eval.agents=[<name>] reads the same
    assert _cfg_job(capsys, command, "agent=constant_velocity", "agent.num_poses=4")["agent"]["num_poses"] == 4
