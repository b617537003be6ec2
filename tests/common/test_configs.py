"""Every yaml under configs/ composes, matches its dataclass, and holds no absolute paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from irl_vla.common.config import PathsConfig, to_dataclass
from irl_vla.scoring.aggregation import AggregationConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
GROUP_SCHEMAS = {"aggregation": AggregationConfig, "paths": PathsConfig}


def _walk(node: object):
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)
    else:
        yield node


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_no_absolute_paths(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for value in _walk(data):
        if isinstance(value, str):
            assert not value.startswith(("/", "~")), f"{path}: absolute path {value!r}"


@pytest.mark.parametrize(("group", "schema"), GROUP_SCHEMAS.items())
def test_group_options_match_their_dataclass(group: str, schema: type) -> None:
    options = sorted((CONFIG_DIR / group).glob("*.yaml"))
    assert options
    for option in options:
        cfg = OmegaConf.load(option)
        to_dataclass(cfg, schema, where=f"{group}/{option.stem}")


def test_unknown_key_and_bad_value_name_the_group() -> None:
    with pytest.raises(ValueError, match="paths.*not_a_key"):
        to_dataclass({"not_a_key": 1}, PathsConfig, where="paths")
    with pytest.raises(ValueError, match="aggregation.*unknown sub-score 'QQ'"):
        to_dataclass({"multiplicative": ["QQ"]}, AggregationConfig, where="aggregation")


def test_struct_mode_rejects_unknown_override() -> None:
    with initialize_config_module(config_module="configs", version_base="1.3"):
        cfg = compose("bench")
        assert OmegaConf.is_struct(cfg)
        with pytest.raises(Exception, match="nonexistent"):
            compose("bench", overrides=["nonexistent=1"])


@pytest.mark.parametrize(
    ("name", "key", "schema"),
    [
        ("eval", "eval", "irl_vla.evaluation.runner.EvalConfig"),
        ("generate", "generate", "sim_bridges.embedded.generate.GenerateConfig"),
        ("submit", "submit", "sim_bridges.navsim.submission.SubmitConfig"),
        ("navsim_export", "navsim_export", "sim_bridges.navsim.export.ExportConfig"),
        ("cache", "cache", "irl_vla.data.features.caching.CacheConfig"),
    ],
)
def test_command_configs_compose_into_their_dataclass(name: str, key: str, schema: str) -> None:
    import importlib

    module, cls = schema.rsplit(".", 1)
    with initialize_config_module(config_module="configs", version_base="1.3"):
        cfg = compose(name)
    to_dataclass(
        OmegaConf.to_container(cfg[key], resolve=True), getattr(importlib.import_module(module), cls), where=key
    )
