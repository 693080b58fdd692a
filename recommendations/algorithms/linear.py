"""Provides EASE^R, the closed-form linear item-item autoencoder (Steck 2019)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import ItemSimilarityRecommender, RecommenderBase, topk_sparse_rows

__all__ = ["EASE", "DUAL_SHARE", "topk_columns"]

#: ``fit`` solves EASE^R in its dual (user-side) form when there are fewer users than this share
#: of the items: it inverts an n_users x n_users matrix instead of an n_items x n_items one.
DUAL_SHARE = 0.75


class EASE(ItemSimilarityRecommender):
    """EASE^R: ``B = I - P / diag(P)`` with ``P = (X^T X + l2_norm * I)^-1`` and ``diag(B) = 0``.

    As in ``EASE_R_Recommender`` of Ferrari Dacrema et al. The inverse is dense, so it needs
    about ``3 * n_items**2 * 4`` bytes and cubic time; above ``max_items`` items ``fit`` refuses.

    Parameters
    ----------
    l2_norm : float
        The L2 regularisation lambda.
    max_items : int
        Largest catalogue accepted; ``fit`` raises ValueError above it.
    top_k : int or None
        If set, keep only the ``top_k`` largest weights per candidate item (column), which
        makes ``similarity_`` sparse. ``None`` keeps the dense matrix (reference behaviour).
    random_state : int or None
        Unused (deterministic).

    Attributes
    ----------
    coef_ : ndarray float32, shape (n_items, n_items) or None
        Dense ``B`` when ``top_k`` is None.
    similarity_ : csr_matrix float32, shape (n_items, n_items)
        Sparse ``B`` (built lazily from ``coef_`` when ``top_k`` is None; that costs memory).
    """

    algorithm_name = "ease"

    _state_attributes = ("n_users_", "n_items_", "item_popularity_", "coef_", "_similarity")

    def __init__(
        self,
        l2_norm: float = 500.0,
        max_items: int = 20_000,
        top_k: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.l2_norm = l2_norm
        self.max_items = max_items
        self.top_k = top_k
        self.random_state = random_state

    def fit(self, user_items: sp.csr_matrix) -> EASE:
        """Solve EASE^R in closed form; return ``self``.

        Raises
        ------
        ValueError
            If the catalogue is larger than ``max_items``.
        """
        X = sp.csr_matrix(user_items) if sp.issparse(user_items) else user_items
        n_items = X.shape[1]
        if n_items > int(self.max_items):
            gigabytes = 3 * n_items**2 * 4 / 1e9
            raise ValueError(
                f"EASE refuses {n_items:,} items: above max_items={int(self.max_items):,}. Its dense "
                f"{n_items:,} x {n_items:,} inverse would need about {gigabytes:.1f} GB and cubic time. "
                "Use 'rp3beta' or 'itemknn', or raise max_items if the machine can afford it."
            )
        if float(self.l2_norm) <= 0:
            raise ValueError(f"l2_norm must be > 0, got {self.l2_norm}")
        X = self._fit_common(user_items)
        if X.shape[0] < DUAL_SHARE * n_items:
            B = _ease_dual(X, float(self.l2_norm))
        else:
            gram = (X.T @ X).toarray().astype(np.float32)
            gram[np.diag_indices(n_items)] += np.float32(self.l2_norm)
            B = _spd_inverse(gram)
            del gram
            B /= -np.diag(B).copy()[None, :]
        B[np.diag_indices(n_items)] = 0.0
        if self.top_k is None:
            self.coef_ = B
            self._similarity = None
        else:
            self.coef_ = None
            self._similarity = topk_columns(B, int(self.top_k))
        return self

    @property
    def similarity_(self) -> sp.csr_matrix:
        if getattr(self, "_similarity", None) is None:
            if getattr(self, "coef_", None) is None:
                raise AttributeError("similarity_")
            self._similarity = sp.csr_matrix(self.coef_)
        return self._similarity

    @similarity_.setter
    def similarity_(self, value: sp.spmatrix) -> None:
        # e.g. the app pruning to its top-k per row: the sparse matrix becomes the model.
        self._similarity = sp.csr_matrix(value, dtype=np.float32)
        self.coef_ = None

    def _get_state(self) -> dict:
        state = {"n_users_": self.n_users_, "n_items_": self.n_items_, "item_popularity_": self.item_popularity_}
        if self.coef_ is not None:
            state["coef_"] = self.coef_
        else:
            state["_similarity"] = self._similarity
        return state

    def _set_state(self, state: dict) -> None:
        super()._set_state(state)
        if "coef_" not in state:
            self.coef_ = None
        if "_similarity" not in state:
            self._similarity = None

    def _topn_block(self, X, users, n, exclude_seen):
        if self.coef_ is not None:  # dense B: the dense path, never a huge CSR copy
            return RecommenderBase._topn_block(self, X, users, n, exclude_seen)
        return super()._topn_block(X, users, n, exclude_seen)

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        if self.coef_ is not None:
            return np.asarray(X @ self.coef_, dtype=np.float32)
        return super()._score(X, users)

    def explain(self, user_items_row, item_index: int, n: int = 3):
        if self.coef_ is None:
            return super().explain(user_items_row, item_index, n)
        from .base import check_user_items

        X = check_user_items(user_items_row, self.n_items_, "user_items_row")
        history = X.indices
        contributions = (X.data * self.coef_[history, int(item_index)]).astype(np.float32)
        order = np.argsort(-contributions, kind="stable")[: int(n)]
        order = order[contributions[order] > 0]
        return history[order].astype(np.int64), contributions[order]

    def similar_items(self, item_index: int, n: int = 10):
        if self.coef_ is None:
            return super().similar_items(item_index, n)
        from .base import topn_rows

        row = self.coef_[int(item_index)].astype(np.float32, copy=True)
        row[int(item_index)] = -np.inf
        row[row <= 0] = -np.inf
        indices, values = topn_rows(row[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]


def _spd_inverse(A: NDArray[np.float32]) -> NDArray[np.float32]:
    """Inverse of a symmetric positive-definite matrix via Cholesky (potrf + potri), in place.

    Works on ``A.T`` (a Fortran-ordered view of the same memory) so LAPACK needs no copy.
    """
    F = A.T
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (F,))
    c, info = potrf(F, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Gram matrix is not positive definite (potrf info={info})")
    inv, info = potri(c, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed (potri info={info})")
    # potri fills the lower triangle only; mirror it block by block (no n x n index arrays).
    n = inv.shape[0]
    step = 1024
    for start in range(0, n, step):
        end = min(n, start + step)
        inv[start:end, end:] = inv[end:, start:end].T
        block = inv[start:end, start:end]
        lower = np.tril(block, -1)
        inv[start:end, start:end] = np.tril(block) + lower.T
    return inv.T


def _ease_dual(X: sp.csr_matrix, l2_norm: float, block: int = 2048) -> NDArray[np.float32]:
    """EASE^R's ``B`` (diagonal not yet zeroed) from the user side, by the Woodbury identity.

    ``(X^T X + l I)^-1 = (I - H) / l`` with ``H = X^T (X X^T + l I)^-1 X``, so for ``i != j``
    ``B_ij = -P_ij / P_jj = H_ij / (1 - H_jj)``: one n_users x n_users inverse and two sparse
    products instead of an n_items x n_items inverse. The inverse is taken in float64 (``1 - H_jj``
    is small for an item most users have); the products, which move the most memory, in float32.

    Parameters
    ----------
    X : csr_matrix float32, shape (n_users, n_items)
    l2_norm : float

    Returns
    -------
    B : ndarray float32, shape (n_items, n_items)
    """
    X64 = sp.csr_matrix(X, dtype=np.float64)
    K = (X64 @ X64.T).toarray()
    K[np.diag_indices(K.shape[0])] += l2_norm
    K_inv = _spd_inverse(K)
    del K
    XT = sp.csr_matrix(X.T, dtype=np.float32)
    W = np.ascontiguousarray((XT @ K_inv.astype(np.float32)).T)  # (X X^T + l I)^-1 X, (n_users, n_items)
    del K_inv
    n_items = X.shape[1]
    B = np.empty((n_items, n_items), dtype=np.float32)
    for start in range(0, n_items, block):
        end = min(n_items, start + block)
        H = XT @ np.ascontiguousarray(W[:, start:end])
        scale = 1.0 - H[np.arange(start, end), np.arange(end - start)].astype(np.float64)
        B[:, start:end] = H / scale[None, :].astype(np.float32)
    return B


def topk_columns(B: NDArray[np.float32], k: int, block: int = 512) -> sp.csr_matrix:
    """The ``k`` largest nonzero weights of each column of a dense ``B``, as CSR (float32); ties to the lower row.

    Column block by column block: converting all of ``B`` to a sparse matrix at once would hold
    every one of its n_items**2 entries with their indices, several times ``B``'s own size.
    """
    n = B.shape[1]
    parts = [_topk_nonzero_rows(np.ascontiguousarray(B[:, start : start + block].T, dtype=np.float32), k)
             for start in range(0, n, block)]
    return sp.csr_matrix(sp.vstack(parts, format="csr").T, dtype=np.float32)


def _topk_nonzero_rows(rows: NDArray[np.float32], k: int) -> sp.csr_matrix:
    """The ``k`` largest nonzero values of each row of a dense block, ties to the lower column, as CSR.

    What ``topk_sparse_rows`` keeps of the block made sparse, found on the dense block (one partition
    per block; turning the block sparse first cost more than the selection). A block holding a NaN or
    an infinity takes ``topk_sparse_rows`` itself. Not ``topk_block``: its dense path ranks zeros with
    the rest, so it can drop negative weights a sparse selection keeps, and it sorts what it keeps.
    """
    if not np.isfinite(rows).all():
        return topk_sparse_rows(sp.csr_matrix(rows), k)
    n = rows.shape[1]
    k = min(int(k), n)
    if k <= 0:
        return sp.csr_matrix(rows.shape, dtype=np.float32)
    work = np.where(rows == 0, np.float32(-np.inf), rows)  # a zero is not a weight: never kept
    kth = np.partition(work, n - k, axis=1)[:, n - k][:, None]
    keep = work >= kth
    over = np.flatnonzero(keep.sum(axis=1) > k)
    if over.size:  # values tied with the k-th: the lowest columns, up to k in all
        above, tied = work[over] > kth[over], work[over] == kth[over]
        keep[over] = above | (tied & (np.cumsum(tied, axis=1) <= (k - above.sum(axis=1))[:, None]))
    keep &= work > -np.inf
    r, c = np.nonzero(keep)
    return sp.csr_matrix((rows[r, c], (r, c)), shape=rows.shape, dtype=np.float32)
