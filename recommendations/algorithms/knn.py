"""Provides ItemKNN and UserKNN (cosine with shrink, topK, TF-IDF/BM25 weighting)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import ItemSimilarityRecommender, RecommenderBase, check_user_items
from .blocks import n_threads_to_use
from .products import sparse_matmul
from .topk import blockwise_topk, topk_dense_rows, topn_rows
from .weighting import bm25_weight, tfidf_weight

__all__ = ["ItemKNN", "UserKNN", "FEATURE_WEIGHTINGS", "NEIGHBOURHOODS"]

FEATURE_WEIGHTINGS = ("none", "tfidf", "bm25")
NEIGHBOURHOODS = ("candidate", "history")


def _weight_user_items(X: sp.csr_matrix, feature_weighting: str, K1: float, B: float) -> sp.csr_matrix:
    """Weight like the TOIS code: the weighting runs on the transposed matrix (users are terms)."""
    if feature_weighting == "none":
        return X
    if feature_weighting == "tfidf":
        return sp.csr_matrix(tfidf_weight(X.T).T, dtype=np.float32)
    if feature_weighting == "bm25":
        return sp.csr_matrix(bm25_weight(X.T, K1=K1, B=B).T, dtype=np.float32)
    raise ValueError(f"feature_weighting must be one of {FEATURE_WEIGHTINGS}, got {feature_weighting!r}")


def _cosine_block(
    left: sp.csr_matrix,
    right_t: sp.csr_matrix,
    left_norms: NDArray[np.float32],
    right_norms: NDArray[np.float32],
    shrink: float,
    start: int,
    end: int,
    zero_diagonal: bool,
) -> sp.csr_matrix:
    """Rows ``start:end`` of the shrunk cosine ``x_i.x_j / (|x_i||x_j| + shrink + 1e-6)``, sparse."""
    block = sparse_matmul(left[start:end], right_t)
    counts = np.diff(block.indptr)
    cols = block.indices
    # Same float32 operations as ``left_norms[rows] * right_norms[cols] + c``, fewer passes.
    denominator = np.repeat(left_norms[start:end], counts)
    denominator *= right_norms[cols]
    denominator += np.float32(shrink + 1e-6)
    block.data /= denominator
    if zero_diagonal:
        block.data[cols == np.repeat(np.arange(start, end, dtype=cols.dtype), counts)] = 0.0
    return block


def _history_topk(
    left: sp.csr_matrix,
    right_t: sp.csr_matrix,
    left_norms: NDArray[np.float32],
    right_norms: NDArray[np.float32],
    shrink: float,
    k: int,
    n_threads: int,
    self_columns: NDArray[np.int64] | None = None,
) -> sp.csr_matrix:
    """Row-wise top-``k`` of the shrunk cosine of ``left``'s rows against ``right_t``'s columns.

    The exact path of ``neighbourhood="history"``: :func:`~.topk.blockwise_topk` over blocks of
    rows of the sparse product. ``self_columns[r]`` is the column of row ``r``'s own item
    (default: ``r``), never kept.

    Returns
    -------
    csr_matrix float32, shape (left.shape[0], right_t.shape[1]), at most ``k`` entries per
    row, no zeros, sorted indices.
    """
    n_rows, n_cols = left.shape[0], right_t.shape[1]
    if self_columns is None:
        self_columns = np.arange(n_rows, dtype=np.int64)

    def block_fn(start: int, end: int) -> sp.csr_matrix:
        return _cosine_block(left, right_t, left_norms, right_norms, shrink, start, end, False)

    return blockwise_topk(n_rows, n_cols, block_fn, k, n_threads, exclude_columns=self_columns)


#: ``sparse_dot_topn`` pays off when the item-item product is near-dense: each row holds many
#: more entries than the kept top-n, and scipy materialises them all; on sparse products its heap
#: costs more than scipy's product (measurements in docs/decisions.md).
DENSE_PRODUCT_RATIO = 0.5


def _product_is_dense(user_items: sp.csr_matrix) -> bool:
    """True when ``item_users @ user_items`` needs at least DENSE_PRODUCT_RATIO x n_items
    multiply-adds per item row (sum over users of their item count squared, per item)."""
    per_user = np.diff(user_items.indptr).astype(np.float64)
    n_items = max(1, user_items.shape[1])
    return float((per_user**2).sum()) / n_items >= DENSE_PRODUCT_RATIO * n_items


def _history_topk_fast(
    item_users: sp.csr_matrix,
    norms: NDArray[np.float32],
    shrink: float,
    k: int,
    n_threads: int,
) -> tuple[sp.csr_matrix, NDArray[np.int64]] | None:
    """Row-wise top-``k`` of the shrunk cosine with ``sparse_dot_topn``, or None if not installed.

    ``item_users`` must hold no negative value (so every cosine is >= 0).

    ``sparse_dot_topn`` multiplies in compiled, multi-threaded code and keeps only the best
    ``n`` products of each row, so the near-dense ``n_items x n_items`` product is never
    materialised. It ranks by the plain cosine ``c_ij`` (rows normalised first) and cannot
    apply the shrink, so it returns a superset of ``k + 1 + margin`` candidates per row, which
    are rescored with the shrunk formula ``s_ij = c_ij |x_i||x_j| / (|x_i||x_j| + shrink + 1e-6)``.
    Because ``s_ij <= c_ij``, a row is certified exact when its ``k``-th best rescored value is
    strictly above the smallest cosine of the superset (times 1 + 1e-5 for rounding): every item
    left out has a cosine, hence a shrunk value, at most that. Rows that are not certified
    (ties at the boundary, large shrink) are returned in the second value, to be computed the
    exact, slower way. Kept values can differ from the exact path's in the last float32 bit.
    """
    try:
        from sparse_dot_topn import sp_matmul_topn
    except ImportError:  # optional speed-up: the scipy path gives the same model
        return None
    n_items = item_users.shape[0]
    inverse = np.zeros(n_items, dtype=np.float32)
    inverse[norms > 0] = 1.0 / norms[norms > 0]
    left = sp.csr_matrix(sp.diags(inverse) @ item_users, dtype=np.float32)
    right = sp.csr_matrix(left.T, dtype=np.float32)
    top_n = int(min(n_items, k + 1 + max(16, k // 4)))
    cos = sp_matmul_topn(left, right, top_n=top_n, n_threads=n_threads_to_use(n_threads))
    cos = sp.csr_matrix(cos, dtype=np.float32)
    counts = np.diff(cos.indptr)
    rows = np.repeat(np.arange(n_items), counts)
    cols = cos.indices
    products = norms[rows].astype(np.float64) * norms[cols]
    values = cos.data.astype(np.float64) * products / (products + shrink + 1e-6)
    values[cols == rows] = 0.0
    # Smallest cosine of each full superset (a row with fewer entries holds every nonzero).
    floor = np.full(n_items, -np.inf)
    full = counts >= top_n
    if full.any():
        minima = np.minimum.reduceat(cos.data.astype(np.float64), cos.indptr[:-1][counts > 0])
        floor_nonempty = np.full(n_items, -np.inf)
        floor_nonempty[counts > 0] = minima
        floor[full] = floor_nonempty[full]
    kept, kept_counts, kth = _padded_top_k(cos, rows, cols, values, k)
    # A row with fewer than k positive values kept from a full superset may be missing items.
    certified = ~full | ((kept_counts >= k) & (kth > np.maximum(floor, 0.0) * (1 + 1e-5)))
    return kept, np.flatnonzero(~certified)


def _padded_top_k(
    cos: sp.csr_matrix, rows: NDArray[np.int64], cols: NDArray, values: NDArray[np.float64], k: int
) -> tuple[sp.csr_matrix, NDArray[np.int64], NDArray[np.float64]]:
    """The ``k`` best positive rescored values of each row of ``cos`` (rows hold at most top_n
    entries, so they are selected on a dense (n_items, top_n) padding), their count per row and
    each row's smallest kept value (inf when none)."""
    n_items = cos.shape[0]
    counts = np.diff(cos.indptr)
    width = max(1, int(counts.max()) if counts.size else 1)
    slot = np.arange(cos.nnz) - np.repeat(cos.indptr[:-1], counts)
    padded_values = np.zeros((n_items, width), dtype=np.float32)
    padded_cols = np.zeros((n_items, width), dtype=np.int64)
    padded_values[rows, slot] = values.astype(np.float32)
    padded_cols[rows, slot] = cols
    if k < width:
        best, padded_values = topk_dense_rows(padded_values, k, ties="partition")
        padded_cols = np.take_along_axis(padded_cols, best, axis=1)
    positive = padded_values > 0
    kept_counts = positive.sum(axis=1)
    kth = np.where(positive, padded_values, np.inf).min(axis=1).astype(np.float64)
    kept_rows = np.broadcast_to(np.arange(n_items)[:, None], positive.shape)[positive]
    kept = sp.csr_matrix(
        (padded_values[positive], (kept_rows, padded_cols[positive])), shape=cos.shape, dtype=np.float32
    )
    return kept, kept_counts, kth


