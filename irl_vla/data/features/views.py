"""``ViewsDataset``: two or more models' inputs of the same scenes, side by side, each under its own key prefix.

Two models may read one builder with other settings: stage 3's policy the LiDAR BEV on a grid moved forward, the
learned reward model the same builder on its centred grid. One ``FeatureDataset`` cannot hold both (a sample has
one ``lidar_bev``), so each model gets a ``FeatureDataset`` of its own over the same tokens and the same feature
cache (where their entries sit beside each other), and this dataset merges their samples, prefixing each view's
keys: ``{"": policy_view, "reward/": reward_view}`` gives ``lidar_bev`` and ``reward/lidar_bev``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.utils.data import Dataset

from irl_vla.data.features.dataset import FeatureDataset, Sample


def strip_view(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of the view ``prefix``, under their builders' own keys."""
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


class ViewsDataset(Dataset[Sample]):
    """The samples of several ``FeatureDataset`` over the same tokens, merged, each view's keys prefixed.

    Args:
        views: prefix -> dataset; a prefix ends with ``/``, or is empty for one view (its keys stay as they are).

    Raises:
        ValueError: when the views differ in their tokens, or a prefix or a key could mix two views' keys.
    """

    def __init__(self, views: Mapping[str, FeatureDataset]) -> None:
        if not views:
            raise ValueError("ViewsDataset: no views")
        self.views = dict(views)
        first = next(iter(self.views.values()))
        self.tokens = list(first.tokens)
        for prefix, view in self.views.items():
            if list(view.tokens) != self.tokens:
                raise ValueError(f"ViewsDataset: view {prefix!r} has other tokens than the first view")
        for prefix, view in self.views.items():
            if prefix and not prefix.endswith("/"):
                raise ValueError(f"ViewsDataset: view prefix {prefix!r} must be empty or end with '/'")
            for builder in view.builders:
                for key in builder.specs():
                    if "/" in key:  # then no two views' keys can be equal
                        raise ValueError(f"ViewsDataset: builder {builder.name}'s key {key!r} holds a '/'")

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> Sample:
        features: dict[str, torch.Tensor] = {}
        targets: dict[str, torch.Tensor] = {}
        for prefix, view in self.views.items():
            sample = view[index]
            features.update({prefix + key: value for key, value in sample.features.items()})
            targets.update({prefix + key: value for key, value in sample.targets.items()})
        return Sample(self.tokens[index], features, targets)
