"""The camera CNN (``vision.conv_blocks``): deeper stages that see further, at the same strides and tokens."""

from __future__ import annotations

import pytest
import torch

from irl_vla.models.vla.config import load_model_config
from irl_vla.models.vla.vision import ConvTower, ResidualBlock
from tests.models.vla.helpers import TINY_VIT, ready_model, synthetic_batch, tiny_config

CHANNELS = [8, 16, 16]  # three stages: strides 4, 8, 16


def _receptive_width(tower: ConvTower, size: int = 192) -> int:
    """Width [px] of the input columns that reach the centre cell of the tower's last map.

    The group norms (which couple every position through their statistics) are set aside: this is the reach of
    the convolutions.
    """
    for module in list(tower.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.GroupNorm):
                setattr(module, name, torch.nn.Identity())
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, size, requires_grad=True)
    out = tower(x)  # (1, C, h, w)
    out[0, :, :, out.shape[-1] // 2].sum().backward()
    reached = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    return int(reached.max() - reached.min() + 1)


def test_plain_tower_keeps_its_layers_and_sees_28_pixels():
    tower = ConvTower(3, CHANNELS)
    assert not any(isinstance(m, ResidualBlock) for m in tower.modules())
    # one convolution, norm and activation a stage: the parameter names checkpoints were written with
    assert sorted(tower.state_dict()) == sorted(
        f"stages.{i}.{j}.{p}" for i in range(3) for j, p in [(0, "weight"), (1, "weight"), (1, "bias")]
    )
    assert _receptive_width(tower) == 28


def test_blocks_deepen_every_stage_at_the_same_strides():
    plain, deep = ConvTower(3, CHANNELS), ConvTower(3, CHANNELS, blocks=2)
    x = torch.randn(2, 3, 48, 64)
    assert deep(x).shape == plain(x).shape == (2, 16, 3, 4)
    assert [sum(isinstance(m, ResidualBlock) for m in stage) for stage in deep.stages] == [2, 2, 2]
    # each block adds a 3x3 layer at its stage's stride: 28 px -> 84 px with one block a stage
    assert _receptive_width(ConvTower(3, CHANNELS, blocks=1)) == 84 > _receptive_width(plain)


def test_residual_block_is_the_identity_path_plus_a_layer():
    block = ResidualBlock(8)
    torch.nn.init.zeros_(block.norm.weight)  # the layer's contribution silenced
    x = torch.rand(2, 8, 5, 7)  # >= 0: relu leaves it
    assert torch.equal(block(x), x)


def test_conv_blocks_in_the_model_train_and_are_checked():
    cfg = tiny_config(vision={"conv_blocks": 1})
    batches = [synthetic_batch(cfg, 4, seed) for seed in range(2)]
    model = ready_model(cfg, batches)
    features, targets = batches[0]
    model.train()
    loss = model.compute_loss(model(features, targets), targets)["loss"]
    loss.backward()
    blocks = [m for m in model.vision.tower.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == len(cfg.vision.conv_channels)
    assert torch.isfinite(loss) and all(b.conv.weight.grad.abs().sum() > 0 for b in blocks)
    with pytest.raises(ValueError, match="conv_blocks"):
        load_model_config("tiny", {"vision": {"conv_blocks": -1}})
    with pytest.raises(ValueError, match="conv_blocks: deepens our CNN"):
        load_model_config("tiny", {"vision": {"conv_blocks": 1, "backend": "transformers", "hf_config": TINY_VIT}})