class ItemKNN(ItemSimilarityRecommender):
    """Item-based k-nearest-neighbours with cosine similarity, shrink and feature weighting.

    Reproduces ``ItemKNNCFRecommender`` + ``Compute_Similarity`` of Ferrari Dacrema et al.:
    ``s_ij = x_i . x_j / (|x_i| |x_j| + shrink + 1e-6)``, diagonal 0, and for every candidate
    item ``i`` only its ``top_k`` most similar items ``j`` are kept
    (``similarity_[j, i] = s_ij``). TF-IDF and BM25 weight the transposed matrix, so users are
    the "terms": active users count less.

    ``neighbourhood="history"`` keeps instead the ``top_k`` most similar items of every
    *history* item ``j`` (row-wise, ``similarity_[j, :]`` has at most ``top_k`` entries), which
    is the model of ``implicit``'s ``CosineRecommender`` (same ``top_k``, no shrink, no
    weighting: the same similarity matrix up to ties and float rounding). Scoring is then much
    cheaper on power-law data, because the rows of popular items no longer hold entries for
    most of the catalogue, but it is a different model: on the CiteULike-a CMN protocol it
    scores lower than the default (see ``docs/decisions.md``), so the default stays
    ``"candidate"``, the model of the published reproduction. Among items tied at the
    ``top_k``-th value, the history fit keeps the lowest item indices (its scipy path,
    :func:`_history_topk`; rows certified by the ``sparse_dot_topn`` path on near-dense
    products keep an arbitrary subset of the tied items); the candidate fit keeps the subset
    ``np.argpartition`` picks (``ties="partition"``), as the published reproduction did.

    Parameters
    ----------
    top_k : int
        Neighbours kept per item.
    shrink : float
        Added to the cosine denominator; damps similarities built on few co-occurrences.
    feature_weighting : {"none", "tfidf", "bm25"}
    bm25_K1, bm25_B : float
        BM25 parameters (used when ``feature_weighting="bm25"``).
    neighbourhood : {"candidate", "history"}
        Whose ``top_k`` neighbours are kept: every candidate item's (column-wise, the default,
        as in Ferrari Dacrema et al.) or every history item's (row-wise, as in ``implicit``).
    n_threads : int
        Threads for the blockwise similarity (0: all cores).
    random_state : int or None
        Unused (deterministic); kept for a uniform estimator signature.

    Attributes
    ----------
    similarity_ : csr_matrix float32, shape (n_items, n_items)
    item_popularity_ : ndarray float32, shape (n_items,)
    """

    algorithm_name = "itemknn"

    def __init__(
        self,
        top_k: int = 100,
        shrink: float = 0.0,
        feature_weighting: str = "none",
        bm25_K1: float = 1.2,
        bm25_B: float = 0.75,
        neighbourhood: str = "candidate",
        n_threads: int = 0,
        random_state: int | None = None,
    ) -> None:
        self.top_k = top_k
        self.shrink = shrink
        self.feature_weighting = feature_weighting
        self.bm25_K1 = bm25_K1
        self.bm25_B = bm25_B
        self.neighbourhood = neighbourhood
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> ItemKNN:
        """Learn the item-item similarity from ``user_items`` and return ``self``.

        Parameters
        ----------
        user_items : csr_matrix, shape (n_users, n_items), float32
        """
        if int(self.top_k) < 1 or float(self.shrink) < 0:
            raise ValueError(f"top_k must be >= 1 and shrink >= 0, got {self.top_k}, {self.shrink}")
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, got {self.neighbourhood!r}")
        X = self._fit_common(user_items)
        weighted = _weight_user_items(X, self.feature_weighting, self.bm25_K1, self.bm25_B)
        item_users = sp.csr_matrix(weighted.T)
        norms = np.sqrt(np.asarray(item_users.multiply(item_users).sum(axis=1), dtype=np.float64).ravel())
        norms = norms.astype(np.float32)

        def block_fn(start: int, end: int) -> NDArray[np.float32]:
            return _cosine_block(item_users, weighted, norms, norms, self.shrink, start, end, True)

        fast = None
        # The certificate of the fast path needs cosines >= 0 (TF-IDF can weight users negatively).
        if (
            self.neighbourhood == "history"
            and item_users.nnz
            and item_users.data.min() >= 0
            and _product_is_dense(weighted)
        ):
            fast = _history_topk_fast(item_users, norms, float(self.shrink), int(self.top_k), self.n_threads)
        if fast is not None:
            neighbours, redo = fast
            if redo.size:
                exact = _history_topk(
                    item_users[redo], weighted, norms[redo], norms, float(self.shrink), int(self.top_k),
                    self.n_threads, self_columns=redo,
                )
                neighbours = _replace_rows(neighbours, redo, exact)
        elif self.neighbourhood == "history":
            neighbours = _history_topk(
                item_users, weighted, norms, norms, float(self.shrink), int(self.top_k), self.n_threads
            )
        else:
            neighbours = blockwise_topk(
                self.n_items_, self.n_items_, block_fn, int(self.top_k), self.n_threads, ties="partition"
            )
        # The shrunk cosine is symmetric, so row i of the blocks holds s_ij for every j: kept
        # as is, row i is history item i's neighbourhood; transposed, column i is candidate i's.
        if self.neighbourhood == "history":
            self.similarity_ = neighbours
        else:
            self.similarity_ = sp.csr_matrix(neighbours.T, dtype=np.float32)
        self.similarity_.sort_indices()
        return self


