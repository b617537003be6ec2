"""One head per sub-score, and the expected sub-scores they imply.

- NC and DDC take values {0, 0.5, 1}: 3-class heads (``TERNARY_VALUES``); the expected value is
  ``sum_c p_c v_c``.
- DAC, TLC, TTC, LK, HC and EC are binary: one logit each; the expected value is its sigmoid.
- EP is bounded in [0, 1]: one logit; the expected value is its sigmoid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from irl_vla.models.vla.layers import mlp
from irl_vla.scoring.sub_scores import NUM_SUB_SCORES, SubScore

#: Sub-scores with three values, and those values (class c is value ``TERNARY_VALUES[c]``).
TERNARY: tuple[SubScore, ...] = (SubScore.NC, SubScore.DDC)
TERNARY_VALUES: tuple[float, ...] = (0.0, 0.5, 1.0)
#: Binary sub-scores (EC last: it may be left out).
BINARY: tuple[SubScore, ...] = (SubScore.DAC, SubScore.TLC, SubScore.TTC, SubScore.LK, SubScore.HC, SubScore.EC)


class HeadKey:
    """Keys of the heads' raw outputs in the model's prediction dict."""

    SUB_SCORES = "sub_scores"  # (B, K, S) expected sub-scores in [0, 1] (EC NaN when not predicted)
    TERNARY_LOGITS = "ternary_logits"  # (B, K, len(TERNARY), 3)
    BINARY_LOGITS = "binary_logits"  # (B, K, len(binary heads))
    EP_LOGIT = "ep_logit"  # (B, K)


class SubScoreHeads(nn.Module):
    """Candidate tokens ``(B, K, D)`` -> raw head outputs and expected sub-scores.

    Args:
        d_model: token width.
        hidden: hidden width of each head.
        predict_ec: whether EC has a head.
    """

    def __init__(self, d_model: int, hidden: int, *, predict_ec: bool) -> None:
        super().__init__()
        self.binary = BINARY if predict_ec else BINARY[:-1]
        self.ternary_heads = nn.ModuleList(mlp(d_model, hidden, len(TERNARY_VALUES)) for _ in TERNARY)
        self.binary_heads = nn.ModuleList(mlp(d_model, hidden, 1) for _ in self.binary)
        self.ep_head = mlp(d_model, hidden, 1)
        self.register_buffer("values", torch.tensor(TERNARY_VALUES), persistent=False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Raw outputs and the expected sub-scores (see ``HeadKey``)."""
        ternary = torch.stack([h(x) for h in self.ternary_heads], dim=-2)  # (B, K, 2, 3)
        binary = torch.cat([h(x) for h in self.binary_heads], dim=-1)  # (B, K, nb)
        ep = self.ep_head(x)[..., 0]  # (B, K)
        return {
            HeadKey.SUB_SCORES: self.expected(ternary, binary, ep),
            HeadKey.TERNARY_LOGITS: ternary,
            HeadKey.BINARY_LOGITS: binary,
            HeadKey.EP_LOGIT: ep,
        }

    def expected(self, ternary: Tensor, binary: Tensor, ep: Tensor) -> Tensor:
        """Expected sub-scores ``(B, K, S)`` from raw outputs; EC is NaN when it has no head."""
        cols: list[Tensor | None] = [None] * NUM_SUB_SCORES
        expect = (torch.softmax(ternary, dim=-1) * self.values).sum(-1)  # (B, K, 2)
        for i, sub in enumerate(TERNARY):
            cols[sub] = expect[..., i]
        prob = torch.sigmoid(binary)
        for i, sub in enumerate(self.binary):
            cols[sub] = prob[..., i]
        cols[SubScore.EP] = torch.sigmoid(ep)
        nan = torch.full_like(ep, float("nan"))
        return torch.stack([nan if c is None else c for c in cols], dim=-1)
