"""Provides TopPop, the most-popular-items baseline."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import RecommenderBase, topn_rows

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
