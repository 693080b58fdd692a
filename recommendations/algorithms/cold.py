"""Provides ``ColdStartHybrid``: personal scores for items with features but few or no interactions.

Stand-in of the site branch (h19-site) with the interface the model branch (h19-model) builds;
the merge takes that branch's version of this file.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd


class ColdStartHybrid:
    """A ridge map from item features to item factors of the interactions, and a warmth curve."""

    def __init__(self, factors: int = 32, regularization: float = 1.0, warm_count: float = 5.0, random_state: int = 0):
        self.factors, self.regularization = factors, regularization
        self.warm_count, self.random_state = warm_count, random_state

    def fit(self, interactions: sp.csr_matrix, item_features: sp.csr_matrix) -> ColdStartHybrid:
        """Learn item factors from ``interactions`` and the map from ``item_features`` to them."""
        x = sp.csr_matrix(interactions, dtype=np.float64)
        k = max(1, min(self.factors, min(x.shape) - 1))
        _, s, vt = randomized_svd(x, k, random_state=self.random_state)
        factors = (vt.T * np.sqrt(s)).astype(np.float64)  # items x k
        f = sp.csr_matrix(item_features, dtype=np.float64)
        # The dual form: an items x items system, whatever the number of features.
        gram = (f @ f.T).toarray() + self.regularization * np.eye(f.shape[0])
        self.weights_ = np.asarray(f.T @ np.linalg.solve(gram, factors), dtype=np.float32)  # features x k
        self.item_mapped_ = self.map_items(f)
        return self

    def map_items(self, item_features: sp.csr_matrix) -> np.ndarray:
        """Return the factors of items from their features (items never seen in ``fit`` too)."""
        return np.asarray(sp.csr_matrix(item_features, dtype=np.float32) @ self.weights_, dtype=np.float32)

    def score(self, history: sp.csr_matrix, mapped: np.ndarray) -> np.ndarray:
        """Return the scores of the ``mapped`` items for each history row (over the fitted items)."""
        users = np.asarray(sp.csr_matrix(history, dtype=np.float32) @ self.item_mapped_)
        return (users @ np.asarray(mapped, dtype=np.float32).T).astype(np.float32)

    def warmth(self, item_counts: np.ndarray) -> np.ndarray:
        """Return the weight of the warm model's score for items with these interaction counts."""
        counts = np.asarray(item_counts, dtype=np.float64)
        return (counts / (counts + self.warm_count)).astype(np.float32)

    def save(self, file: Any) -> None:
        np.savez(file, weights=self.weights_, item_mapped=self.item_mapped_,
                 params=np.asarray([self.factors, self.regularization, self.warm_count, self.random_state]))

    @classmethod
    def load(cls, file: Any) -> ColdStartHybrid:
        with np.load(file, allow_pickle=False) as data:
            factors, regularization, warm_count, random_state = data["params"].tolist()
            model = cls(int(factors), regularization, warm_count, int(random_state))
            model.weights_, model.item_mapped_ = data["weights"], data["item_mapped"]
        return model
