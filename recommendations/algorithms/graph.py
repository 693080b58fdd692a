"""Provides the random-walk item-item models P3alpha and RP3beta."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize as sk_normalize

from .base import ItemSimilarityRecommender
from .topk import blockwise_topk, topk_sparse_rows

__all__ = ["P3alpha", "RP3beta"]


def _random_walk_similarity(
    X: sp.csr_matrix,
    alpha: float,
    beta: float,
    top_k: int,
    normalize_similarity: bool,
    n_threads: int,
) -> sp.csr_matrix:
    """Three-step random walk item -> user -> item, as in ``RP3betaRecommender.fit``.

    ``W = (P_iu^a @ P_ui^a) * pop^-beta`` with the diagonal zeroed, the ``top_k`` largest per
    row kept, rows L1-normalised (if ``normalize_similarity``), then the ``top_k`` largest per
    column kept (``similarityMatrixTopK`` of the reference code).
    """
    n_items = X.shape[1]
    p_ui = sk_normalize(X, norm="l1", axis=1).astype(np.float32)
    x_bool = sp.csr_matrix(X.T, dtype=np.float32, copy=True)
    x_bool.data = np.ones_like(x_bool.data)
    popularity = np.asarray(x_bool.sum(axis=1)).ravel()
    degree = np.zeros(n_items, dtype=np.float32)
    nonzero = popularity != 0
    degree[nonzero] = np.power(popularity[nonzero], -beta)
    p_iu = sk_normalize(x_bool, norm="l1", axis=1).astype(np.float32)
    if alpha != 1.0:
        p_ui = p_ui.power(alpha)
        p_iu = p_iu.power(alpha)
    p_ui = sp.csr_matrix(p_ui, dtype=np.float32)
    p_iu = sp.csr_matrix(p_iu, dtype=np.float32)

    def block_fn(start: int, end: int) -> sp.csr_matrix:
        block = sp.csr_matrix(p_iu[start:end] @ p_ui, dtype=np.float32)
        rows = np.repeat(np.arange(start, end), np.diff(block.indptr))
        if beta != 0.0:
            block.data *= degree[block.indices]
        block.data[block.indices == rows] = 0.0
        return block

    W = blockwise_topk(n_items, n_items, block_fn, int(top_k), n_threads, ties="partition")
    if normalize_similarity:
        W = sp.csr_matrix(sk_normalize(W, norm="l1", axis=1), dtype=np.float32)
    # similarityMatrixTopK: keep the top_k of every column as well.
    W = sp.csr_matrix(topk_sparse_rows(sp.csr_matrix(W.T), int(top_k)).T, dtype=np.float32)
    W.sort_indices()
    return W


class RP3beta(ItemSimilarityRecommender):
    """RP3beta (Paudel et al. 2017), as implemented by Ferrari Dacrema et al.

    Parameters
    ----------
    alpha : float
        Exponent applied to the transition probabilities.
    beta : float
        Popularity penalty: scores of candidate ``i`` are multiplied by ``pop_i ** -beta``.
    top_k : int
        Neighbours kept per item (per row, then per column).
    normalize_similarity : bool
        L1-normalise the rows of the similarity (the reference default).
    n_threads : int
        Threads for the blockwise product (0: all cores).
    random_state : int or None
        Unused (deterministic).

    Attributes
    ----------
    similarity_ : csr_matrix float32, shape (n_items, n_items)
    """

    algorithm_name = "rp3beta"

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.6,
        top_k: int = 100,
        normalize_similarity: bool = True,
        n_threads: int = 0,
        random_state: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.top_k = top_k
        self.normalize_similarity = normalize_similarity
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> RP3beta:
        """Learn the random-walk similarity from ``user_items``; return ``self``."""
        if int(self.top_k) < 1 or float(self.alpha) <= 0:
            raise ValueError(f"top_k must be >= 1 and alpha > 0, got {self.top_k}, {self.alpha}")
        X = self._fit_common(user_items)
        self.similarity_ = _random_walk_similarity(
            X, float(self.alpha), float(self.beta), int(self.top_k), bool(self.normalize_similarity), self.n_threads
        )
        return self


class P3alpha(ItemSimilarityRecommender):
    """P3alpha (Cooper et al. 2014): RP3beta without the popularity penalty.

    Parameters
    ----------
    alpha : float
    top_k : int
    normalize_similarity : bool
        Reference default False.
    n_threads : int
    random_state : int or None
        Unused (deterministic).
    """

    algorithm_name = "p3alpha"

    def __init__(
        self,
        alpha: float = 1.0,
        top_k: int = 100,
        normalize_similarity: bool = False,
        n_threads: int = 0,
        random_state: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.top_k = top_k
        self.normalize_similarity = normalize_similarity
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> P3alpha:
        """Learn the random-walk similarity from ``user_items``; return ``self``."""
        if int(self.top_k) < 1 or float(self.alpha) <= 0:
            raise ValueError(f"top_k must be >= 1 and alpha > 0, got {self.top_k}, {self.alpha}")
        X = self._fit_common(user_items)
        self.similarity_ = _random_walk_similarity(
            X, float(self.alpha), 0.0, int(self.top_k), bool(self.normalize_similarity), self.n_threads
        )
        return self
