"""Provides offline evaluation in one import: splits, protocols, metrics and tuning.

The parts live in their own modules: ``splits`` (leave-one-out, leave-last-out, sampled
negatives), ``metrics`` (tie-aware ranks, HR/NDCG/Recall/Precision/MAP), ``protocols``
(``evaluate``, ``evaluate_scores``), ``tuning`` (``tune``, parameter files) and
``auto_tuning`` (``tune_auto``, ``tune_auto_protocols``).
"""

from __future__ import annotations

from .auto_tuning import BLEND_WEIGHT_GRID, tune_auto, tune_auto_protocols
from .metrics import metrics_from_positions, tie_aware_ranks
from .protocols import EvaluationResult, evaluate, evaluate_scores
from .splits import last_timestamp_matrix, leave_last_out_split, leave_one_out_split, sample_negatives
from .tuning import (
    DEFAULT_SEARCH_SPACES,
    TuningResult,
    fold_seed,
    load_params,
    objective_value,
    save_params,
    tune,
    validation_split,
    with_metric_k,
)

__all__ = [
    "tie_aware_ranks",
    "metrics_from_positions",
    "leave_one_out_split",
    "leave_last_out_split",
    "last_timestamp_matrix",
    "sample_negatives",
    "evaluate",
    "evaluate_scores",
    "EvaluationResult",
    "TuningResult",
    "tune",
    "tune_auto",
    "tune_auto_protocols",
    "objective_value",
    "validation_split",
    "fold_seed",
    "with_metric_k",
    "BLEND_WEIGHT_GRID",
    "DEFAULT_SEARCH_SPACES",
    "save_params",
    "load_params",
]
