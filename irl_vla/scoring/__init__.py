"""Scoring: sub-score names and the one aggregation function (EPDMS v2, PDMS v1)."""

from irl_vla.scoring.aggregation import AggregationConfig, aggregate
from irl_vla.scoring.sub_scores import SubScore

__all__ = ["AggregationConfig", "SubScore", "aggregate"]
