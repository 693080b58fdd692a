"""Provides IALS, implicit-feedback alternating least squares through the `implicit` package."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from .base import RecommenderBase, check_user_items, topn_rows

__all__ = ["IALS"]


class IALS(RecommenderBase):
    """Implicit ALS (Hu, Koren, Volinsky 2008) fitted by ``implicit.cpu.als``.

    Confidence is ``c_ui = alpha * x_ui`` for stored entries (implicit's convention: entries
    with ``c <= 1`` add no extra weight). Scores are ``user_factors @ item_factors.T``; users
    seen at fit time use their learned factors, other histories get factors recomputed by
    one exact least-squares step against the fixed item factors.

    Parameters
    ----------
    factors : int
    regularization : float
    alpha : float
        Confidence scale.
    iterations : int
    random_state : int or None

    Attributes
    ----------
    user_factors_ : ndarray float32, shape (n_users, factors)
    item_factors_ : ndarray float32, shape (n_items, factors)
    """

    algorithm_name = "ials"

    _state_attributes = RecommenderBase._state_attributes + ("user_factors_", "item_factors_")

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> IALS:
        """Fit the factors with implicit's CPU solver (BLAS single-threaded); return ``self``."""
        from implicit.cpu.als import AlternatingLeastSquares

        X = self._fit_common(user_items)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=self.random_state,
                calculate_training_loss=False,
            )
            model.fit(X, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        return self

    def fold_in(self, user_items_rows: sp.spmatrix) -> NDArray[np.float32]:
        """Factors of each history (rows over the fitted items) by one exact ALS user step."""
        self._check_fitted()
        return self._user_factors_for(check_user_items(user_items_rows, self.n_items_, "user_items_rows"))

    def _user_factors_for(self, X: sp.csr_matrix) -> NDArray[np.float32]:
        """One exact ALS user step per row: ``(Y'Y + Y'(C-I)Y + reg I)^-1 Y' C p``.

        Uses implicit's Cholesky kernel (the one behind ``recalculate_user``) when available,
        else a numpy loop with the same formula.
        """
        try:
            from implicit.cpu import _als
        except ImportError:  # pragma: no cover - implicit always ships it on CPU
            return self._user_factors_numpy(X)
        Y = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        out = np.zeros((X.shape[0], Y.shape[1]), dtype=np.float32)
        confidence = (float(self.alpha) * X.data).astype(np.float32)
        _als._least_squares(
            Y.T @ Y, X.indptr, X.indices, confidence, out, Y, float(self.regularization), num_threads=0
        )
        return out

    def _user_factors_numpy(self, X: sp.csr_matrix) -> NDArray[np.float32]:
        Y = self.item_factors_.astype(np.float64)
        gram = Y.T @ Y + float(self.regularization) * np.eye(Y.shape[1])
        out = np.zeros((X.shape[0], Y.shape[1]), dtype=np.float32)
        for row in range(X.shape[0]):
            start, end = X.indptr[row], X.indptr[row + 1]
            if start == end:
                continue
            items = X.indices[start:end]
            confidence = float(self.alpha) * X.data[start:end].astype(np.float64)
            Yi = Y[items]
            A = gram + (Yi.T * (confidence - 1.0)) @ Yi
            b = Yi.T @ confidence
            out[row] = np.linalg.solve(A, b)
        return out

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        if users is not None:
            factors = self.user_factors_[users]
        else:
            factors = self._user_factors_for(X)
        return np.asarray(factors @ self.item_factors_.T, dtype=np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Items with the highest cosine between item factors."""
        self._check_fitted()
        Y = self.item_factors_
        norms = np.linalg.norm(Y, axis=1)
        norms[norms == 0] = 1.0
        scores = (Y @ Y[int(item_index)]) / (norms * norms[int(item_index)])
        scores = scores.astype(np.float32)
        scores[int(item_index)] = -np.inf
        indices, values = topn_rows(scores[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def explain(self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3):
        """Approximation: history items ``j`` ranked by ``x_j * cos(y_j, y_item)``, positive only.

        Factor scores do not decompose over the history exactly; the cosine between item
        factors is the usual stand-in ("because you read X").
        """
        self._check_fitted()
        X = check_user_items(user_items_row, self.n_items_, "user_items_row")
        history = X.indices
        if history.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        Y = self.item_factors_
        target = Y[int(item_index)]
        norms = np.linalg.norm(Y[history], axis=1) * max(float(np.linalg.norm(target)), 1e-12)
        norms[norms == 0] = 1.0
        contributions = (X.data * (Y[history] @ target) / norms).astype(np.float32)
        order = np.argsort(-contributions, kind="stable")[: int(n)]
        order = order[contributions[order] > 0]
        return history[order].astype(np.int64), contributions[order]
