"""Provides ranking metrics: tie-aware ranks and HR, NDCG, Recall, Precision and MAP at k."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["tie_aware_ranks", "metrics_from_positions"]


def tie_aware_ranks(positive_scores: NDArray, candidate_scores: NDArray) -> NDArray[np.float64]:
    """Rank each positive among its candidates, ties counted half.

    rank = number of candidates scored strictly higher + 0.5 x number of candidates tied.

    Parameters
    ----------
    positive_scores : ndarray of shape (n,)
        Score of each positive item (already -inf when the item is in the user's train data).
    candidate_scores : ndarray of shape (n, m)
        Scores of the items the positive is ranked against (it must NOT contain the positive
        itself). NaN entries are padding and are ignored.

    Returns
    -------
    ranks : ndarray of float64, shape (n,)
        0-based, tie-aware rank; 0 is the best.
    """
    positive_scores = np.asarray(positive_scores, dtype=np.float64).reshape(-1, 1)
    candidate_scores = np.asarray(candidate_scores, dtype=np.float64)
    higher = (candidate_scores > positive_scores).sum(axis=1)
    tied = (candidate_scores == positive_scores).sum(axis=1)
    return higher + 0.5 * tied


def metrics_from_positions(
    positions: NDArray,
    user_of_position: NDArray,
    ks: Sequence[int],
    n_users: int | None = None,
) -> dict[str, float]:
    """Average HR, NDCG, Recall, Precision and MAP at each k over users.

    Parameters
    ----------
    positions : ndarray of shape (n_positives,)
        Tie-aware 0-based position of every held-out positive in its user's ranked list
        (see :func:`tie_aware_ranks`).
    user_of_position : ndarray of int, shape (n_positives,)
        Any integer label of the user each positive belongs to.
    ks : sequence of int
        Cut-offs.
    n_users : int, optional
        Unused; kept for readability of call sites.

    Returns
    -------
    dict
        ``"HR@k"``: [some positive has position < k];
        ``"NDCG@k"``: sum over positives of [pos < k] / log2(floor(pos) + 2), divided by the ideal
        DCG of min(k, n_positives) hits (with one positive: [r < k] / log2(floor(r) + 2));
        ``"Recall@k"``: hits / n_positives; ``"Precision@k"``: hits / k;
        ``"MAP@k"``: sum over hit positives of (hits up to it / (floor(pos) + 1)) / min(k, n_positives).
        Every value is a mean over users.
    """
    positions = np.asarray(positions, dtype=np.float64)
    users = np.asarray(user_of_position)
    if positions.size == 0:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("HR", "NDCG", "Recall", "Precision", "MAP")}
    _, inverse = np.unique(users, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    n_pos = np.bincount(inverse, minlength=n_groups).astype(np.float64)
    floor_pos = np.floor(positions)
    within = _rank_within_user(positions, inverse)
    out: dict[str, float] = {}
    for k in ks:
        hit = positions < k
        hits = np.bincount(inverse, weights=hit, minlength=n_groups)
        dcg = np.bincount(inverse, weights=hit / np.log2(floor_pos + 2.0), minlength=n_groups)
        ideal_n = np.minimum(n_pos, k).astype(np.int64)
        discounts = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
        idcg = discounts[ideal_n - 1]
        precision_at = np.minimum(within / (floor_pos + 1.0), 1.0)
        ap = np.bincount(inverse, weights=hit * precision_at, minlength=n_groups) / ideal_n
        out[f"HR@{k}"] = float(np.mean(hits > 0))
        out[f"NDCG@{k}"] = float(np.mean(dcg / idcg))
        out[f"Recall@{k}"] = float(np.mean(hits / n_pos))
        out[f"Precision@{k}"] = float(np.mean(hits / k))
        out[f"MAP@{k}"] = float(np.mean(ap))
    return out




def _rank_within_user(positions: NDArray[np.float64], inverse: NDArray[np.int64]) -> NDArray[np.int64]:
    """1-based order of each positive among its own user's positives (by position), for MAP."""
    order = np.lexsort((positions, inverse))
    sorted_users = inverse[order]
    first_of_group = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    group_start = np.repeat(first_of_group, np.diff(np.r_[first_of_group, sorted_users.size]))
    within = np.empty_like(order)
    within[order] = np.arange(order.size) - group_start + 1
    return within
