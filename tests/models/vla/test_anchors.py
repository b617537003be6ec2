import pytest
import torch

from irl_vla.models.vla.anchors import compute_anchors


def _three_groups(per_group: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1, 9, dtype=torch.float32)
    centres = torch.stack(
        [
            torch.stack([2 * t, torch.zeros(8), torch.zeros(8)], -1),  # slow straight
            torch.stack([6 * t, 0.2 * t**2, 0.05 * t], -1),  # fast left
            torch.stack([6 * t, -0.2 * t**2, -0.05 * t], -1),  # fast right
        ]
    )  # (3, T, 3)
    samples = centres.repeat_interleave(per_group, 0) + 0.05 * torch.randn(3 * per_group, 8, 3, generator=g)
    return samples, centres


def test_kmeans_recovers_the_group_means():
    samples, centres = _three_groups()
    anchors = compute_anchors(samples, 3, seed=1)
    assert anchors.shape == (3, 8, 3)
    for centre in centres:  # each true group mean is matched by one anchor within the noise
        err = (anchors - centre).abs().amax(dim=(1, 2)).min()
        assert err < 0.05
    group_means = samples.view(3, -1, 8, 3).mean(1)
    order = torch.argsort(group_means[:, -1, 0], stable=True)
    torch.testing.assert_close(anchors[..., :2], group_means[order][..., :2], atol=1e-5, rtol=0)


def test_anchors_are_deterministic_and_sorted():
    samples, _ = _three_groups()
    a = compute_anchors(samples, 5, seed=3)
    torch.testing.assert_close(a, compute_anchors(samples, 5, seed=3))
    assert torch.all(a[1:, -1, 0] >= a[:-1, -1, 0])


def test_bad_input_is_refused():
    samples, _ = _three_groups(per_group=1)
    with pytest.raises(ValueError, match="3 trajectories cannot make 5"):
        compute_anchors(samples, 5)
    with pytest.raises(ValueError, match=r"\(N, T, 3\)"):
        compute_anchors(samples[..., :2], 2)
    samples[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        compute_anchors(samples, 2)
