"""One head per sub-score, and the expected sub-scores they imply.

- NC and DDC take values {0, 0.5, 1}: 3-class heads (``TERNARY_VALUES``); the expected value is
  ``sum_c p_c v_c``.
- DAC, TLC, TTC, LK, HC and EC are binary: one logit each; the expected value is its sigmoid.
- EP is bounded in [0, 1]: one logit; the expected value is its sigmoid.

``SubScoreHeads`` gives each sub-score its own two-layer head; ``FusedSubScoreHeads`` (the light decoder's) has
one linear layer for every logit at once.
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


class _Heads(nn.Module):
    """What both kinds of heads share: the binary sub-scores they predict and the expected values of logits."""

    def __init__(self, *, predict_ec: bool) -> None:
        super().__init__()
        self.binary = BINARY if predict_ec else BINARY[:-1]
        self.register_buffer("values", torch.tensor(TERNARY_VALUES), persistent=False)

    def outputs(self, ternary: Tensor, binary: Tensor, ep: Tensor) -> dict[str, Tensor]:
        """Raw outputs and the expected sub-scores (see ``HeadKey``)."""
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


class SubScoreHeads(_Heads):
    """Candidate tokens ``(B, K, D)`` -> raw head outputs and expected sub-scores, a two-layer head each.

    Args:
        d_model: token width.
        hidden: hidden width of each head.
        predict_ec: whether EC has a head.
    """

    def __init__(self, d_model: int, hidden: int, *, predict_ec: bool) -> None:
        super().__init__(predict_ec=predict_ec)
        self.ternary_heads = nn.ModuleList(mlp(d_model, hidden, len(TERNARY_VALUES)) for _ in TERNARY)
        self.binary_heads = nn.ModuleList(mlp(d_model, hidden, 1) for _ in self.binary)
        self.ep_head = mlp(d_model, hidden, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Raw outputs and the expected sub-scores (see ``HeadKey``)."""
        ternary = torch.stack([h(x) for h in self.ternary_heads], dim=-2)  # (B, K, 2, 3)
        binary = torch.cat([h(x) for h in self.binary_heads], dim=-1)  # (B, K, nb)
        ep = self.ep_head(x)[..., 0]  # (B, K)
        return self.outputs(ternary, binary, ep)


class FusedSubScoreHeads(_Heads):
    """Candidate features ``(B, K, D)`` -> every logit from one linear layer (the light decoder's heads).

    Args:
        d_in: feature width.
        predict_ec: whether EC has a head.
    """

    def __init__(self, d_in: int, *, predict_ec: bool) -> None:
        super().__init__(predict_ec=predict_ec)
        self.num_ternary = len(TERNARY) * len(TERNARY_VALUES)
        self.linear = nn.Linear(d_in, self.num_ternary + len(self.binary) + 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Raw outputs and the expected sub-scores (see ``HeadKey``)."""
        logits = self.linear(x)  # (B, K, 2 * 3 + nb + 1)
        nt, nb = self.num_ternary, len(self.binary)
        ternary = logits[..., :nt].unflatten(-1, (len(TERNARY), len(TERNARY_VALUES)))  # (B, K, 2, 3)
        return self.outputs(ternary, logits[..., nt : nt + nb], logits[..., nt + nb])