def _replace_rows(matrix: sp.csr_matrix, rows: NDArray[np.int64], replacement: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` with ``matrix[rows[i]]`` replaced by ``replacement[i]``."""
    keep = np.ones(matrix.shape[0], dtype=bool)
    keep[rows] = False
    mask = sp.diags(keep.astype(np.float32))
    scatter = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, np.arange(rows.size))), shape=(matrix.shape[0], rows.size)
    )
    out = sp.csr_matrix(mask @ matrix + scatter @ replacement, dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


class UserKNN(RecommenderBase):
    """User-based k-nearest-neighbours with cosine similarity, shrink and feature weighting.

    The score of item ``i`` for a history ``x`` is ``sum_v s(x, v) * w_vi`` over the ``top_k``
    training users ``v`` most similar to ``x`` (the user itself excluded when its row index is
    known, and any training user with an identical history otherwise), where ``w`` is the
    weighted training matrix, as in ``UserKNNCFRecommender``.
    Unlike that code, the neighbourhood is the ``top_k`` of the target user (row-wise), so
    unseen users can be scored too.

    Parameters
    ----------
    top_k : int
    shrink : float
    feature_weighting : {"none", "tfidf", "bm25"}
    bm25_K1, bm25_B : float
    random_state : int or None
        Unused (deterministic).

    Attributes
    ----------
    user_items_weighted_ : csr_matrix float32, shape (n_users, n_items)
    user_norms_ : ndarray float32, shape (n_users,)
    item_length_norm_ : ndarray float32, shape (n_items,)  (BM25 only; ones otherwise)
    """

    algorithm_name = "userknn"

    _state_attributes = RecommenderBase._state_attributes + (
        "user_items_weighted_",
        "user_norms_",
        "item_length_norm_",
    )

    def __init__(
        self,
        top_k: int = 100,
        shrink: float = 0.0,
        feature_weighting: str = "none",
        bm25_K1: float = 1.2,
        bm25_B: float = 0.75,
        random_state: int | None = None,
    ) -> None:
        self.top_k = top_k
        self.shrink = shrink
        self.feature_weighting = feature_weighting
        self.bm25_K1 = bm25_K1
        self.bm25_B = bm25_B
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> UserKNN:
        """Store the weighted training matrix and its norms; return ``self``."""
        if int(self.top_k) < 1 or float(self.shrink) < 0:
            raise ValueError(f"top_k must be >= 1 and shrink >= 0, got {self.top_k}, {self.shrink}")
        X = self._fit_common(user_items)
        self.user_items_weighted_ = _weight_user_items(X, self.feature_weighting, self.bm25_K1, self.bm25_B)
        self.user_norms_ = self._row_norms(self.user_items_weighted_)
        item_sums = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
        if self.feature_weighting == "bm25" and item_sums.mean() > 0:
            self.item_length_norm_ = ((1 - self.bm25_B) + self.bm25_B * item_sums / item_sums.mean()).astype(
                np.float32
            )
        else:
            self.item_length_norm_ = np.ones(self.n_items_, dtype=np.float32)
        return self

    @staticmethod
    def _row_norms(M: sp.csr_matrix) -> NDArray[np.float32]:
        return np.sqrt(np.asarray(M.multiply(M).sum(axis=1), dtype=np.float64).ravel()).astype(np.float32)

    def _weight_rows(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """Weight new rows exactly as the training rows were weighted."""
        if self.feature_weighting == "none":
            return X
        counts = np.diff(X.indptr).astype(np.float64)
        idf = np.log(self.n_items_ / (1.0 + counts))
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        W = X.copy().astype(np.float64)
        if self.feature_weighting == "tfidf":
            W.data = np.sqrt(W.data) * idf[rows]
        else:
            K1 = self.bm25_K1
            norm = self.item_length_norm_[W.indices]
            W.data = W.data * (K1 + 1.0) / (K1 * norm + W.data) * idf[rows]
        return sp.csr_matrix(W, dtype=np.float32)

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        if users is not None:
            rows = self.user_items_weighted_[users]
        else:
            rows = self._weight_rows(X)
        norms = self._row_norms(rows)
        sims = (rows @ self.user_items_weighted_.T).toarray().astype(np.float32)
        if users is not None:
            sims[np.arange(sims.shape[0]), users] = 0.0
        else:
            # A training user with the very same history (e.g. the user itself) has nothing
            # unseen to offer; dropping it keeps its neighbour slot for a useful user.
            squared = norms.astype(np.float64) ** 2
            identical = np.isclose(sims, squared[:, None], rtol=1e-5) & np.isclose(
                sims, (self.user_norms_.astype(np.float64) ** 2)[None, :], rtol=1e-5
            )
            sims[identical & (squared[:, None] > 0)] = 0.0
        sims /= np.multiply.outer(norms, self.user_norms_) + np.float32(self.shrink + 1e-6)
        k = min(int(self.top_k), self.n_users_)
        if k < self.n_users_:
            best, values = topk_dense_rows(sims, k, ties="partition")
            sims = np.zeros_like(sims)
            np.put_along_axis(sims, best, values, axis=1)
        return np.asarray((sp.csr_matrix(sims) @ self.user_items_weighted_).toarray(), dtype=np.float32)

    def _item_cosine(self, items: NDArray[np.int64], target: int) -> NDArray[np.float32]:
        item_users = sp.csr_matrix(self.user_items_weighted_.T)
        target_col = item_users[target]
        dots = np.asarray((item_users[items] @ target_col.T).toarray()).ravel()
        norms = self._row_norms(item_users[items])
        target_norm = self._row_norms(target_col)[0]
        return (dots / (norms * target_norm + self.shrink + 1e-6)).astype(np.float32)

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Items most co-consumed with ``item_index`` (cosine over the weighted matrix)."""
        self._check_fitted()
        sims = self._item_cosine(np.arange(self.n_items_), int(item_index))
        sims[int(item_index)] = -np.inf
        sims[sims == 0] = -np.inf
        indices, values = topn_rows(sims[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def explain(
        self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Approximation: history items ranked by ``x_j * cosine(j, item)`` (user-based scores
        do not decompose over the history)."""
        self._check_fitted()
        X = check_user_items(user_items_row, self.n_items_, "user_items_row")
        history = X.indices
        if history.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        contributions = (X.data * self._item_cosine(history, int(item_index))).astype(np.float32)
        order = np.argsort(-contributions, kind="stable")[: int(n)]
        order = order[contributions[order] > 0]
        return history[order].astype(np.int64), contributions[order]
