"""Normalisation statistics from data (``irl_vla.models.vla.normalization``)."""

from __future__ import annotations

import torch

from irl_vla.models.vla.config import FeatureKey, TargetKey
from irl_vla.models.vla.normalization import RELATIVE_STD_FLOOR, Standardizer, compute_normalization


def _batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ego = torch.randn(8, 2, 4, generator=g) * 5.0  # (B, T, D)
    ego[:, :, 1] = 0.0  # a column constant at 0 (the embedded ego's lateral velocity)
    ego[:, :, 2] = 3.5  # a constant column off 0
    ego[:, :, 3] = 1.0 + 1e-4 * torch.randn(8, 2, generator=g)  # varies, far below the largest deviation
    images = torch.randint(0, 256, (8, 1, 1, 3, 4, 4), generator=g, dtype=torch.uint8)  # (B, T, N, C, H, W)
    trajectory = torch.randn(8, 3, 3, generator=g)  # (B, T, 3)
    return {
        FeatureKey.EGO_STATUS.value: ego,
        FeatureKey.CAMERA_IMAGES.value: images,
        TargetKey.TRAJECTORY.value: trajectory,
    }


def test_constant_columns_are_centred_not_scaled_and_small_ones_floored() -> None:
    stats = compute_normalization(_batch(s) for s in range(3))
    std = stats.ego_std  # (T, D)
    torch.testing.assert_close(std[:, 1], torch.ones(2))  # was floored to 1e-3 of the largest deviation: x 200
    torch.testing.assert_close(std[:, 2], torch.ones(2))
    torch.testing.assert_close(stats.ego_mean[:, 2], torch.full((2,), 3.5))
    floor = float(std[:, 0].max()) * RELATIVE_STD_FLOOR
    torch.testing.assert_close(std[:, 3], torch.full((2,), floor))  # real variation below the floor: floored
    assert bool((std[:, 0] > 3.0).all())


def test_scaled_standardisation_of_uint8_images_equals_the_plain_one() -> None:
    norm = Standardizer("camera_images", (3, 1, 1))
    norm.set(torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1))
    images = _batch(0)[FeatureKey.CAMERA_IMAGES.value]  # uint8 (B, T, N, C, H, W)
    out = norm.scaled(images, 1.0 / 255.0)
    assert out.dtype == torch.float32 and images.dtype == torch.uint8  # the input is left as it was
    torch.testing.assert_close(out, norm(images.float() / 255.0), rtol=0, atol=1e-5)
    floats = images.float()
    norm.scaled(floats, 1.0)
    assert torch.equal(floats, images.float())  # a float input is copied, never scaled in place
