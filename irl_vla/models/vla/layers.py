"""Small attention building blocks shared by the VLA's parts (pre-norm residual layers)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Two linear layers with a GELU between them."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


def sinusoidal_embedding(values: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal features ``(..., dim)`` of scalar ``values`` ``(...)`` (timesteps, positions)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half)
    angles = values.float()[..., None] * freqs  # (..., dim / 2)
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class FeedForward(nn.Module):
    """``x + MLP(LayerNorm(x))``."""

    def __init__(self, d_model: int, ffn_mult: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mlp = mlp(d_model, d_model * ffn_mult, d_model)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, L, D)`` -> ``(B, L, D)``."""
        return x + self.mlp(self.norm(x))


class Attention(nn.Module):
    """``x + Attention(LayerNorm(x), memory)``: multi-head scaled dot-product attention, pre-norm, residual.

    Self-attention when built with ``cross=False``. For cross-attention the keys and values of a memory can be
    projected once (``project_memory``) and reused for several query sets (the planner's denoising steps).
    """

    def __init__(self, d_model: int, num_heads: int, *, cross: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(d_model)
        self.memory_norm = nn.LayerNorm(d_model) if cross else None
        self.q_proj = nn.Linear(d_model, d_model)
        self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, h, N, D / h)

    def project_memory(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``(B, h, M, D / h)`` of a cross-attention memory ``(B, M, D)``."""
        if self.memory_norm is None:
            raise ValueError("project_memory called on a self-attention layer")
        k, v = self.kv_proj(self.memory_norm(memory)).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        *,
        memory_kv: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Attend.

        Args:
            x: queries ``(B, L, D)``.
            memory: keys and values ``(B, M, D)`` (cross-attention, unless ``memory_kv`` is given).
            memory_mask: ``(B, M)`` bool, true on real memory tokens.
            memory_kv: keys and values from ``project_memory``.

        Returns:
            ``(B, L, D)``.
        """
        q_in = self.norm(x)
        if self.memory_norm is None:
            k, v = (self._heads(t) for t in self.kv_proj(q_in).chunk(2, dim=-1))
        elif memory_kv is not None:
            k, v = memory_kv
        elif memory is not None:
            k, v = self.project_memory(memory)
        else:
            raise ValueError("cross-attention called without memory")
        mask = None if memory_mask is None else memory_mask[:, None, None, :]  # (B, 1, 1, M)
        out = F.scaled_dot_product_attention(self._heads(self.q_proj(q_in)), k, v, attn_mask=mask)  # (B, h, L, D/h)
        return x + self.out_proj(out.transpose(1, 2).reshape(x.shape))


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention to one memory, feed-forward (a DETR-style query decoder layer)."""

    def __init__(self, d_model: int, num_heads: int, ffn_mult: int, *, self_attention: bool = True) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, num_heads, cross=False) if self_attention else None
        self.cross_attn = Attention(d_model, num_heads, cross=True)
        self.ffn = FeedForward(d_model, ffn_mult)

    def forward(self, x: Tensor, memory: Tensor, memory_mask: Tensor | None = None) -> Tensor:
        """Queries ``(B, L, D)``, memory ``(B, M, D)`` -> ``(B, L, D)``."""
        if self.self_attn is not None:
            x = self.self_attn(x)
        return self.ffn(self.cross_attn(x, memory, memory_mask))


class QueryDecoder(nn.Module):
    """Learned queries refined by ``layers`` decoder layers over a memory."""

    def __init__(
        self, num_queries: int, d_model: int, num_heads: int, ffn_mult: int, layers: int, *, self_attention: bool
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, d_model) * 0.02)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, ffn_mult, self_attention=self_attention) for _ in range(layers)
        )

    def forward(self, memory: Tensor, query_pos: Tensor | None = None) -> Tensor:
        """Memory ``(B, M, D)`` -> tokens ``(B, Q, D)``; ``query_pos`` ``(Q, D)`` or ``(B, Q, D)`` adds to queries."""
        x = self.queries if query_pos is None else self.queries + query_pos
        x = x.expand(memory.shape[0], -1, -1)  # (B, Q, D)
        for layer in self.layers:
            x = layer(x, memory)
        return x


def grid_cell_centres(bev_range: list[float], rows: int, cols: int) -> Tensor:
    """Centres ``(rows * cols, 2)`` [m] of a grid over ``[x_min, x_max, y_min, y_max]``, row-major, rows along x."""
    x_min, x_max, y_min, y_max = bev_range
    xs = x_min + (torch.arange(rows, dtype=torch.float32) + 0.5) * (x_max - x_min) / rows
    ys = y_min + (torch.arange(cols, dtype=torch.float32) + 0.5) * (y_max - y_min) / cols
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")  # (rows, cols)
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def direction_features(xy: Tensor, z: Tensor | None = None) -> Tensor:
    """Viewing-direction features ``(..., 3)`` (cos and sin of azimuth, elevation [rad]) of ego-frame vectors."""
    azimuth = torch.atan2(xy[..., 1], xy[..., 0])
    ground = torch.linalg.vector_norm(xy, dim=-1)
    elevation = torch.zeros_like(azimuth) if z is None else torch.atan2(z, ground)
    return torch.stack([torch.cos(azimuth), torch.sin(azimuth), elevation], dim=-1)
