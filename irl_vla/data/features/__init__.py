"""Feature and target builders from scenes to tensors, the feature cache and the dataset (``docs/features.md``)."""

from irl_vla.data.features.builder import FeatureBuilder, TargetBuilder, TensorSpec
from irl_vla.data.features.dataset import Batch, FeatureDataset, Sample, collate
from irl_vla.data.features.registry import (
    FEATURE_BUILDERS,
    TARGET_BUILDERS,
    build_feature_builders,
    build_target_builders,
)

__all__ = [
    "FEATURE_BUILDERS",
    "TARGET_BUILDERS",
    "Batch",
    "FeatureBuilder",
    "FeatureDataset",
    "Sample",
    "TargetBuilder",
    "TensorSpec",
    "build_feature_builders",
    "build_target_builders",
    "collate",
]
