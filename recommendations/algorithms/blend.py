"""Provides the pieces a blend of recommenders shares: unit scaling, row scaling and Auto's defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .content import ContentSimilarity

__all__ = [
    "AUTO_DEFAULTS",
    "EASE_MAX_ITEMS",
    "ITEM_COMPONENTS",
    "USER_COMPONENTS",
    "content_similarity",
    "popularity_scale",
    "row_max_scaled",
    "unit_scale",
    "user_scores_in_blocks",
]

#: Item-item members of ``Auto``.
ITEM_COMPONENTS = ("rp3beta", "itemknn", "ease")

#: Per-user members of ``Auto``: their scores join the blend divided by each user's largest one.
USER_COMPONENTS = ("ials", "userknn")

#: Largest catalogue for which ``Auto`` uses EASE^R (its dense item x item inverse must fit in memory).
EASE_MAX_ITEMS = 20_000

#: Untuned member parameters and blend weights of ``Auto``: used as they are when tuning is off,
#: and as the first point of each member's search when it is on. RP3beta and ItemKNN use the
#: parameters Ferrari Dacrema et al. published for CiteULike-a; the weights and the EASE^R and
#: iALS parameters come from validation splits of the benchmark data sets (docs/decisions.md);
#: UserKNN starts at its registry defaults and has no untuned weight.
AUTO_DEFAULTS: dict[str, Any] = {
    "rp3beta": {"alpha": 0.711, "beta": 0.23, "top_k": 764},
    "itemknn": {"top_k": 594, "shrink": 999, "feature_weighting": "tfidf"},
    "ease": {"l2_norm": 523.0, "top_k": 1000},
    "ials": {"factors": 128, "regularization": 0.5, "alpha": 10.0, "iterations": 15, "random_state": 0},
    "userknn": {"top_k": 100, "shrink": 0.0, "feature_weighting": "none", "bm25_K1": 1.2, "bm25_B": 0.75},
    "weights": {"rp3beta": 1.0, "itemknn": 0.5, "ease": 0.5, "ials": 0.05},
}


def user_scores_in_blocks(model: Any, X: sp.csr_matrix, users: NDArray | None, cells: int = 16_000_000) -> NDArray:
    """``row_max_scaled(model._score(X, users))``, a block of rows at a time: a UserKNN block holds
    one similarity per training user, so the block's height follows the number of users."""
    step = max(1, cells // max(int(getattr(model, "n_users_", 1)), int(model.n_items_), 1))
    out = np.empty((X.shape[0], model.n_items_), dtype=np.float32)
    for a in range(0, X.shape[0], step):
        rows = None if users is None else users[a : a + step]
        out[a : a + step] = row_max_scaled(np.asarray(model._score(X[a : a + step], rows), dtype=np.float32))
    return out


def row_max_scaled(scores: NDArray) -> NDArray:
    """Divide each row of a dense score block by its largest absolute value (empty rows stay 0).

    How a per-user score (iALS, content) joins a blend: its best item scores 1 for every user.
    """
    scale = np.abs(scores).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    return scores / scale


def popularity_scale(item_counts: NDArray, exponent: float) -> NDArray[np.float32]:
    """Per-item factor ``max(count, 1) ** -exponent`` by which ``Auto`` multiplies its final scores.

    A positive exponent discounts items many users have (RP3beta's beta, applied to the whole blend);
    a negative one favours them. 0 gives ones.
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    return np.power(counts, -float(exponent)).astype(np.float32)


def unit_scale(W: sp.spmatrix) -> tuple[sp.csr_matrix, float]:
    """Scale an item-item matrix so its non-empty rows have mean L1 norm 1.

    Blending then weighs models, not their arbitrary units; the ranking of a single model
    is unchanged.

    Returns
    -------
    scaled : csr_matrix float32
    factor : float
        The divisor used.
    """
    W = sp.csr_matrix(W, dtype=np.float32)
    row_l1 = np.asarray(abs(W).sum(axis=1)).ravel()
    nonempty = row_l1 > 0
    factor = float(row_l1[nonempty].mean()) if nonempty.any() else 1.0
    return sp.csr_matrix(W / np.float32(factor), dtype=np.float32), factor


def content_similarity(
    n_items: int,
    item_texts: Sequence[str] | None,
    item_similarity: sp.spmatrix | None,
    content_params: dict[str, Any] | None,
) -> sp.csr_matrix | None:
    """The content item-item matrix of a blend: given, computed from texts, or None."""
    if item_similarity is not None:
        S = sp.csr_matrix(item_similarity, dtype=np.float32)
    elif item_texts is not None:
        S = ContentSimilarity(**(content_params or {})).fit(item_texts).similarity_
    else:
        return None
    if S.shape != (n_items, n_items):
        raise ValueError(f"content similarity has shape {S.shape}, expected ({n_items}, {n_items})")
    return S
