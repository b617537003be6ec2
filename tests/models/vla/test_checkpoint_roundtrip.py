import dataclasses

import torch

from irl_vla.common.checkpoint import load_checkpoint, save_checkpoint
from irl_vla.models.vla.model import VLAModel
from irl_vla.models.vla.normalization import NormalizationStats
from tests.models.vla.helpers import ready_model, synthetic_batch, tiny_config


def test_weights_statistics_and_anchors_round_trip_through_a_checkpoint(tmp_path):
    cfg = tiny_config()
    batches = [synthetic_batch(cfg, 3, seed) for seed in range(2)]
    model = ready_model(cfg, batches).eval()
    stats = NormalizationStats(
        model.ego_norm.mean,
        model.ego_norm.std,
        model.image_norm.mean.flatten(),
        model.image_norm.std.flatten(),
        model.planner.trajectory_norm.mean,
        model.planner.trajectory_norm.std,
    )
    path = save_checkpoint(
        tmp_path / "ckpt",
        weights=model.state_dict(),
        config=dataclasses.asdict(cfg),
        normalization=stats.to_tensors(),
    )
    ckpt = load_checkpoint(path, config=dataclasses.asdict(cfg))
    restored = VLAModel(cfg).eval()
    restored.load_state_dict(ckpt.weights)  # buffers: statistics, anchors and their set flags
    assert bool(restored.planner.anchors_set) and bool(restored.ego_norm.is_set)
    torch.testing.assert_close(NormalizationStats.from_tensors(ckpt.normalization).ego_mean, model.ego_norm.mean)
    f, _ = batches[0]
    with torch.no_grad():
        torch.testing.assert_close(restored(f)["modes"], model(f)["modes"], rtol=0, atol=0)
