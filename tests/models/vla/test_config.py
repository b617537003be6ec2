import dataclasses

import pytest
from omegaconf import OmegaConf

from irl_vla.models.vla.config import MODEL_SIZES, VLAConfig, load_model_config, model_config_path


def test_default_yaml_equals_dataclass_defaults():
    assert load_model_config("default") == VLAConfig()


@pytest.mark.parametrize("size", MODEL_SIZES)
def test_every_size_loads_and_states_every_field(size):
    cfg = load_model_config(size)
    assert cfg.size == size
    written = OmegaConf.to_container(OmegaConf.load(model_config_path(size)))
    full = dataclasses.asdict(cfg)
    for part, value in full.items():  # every field is written in the yaml, none left to a hidden default
        assert part in written, part
        if isinstance(value, dict):
            assert set(written[part]) == set(value), part


def test_unknown_or_invalid_keys_are_named():
    with pytest.raises(ValueError, match="no_such_key"):
        load_model_config("tiny", {"planner": {"no_such_key": 1}})
    with pytest.raises(ValueError, match="denoising_stride"):
        load_model_config("tiny", {"planner": {"denoising_stride": 7}})
    with pytest.raises(ValueError, match="train_max_timestep"):
        load_model_config("tiny", {"planner": {"denoising_stride": 40, "num_denoising_steps": 3}})
    with pytest.raises(ValueError, match="num_kv_heads"):
        load_model_config("tiny", {"language": {"num_kv_heads": 3}})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_model_config("nope.yaml")
