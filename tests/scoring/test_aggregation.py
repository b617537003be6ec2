"""The one aggregation function against hand-computed values, in numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irl_vla.common.config import to_dataclass
from irl_vla.scoring.aggregation import EPDMS, PDMS, AggregationConfig, aggregate
from irl_vla.scoring.sub_scores import SubScore


def scores(**values: float) -> np.ndarray:
    out = np.ones(len(SubScore))
    for name, v in values.items():
        out[SubScore[name]] = v
    return out


def test_epdms_hand_computed() -> None:
    s = scores(NC=0.5, EP=0.8, LK=0.0)
    assert aggregate(s) == pytest.approx(0.5 * (4 + 5 + 0 + 2 + 2) / 16)


def test_ec_undefined_drops_its_weight() -> None:
    s = scores(NC=0.5, EP=0.8, LK=0.0, EC=np.nan)
    assert aggregate(s) == pytest.approx(0.5 * (4 + 5 + 0 + 2) / 14)
    # Row by row: only the row with undefined EC changes its denominator.
    batch = np.stack([scores(EC=0.0), scores(EC=np.nan)])
    np.testing.assert_allclose(aggregate(batch), [14 / 16, 1.0])


def test_multipliers_zero_the_score() -> None:
    for name in ("NC", "DAC", "DDC", "TLC"):
        assert aggregate(scores(**{name: 0.0})) == 0.0
    assert aggregate(scores(DDC=0.5)) == pytest.approx(0.5)


def test_pdms_v1() -> None:
    s = scores(NC=1.0, DAC=1.0, TTC=0.0, EP=0.5, HC=1.0, DDC=0.0, TLC=0.0, LK=0.0, EC=np.nan)
    assert aggregate(s, PDMS) == pytest.approx((0 + 2.5 + 2) / 12)  # DDC, TLC, LK, EC do not count in v1


def test_nan_in_required_sub_score_is_refused() -> None:
    with pytest.raises(ValueError, match="sub-score EP is NaN"):
        aggregate(scores(EP=np.nan))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 9\)"):
        aggregate(np.ones((3, 8)))
    with pytest.raises(ValueError, match="sub-score TTC is NaN"):
        aggregate(torch.tensor(scores(TTC=np.nan)))


def test_torch_matches_numpy_and_is_differentiable() -> None:
    rng = np.random.default_rng(0)
    batch = rng.uniform(size=(4, 5, len(SubScore)))
    batch[1, 2, SubScore.EC] = np.nan
    t = torch.tensor(batch, requires_grad=True)
    out = aggregate(t)
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out.detach().numpy(), aggregate(batch), rtol=1e-12)
    out.sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()
    assert t.grad[0, 0, SubScore.EP] > 0


def test_config_from_yaml_and_validation() -> None:
    cfg = to_dataclass({"weights": {"EP": 5.0, "TTC": 5.0, "LK": 2.0, "HC": 2.0, "EC": 2.0}}, AggregationConfig)
    assert cfg.weight_vector[SubScore.EP] == 5.0 and cfg == EPDMS
    with pytest.raises(ValueError, match="unknown sub-score 'XX'"):
        AggregationConfig(multiplicative=["XX"])
    with pytest.raises(ValueError, match=r"weights.EP: expected a finite weight >= 0"):
        AggregationConfig(weights={"EP": -1.0})
    with pytest.raises(ValueError, match="not weighted"):
        AggregationConfig(weights={"EP": 1.0}, optional=["EC"])


def test_sub_score_names() -> None:
    assert SubScore.from_name("ep") is SubScore.EP
    assert SubScore.from_name("two_frame_extended_comfort") is SubScore.EC
    assert SubScore.TTC.navsim_name == "time_to_collision_within_bound"
