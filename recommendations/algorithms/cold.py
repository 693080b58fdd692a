"""Provides ColdStartHybrid: iALS for warm items, a ridge map from content features into its factor space for cold ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, cg
from sklearn.linear_model import Ridge

from .base import RecommenderBase, check_user_items
from .factorization import IALS

__all__ = ["ColdStartHybrid", "blend_scores", "row_scale", "COLD_SCALE_RANK", "NO_SIGNAL_SHARE"]

COLD_SCALE_RANK = 5  # a reader's best cold score is set to their 5th best warm score
NO_SIGNAL_SHARE = 1e-3  # where a reader has no warm score in an item model, a thousandth of it


class ColdStartHybrid(RecommenderBase):
    """Warm items scored by iALS; cold and lukewarm items by their content mapped into iALS's item space.

    ``fit`` learns iALS item factors ``V`` from the interactions, then a ridge map ``W`` from
    content features to those factors over the warm items (each item weighted by how well its
    factor is known), so any item with features gets ``v_hat = f W``. A user with factors ``u``
    (folded in from the history by one exact ALS step) scores a warm item ``u . v`` and a cold
    one ``a * u . v_hat``: both estimate the same quantity, and ``a`` (least squares over the
    warm items) removes the ridge's shrinkage, so the two are on one scale and can be blended by
    :meth:`warmth`, ``n / (n + warmth_shrink)`` for an item with ``n`` interactions.

    Parameters
    ----------
    factors, regularization, alpha, iterations : iALS parameters (see :class:`IALS`)
    l2 : float
        Ridge penalty of the map from features to factors.
    warmth_shrink : float
        Interactions at which an item's warm and cold scores weigh the same.
    random_state : int or None

    Attributes
    ----------
    ials_ : IALS
    coef_ : ndarray float32, shape (n_features, factors)
    calibration_ : float
        ``a`` above.
    item_counts_ : ndarray float32, shape (n_items,)
    item_mapped_ : ndarray float32, shape (n_items, factors)
        ``map_items`` of the fitted items' features (zeros when fitted without features).
    """

    algorithm_name = "cold_hybrid"

    _state_attributes = RecommenderBase._state_attributes + (
        "user_factors_", "item_factors_", "coef_", "calibration_", "item_mapped_",
    )

    def __init__(
        self,
        factors: int = 128,
        regularization: float = 0.5,
        alpha: float = 10.0,
        iterations: int = 15,
        l2: float = 1.0,
        target: str = "factors",
        cg_iterations: int = 100,
        warmth_shrink: float = 0.5,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.l2 = l2
        self.target = target
        self.cg_iterations = cg_iterations
        self.warmth_shrink = warmth_shrink
        self.random_state = random_state

    def _ials(self) -> IALS:
        return IALS(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                    iterations=self.iterations, random_state=self.random_state)

    def fit(self, interactions: sp.csr_matrix, item_features: sp.spmatrix | None = None) -> ColdStartHybrid:
        """Fit iALS on ``interactions`` and the map from ``item_features`` (one row per item); return ``self``.

        Parameters
        ----------
        interactions : csr_matrix, shape (n_users, n_items)
            Cold items have empty columns.
        item_features : sparse matrix, shape (n_items, n_features), optional
            Without it the model is iALS (cold items score 0).
        """
        X = self._fit_common(interactions)
        ials = self._ials().fit(X)
        self.user_factors_, self.item_factors_ = ials.user_factors_, ials.item_factors_
        counts = self.item_popularity_
        if item_features is None:
            self.coef_ = np.zeros((1, self.item_factors_.shape[1]), dtype=np.float32)
            self.calibration_ = 0.0
            self.item_mapped_ = np.zeros_like(self.item_factors_)
            return self
        F = sp.csr_matrix(item_features, dtype=np.float32)
        if F.shape[0] != self.n_items_:
            raise ValueError(f"item_features has {F.shape[0]} rows but interactions have {self.n_items_} items")
        warm = np.flatnonzero(counts > 0)
        if self.target == "interactions":
            self.coef_ = self._reconstruction_map(F[warm], sp.csr_matrix(X[:, warm]))
        elif self.target == "factors":
            self.coef_ = self._ridge(F[warm], self.item_factors_[warm], self.warmth(counts[warm]))
        else:
            raise ValueError(f"target must be 'factors' or 'interactions', got {self.target!r}")
        self.calibration_ = 1.0
        mapped = self.map_items(F)
        self.calibration_ = self._calibrate(X, mapped, warm)
        self.item_mapped_ = self.map_items(F)
        return self

    def _ridge(self, F: sp.csr_matrix, V: NDArray, weights: NDArray) -> NDArray[np.float32]:
        """``W = argmin sum_j c_j |v_j - f_j W|^2 + l2 |W|^2`` (scikit-learn's sparse solver)."""
        if F.shape[0] == 0 or F.nnz == 0:
            return np.zeros((F.shape[1], V.shape[1]), dtype=np.float32)
        ridge = Ridge(alpha=float(self.l2), fit_intercept=False, solver="sparse_cg" if sp.issparse(F) else "auto")
        ridge.fit(F, V, sample_weight=weights)
        return np.ascontiguousarray(ridge.coef_.T, dtype=np.float32)

    def _reconstruction_map(self, F: sp.csr_matrix, X: sp.csr_matrix) -> NDArray[np.float32]:
        """``W = argmin |X - U (F W)^T|^2 + l2 |W|^2``: the map that best rebuilds the warm items' readers.

        The normal equations ``F'F W U'U + l2 W = F'X'U`` are solved by conjugate gradients on
        ``W`` (features x factors), so the features stay sparse and no feature x feature matrix is formed.
        """
        U = self.user_factors_.astype(np.float64)
        H = U.T @ U
        n_features, d = F.shape[1], U.shape[1]
        if F.nnz == 0:
            return np.zeros((n_features, d), dtype=np.float32)
        F64 = sp.csr_matrix(F, dtype=np.float64)
        rhs = np.asarray(F64.T @ (X.T @ U)).ravel()
        l2 = float(self.l2)

        def matvec(w: NDArray) -> NDArray:
            W = w.reshape(n_features, d)
            return (F64.T @ ((F64 @ W) @ H) + l2 * W).ravel()

        operator = LinearOperator((n_features * d, n_features * d), matvec=matvec, dtype=np.float64)
        w, _ = cg(operator, rhs, maxiter=int(self.cg_iterations))
        return w.reshape(n_features, d).astype(np.float32)

    def _calibrate(self, X: sp.csr_matrix, mapped: NDArray, warm: NDArray, sample: int = 2000) -> float:
        """Least-squares ``a`` in ``u . v ~ a * u . v_hat`` over a sample of users and the warm items."""
        rng = np.random.default_rng(0)
        users = np.flatnonzero(np.diff(X.indptr) > 0)
        if users.size == 0 or warm.size == 0:
            return 1.0
        users = rng.choice(users, size=min(sample, users.size), replace=False)
        U = self.user_factors_[users]
        warm_scores = U @ self.item_factors_[warm].T
        cold_scores = U @ mapped[warm].T
        denominator = float((cold_scores * cold_scores).sum())
        return float((warm_scores * cold_scores).sum() / denominator) if denominator > 0 else 1.0

    # ------------------------------------------------------------------ the cold-item interface
    def map_items(self, item_features: sp.spmatrix) -> NDArray[np.float32]:
        """Items' content features (m x n_features, the fitted encoder's space) -> factors (m x factors).

        Works for items never seen in ``fit``; the calibration is folded in, so
        ``user_factors @ mapped.T`` is on the scale of the warm scores.
        """
        self._check_fitted()
        F = sp.csr_matrix(item_features, dtype=np.float32)
        if F.shape[1] != self.coef_.shape[0]:
            if self.calibration_ == 0.0:
                return np.zeros((F.shape[0], self.coef_.shape[1]), dtype=np.float32)
            raise ValueError(f"item_features has {F.shape[1]} columns, the model was fitted on {self.coef_.shape[0]}")
        return np.asarray(F @ self.coef_, dtype=np.float32) * np.float32(self.calibration_)

    def user_factors(self, history: sp.spmatrix) -> NDArray[np.float32]:
        """Factors of each history (n x n_items_fit) by one exact ALS step against the item factors."""
        self._check_fitted()
        X = check_user_items(history, self.n_items_, "history")
        return self._ials_view().fold_in(X)

    def score(self, history: sp.spmatrix, mapped: NDArray | None = None, users: Any = None) -> NDArray[np.float32]:
        """Personal scores of the ``mapped`` items (n x m) for each history (n x n_items_fit).

        Without ``mapped`` this is ``RecommenderBase.score``: blended scores of the fitted items.
        """
        if mapped is None:
            return super().score(history, users)
        return np.asarray(self.user_factors(history) @ np.asarray(mapped, dtype=np.float32).T, dtype=np.float32)

    def warmth(self, item_counts: NDArray) -> NDArray[np.float32]:
        """Weight in [0, 1] of the warm score per item: ``n / (n + warmth_shrink)``."""
        counts = np.maximum(np.asarray(item_counts, dtype=np.float32), 0)
        shrink = max(float(self.warmth_shrink), 1e-12)
        return (counts / (counts + shrink)).astype(np.float32)

    # ------------------------------------------------------------------ RecommenderBase
    def item_vectors(self) -> NDArray[np.float32]:
        """The fitted items' blended vectors: ``warmth * v + (1 - warmth) * v_hat`` (``v`` without features)."""
        self._check_fitted()
        if self.calibration_ == 0.0:
            return self.item_factors_
        warmth = self.warmth(self.item_popularity_)[:, None]
        return (warmth * self.item_factors_ + (1.0 - warmth) * self.item_mapped_).astype(np.float32)

    def _ials_view(self, blended: bool = False) -> IALS:
        """An IALS over this model's factors (item vectors blended or not) for fold-in, neighbours, reasons."""
        model = self._ials()
        model.n_users_, model.n_items_ = self.n_users_, self.n_items_
        model.item_popularity_ = self.item_popularity_
        model.user_factors_ = self.user_factors_
        model.item_factors_ = self.item_vectors() if blended else self.item_factors_
        return model

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        U = self.user_factors_[users] if users is not None else self._ials_view().fold_in(X)
        return np.asarray(U @ self.item_vectors().T, dtype=np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Items with the highest cosine between blended item vectors (cold items included)."""
        return self._ials_view(blended=True).similar_items(item_index, n)

    def explain(self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3):
        """History items closest to the item in the blended space ("New: like X, which you read")."""
        return self._ials_view(blended=True).explain(user_items_row, item_index, n)


# ---------------------------------------------------------------------- the blend of full builds
def row_scale(scores: NDArray, rank: int = 1) -> NDArray[np.float32]:
    """Each row's ``rank``-th largest finite score, or 1 where it is not positive."""
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    if finite.shape[1] < rank:
        return np.ones(finite.shape[0], dtype=np.float32)
    top = -np.partition(-finite, rank - 1, axis=1)[:, rank - 1]
    return np.where(top > 0, top, 1.0).astype(np.float32)


def blend_scores(warm: NDArray, cold: NDArray, warmth: NDArray, groups: list[NDArray] | None = None,
                 rank: int = COLD_SCALE_RANK, seen: sp.spmatrix | None = None) -> NDArray[np.float32]:
    """Blend a warm model's scores with cold scores by item warmth, as full builds score picks.

    Within each group of columns (an item model; all columns without ``groups``) the cold scores
    are put on the row's own warm score distribution by rank, over the items it has not seen: the
    row's best cold score gets its ``rank``-th best warm score (content alone never outranks a
    reader's surest picks), its ``q``-th best about its ``(q + rank - 1)``-th best warm score, so a
    peaked warm model (P3alpha) is not flooded by content scores (docs/decisions.md, "The cold blend
    on the warm model's own scale"). Where the row has no positive warm score in a group, its cold
    scores there are scaled linearly so that the best is ``NO_SIGNAL_SHARE`` of the row's
    ``rank``-th best warm score over all columns. An item then gets
    ``warmth * warm + (1 - warmth) * cold``. ``cold`` is rescaled in place.

    Parameters
    ----------
    warm, cold : ndarray float32, shape (n, m)
    warmth : ndarray float32, shape (m,)
        Weight of the warm score per column, in [0, 1].
    groups : list of ndarray int, optional
    rank : int
    seen : sparse matrix, shape (n, m') with m' <= m, optional
        The rows' histories: their items are left out of the scales (their scores are kept).

    Returns
    -------
    ndarray float32, shape (n, m)
    """
    r, c = sp.csr_matrix(seen).nonzero() if seen is not None else (np.zeros(0, np.intp), np.zeros(0, np.intp))
    kept_warm, kept_cold = warm[r, c], cold[r, c]
    warm[r, c], cold[r, c] = -np.inf, -np.inf
    groups = groups if groups is not None else [np.arange(cold.shape[1])]
    overall = row_scale(warm, rank)
    maps = []
    for columns in groups:
        # One sort per block gives the scales and the knots (numpy's sort is far faster here than partitions).
        warm_sorted, cold_sorted = -np.sort(-warm[:, columns], axis=1), -np.sort(-cold[:, columns], axis=1)
        reference = warm_sorted[:, rank - 1] if len(columns) >= rank else np.zeros(len(warm), np.float32)
        reference = np.where(reference > 0, reference, 0.0)
        best = cold_sorted[:, 0] if len(columns) else np.ones(len(cold), np.float32)
        # A reader with no warm signal in an item model (a books-only reader among articles) gets
        # its cold scores ordered but far below their picks elsewhere, not on the top of the list.
        linear = np.where(reference > 0, reference, NO_SIGNAL_SHARE * overall) / np.where(best > 0, best, 1.0)
        signal = np.flatnonzero(reference > 0)  # rows with warm scores here get the rank map; the others stay linear
        maps.append((reference, linear, signal, rank_knots(warm_sorted[signal], cold_sorted[signal], rank)))
    warm[r, c], cold[r, c] = kept_warm, kept_cold
    for columns, (reference, linear, signal, knots) in zip(groups, maps):
        block = cold[:, columns]
        mapped = block * linear[:, None]
        rows = slice(None) if signal.size == len(reference) else signal
        # The linear term, a thousandth (0 at the best), keeps content order where warm scores are flat (kNN tails).
        tie_break = NO_SIGNAL_SHARE * (mapped[rows] - reference[signal, None])
        mapped[rows] = apply_knots(block[rows], *knots) + tie_break
        cold[:, columns] = mapped
    w = np.asarray(warmth, dtype=np.float32)
    return (w * warm + (1.0 - w) * cold).astype(np.float32, copy=False)


def rank_knots(warm_sorted: NDArray, cold_sorted: NDArray, rank: int, n_knots: int = 48) -> tuple[list, list]:
    """Per row, the knots ``(cold values ascending, warm values)`` that map cold rank ``q`` to warm rank ``q+rank-1``.

    ``warm_sorted`` and ``cold_sorted`` are the rows sorted best first (seen items ``-inf``, last). Knots
    sit at geometrically spaced ranks (dense at the top, where lists are made) among the unseen items;
    tied cold values get the mean of their warm values.
    """
    n, m = cold_sorted.shape
    if m == 0:
        return [np.zeros(1)] * n, [np.zeros(1)] * n
    ranks = np.unique(np.round(np.geomspace(1, m, n_knots)).astype(np.int64)) - 1
    top_cold, top_warm = cold_sorted[:, ranks], warm_sorted[:, np.minimum(ranks + rank - 1, m - 1)]
    unseen = np.isfinite(cold_sorted).sum(axis=1)
    last_warm = warm_sorted[np.arange(n), np.maximum(unseen - 1, 0)]
    xs, ys = [], []
    for i in range(n):
        keep = ranks < max(int(unseen[i]), 1)
        x, y = top_cold[i, keep][::-1], top_warm[i, keep][::-1]
        y = np.where(np.isfinite(y), y, last_warm[i] if np.isfinite(last_warm[i]) else 0.0)
        x, inverse = np.unique(x, return_inverse=True)
        xs.append(x)
        ys.append(np.bincount(inverse, weights=y) / np.bincount(inverse))
    return xs, ys


def apply_knots(values: NDArray, xs: list, ys: list, bins: int = 1024) -> NDArray[np.float32]:
    """Each row's values through its piecewise linear map (knots ``xs[i]`` ascending -> ``ys[i]``), clamped at the ends.

    The map is tabulated at ``bins + 1`` even steps of each row's knot range and read with one
    gather for the whole block (``np.interp`` row by row was most of the blend's time).
    """
    n = values.shape[0]
    if n == 0:
        return values.astype(np.float32)
    lo = np.array([x[0] for x in xs], dtype=np.float64)
    width = np.array([x[-1] for x in xs], dtype=np.float64) - lo
    width = np.where(width > 0, width, 1.0)
    steps = np.linspace(0.0, 1.0, bins + 1)
    table = np.stack([np.interp(lo[i] + width[i] * steps, xs[i], ys[i]) for i in range(n)]).astype(np.float32)
    position = values - lo[:, None].astype(np.float32)  # in place from here: the block may be large
    position /= width[:, None].astype(np.float32)
    np.clip(position, 0.0, 1.0, out=position)
    position *= bins
    index = position.astype(np.int64)
    np.minimum(index, bins - 1, out=index)
    fraction = position - index
    index += np.arange(0, n * (bins + 1), bins + 1)[:, None]  # flat positions: plain indexing gathers fastest
    flat = table.ravel()
    low = flat[index]
    index += 1
    high = flat[index]
    high -= low
    fraction *= high
    fraction += low
    return fraction.astype(np.float32)
