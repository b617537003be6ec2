"""The report's plots as PNG bytes (matplotlib, no display): reliability diagrams, EPDMS scatter, regret, gaps."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from irl_vla.evaluation.reward_report.metrics import Correlations, SubScoreGap, SubScoreKind, SubScoreMetrics

#: Resolution of the embedded pictures [dots per inch]; small enough for a report of a few MB.
DPI = 80


def png_bytes(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes (the figure is closed)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def reliability_figure(metrics: Sequence[SubScoreMetrics]) -> bytes:
    """One reliability diagram per binary or three-level sub-score: observed frequency of "== 1" per bin.

    Marker areas grow with the logarithm of the bin's count.
    """
    judged = [m for m in metrics if m.kind != SubScoreKind.BOUNDED.value]
    cols = 4
    rows = max(1, -(-len(judged) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(judged) :]:
        ax.axis("off")
    for ax, m in zip(axes.flat, judged, strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        filled = [b for b in m.reliability if b.count]
        if filled:  # marker area grows with the bin's count (log scale)
            sizes = [6.0 + 10.0 * np.log10(b.count) for b in filled]
            ax.plot([b.mean_predicted for b in filled], [b.observed for b in filled], "-", color="tab:blue", lw=1)
            ax.scatter([b.mean_predicted for b in filled], [b.observed for b in filled], s=sizes, color="tab:blue")
        ece = "n/a" if np.isnan(m.ece) else f"{m.ece:.3f}"
        ax.set_title(f"{m.name}  (ECE {ece}, n {m.n})", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("predicted P(= 1)", fontsize=8)
        ax.set_ylabel("observed frequency", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def scatter_figure(predicted: np.ndarray, simulator: np.ndarray, corr: Correlations, title: str = "") -> bytes:
    """Predicted against simulator EPDMS of every candidate, with the three correlations in the title."""
    ok = ~(np.isnan(predicted) | np.isnan(simulator))
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    if ok.sum() > 5000:
        hb = ax.hexbin(simulator[ok], predicted[ok], gridsize=50, bins="log", cmap="viridis", extent=(0, 1, 0, 1))
        fig.colorbar(hb, ax=ax, label="candidates (log)")
    else:
        ax.scatter(simulator[ok], predicted[ok], s=6, alpha=0.35, color="tab:blue", edgecolors="none")
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("simulator EPDMS")
    ax.set_ylabel("predicted EPDMS")
    ax.set_title(
        f"{title}\nPearson {corr.pearson:.3f}  Spearman {corr.spearman:.3f}  Kendall {corr.kendall:.3f}  (n {corr.n})",
        fontsize=9,
    )
    return png_bytes(fig)


def regret_figure(per_scene: Sequence[float]) -> bytes:
    """Histogram of the top-1 regret over scenes [EPDMS points]."""
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    r = np.asarray(per_scene, dtype=np.float64)
    if len(r):
        ax.hist(r, bins=np.linspace(0.0, max(10.0, float(r.max())), 26), color="tab:orange")
    ax.set_xlabel("top-1 regret [EPDMS points]")
    ax.set_ylabel("scenes")
    return png_bytes(fig)


def gap_figure(gaps: dict[str, Sequence[SubScoreGap]]) -> bytes:
    """Per sub-score mean predicted minus mean simulator value, one bar group per candidate set."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    names = [g.name for g in next(iter(gaps.values()))] if gaps else []
    width = 0.8 / max(1, len(gaps))
    x = np.arange(len(names))
    for i, (label, rows) in enumerate(gaps.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [g.gap for g in rows], width=width, label=label)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_ylabel("predicted - simulator mean")
    if gaps:
        ax.legend(fontsize=7)
    return png_bytes(fig)
