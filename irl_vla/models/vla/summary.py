"""Parameter counts per part of each model size (``python -m irl_vla.models.vla.summary [size ...]``).

Models are built on PyTorch's ``meta`` device: nothing is allocated or initialised, so even ``base`` counts in
seconds.
"""

from __future__ import annotations

import sys

import torch

from irl_vla.models.vla.config import MODEL_SIZES, load_model_config
from irl_vla.models.vla.model import VLAModel


def parameter_counts(size: str) -> dict[str, int]:
    """Parameters per part of ``size`` (a shipped size or a yaml path)."""
    cfg = load_model_config(size)
    with torch.device("meta"):
        model = VLAModel(cfg)
    return model.parameter_counts()


def format_table(sizes: list[str]) -> str:
    """A markdown table: one row per part, one column per size."""
    counts = {size: parameter_counts(size) for size in sizes}
    parts = list(next(iter(counts.values())))
    lines = ["| part | " + " | ".join(f"`{s}`" for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for part in parts:
        lines.append(f"| {part} | " + " | ".join(f"{counts[s][part]:,}" for s in sizes) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the table for the sizes named on the command line (default: all shipped sizes)."""
    sizes = (sys.argv[1:] if argv is None else argv) or list(MODEL_SIZES)
    print(format_table(sizes))


if __name__ == "__main__":
    main()
