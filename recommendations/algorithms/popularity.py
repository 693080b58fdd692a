"""Provides TopPop, the most-popular-items baseline."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import RecommenderBase
from .topk import topk_dense_rows, topn_rows

__all__ = ["TopPop"]


class TopPop(RecommenderBase):
    """Recommend the items with the most interactions (the same list for everyone).

    Parameters
    ----------
    random_state : int or None
        Unused (deterministic).

    Attributes
    ----------
    item_popularity_ : ndarray float32, shape (n_items,)
        Number of users with a stored interaction per item.
    """

    algorithm_name = "toppop"

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> TopPop:
        """Count interactions per item; return ``self``."""
        self._fit_common(user_items)
        return self

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        return np.broadcast_to(self.item_popularity_, (X.shape[0], self.n_items_)).astype(np.float32)

    def _topn_block(
        self, X: sp.csr_matrix, users: NDArray[np.int64] | None, n: int, exclude_seen: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-``n`` of a block of users without a users x items block: everyone ranks the same
        list, so each user's answer is among the ``n + (longest history)`` most popular items."""
        m = X.shape[0]
        seen_max = int(np.diff(X.indptr).max(initial=0)) if exclude_seen else 0
        head, head_scores = topk_dense_rows(self.item_popularity_[None, :].astype(np.float32), n + seen_max)
        head, head_scores = head[0], head_scores[0]
        indices = np.full((m, n), -1, dtype=np.int64)
        values = np.full((m, n), -np.inf, dtype=np.float32)
        if exclude_seen and X.nnz:
            unseen = X[:, head].toarray() == 0
        else:
            unseen = np.ones((m, head.size), dtype=bool)
        rank = np.cumsum(unseen, axis=1) - 1
        rows, cols = np.nonzero(unseen & (rank < n))
        indices[rows, rank[rows, cols]] = head[cols]
        values[rows, rank[rows, cols]] = head_scores[cols]
        return indices, values

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The most popular other items (popularity knows no similarity)."""
        self._check_fitted()
        scores = self.item_popularity_.astype(np.float32, copy=True)
        scores[int(item_index)] = -np.inf
        indices, values = topn_rows(scores[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def explain(self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3):
        """Popularity does not depend on the history: always empty."""
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
