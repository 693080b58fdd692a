"""Provides sparse products tuned for scoring: a float32 CSR product and the heavy-row split."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["HEAVY_ROW_FRACTION", "HEAVY_DENSE_BYTES", "sparse_matmul", "split_heavy_rows", "sparse_dot_split"]

#: Rows of an item-item matrix storing at least this share of the catalogue are scored dense.
HEAVY_ROW_FRACTION = 1 / 32
#: Memory budget for those dense rows (bytes).
HEAVY_DENSE_BYTES = 256 * 2**20


def sparse_matmul(A: sp.csr_matrix, B: sp.csr_matrix) -> sp.csr_matrix:
    """``A @ B`` for float32 CSR matrices, as scipy computes it, without its counting pass.

    scipy's sparse product walks every multiply-add twice: once to count the output
    (``csr_matmat_maxnnz``), once to compute it (``csr_matmat``). The count is only used to
    size the output, and each row's ``min(n_cols, multiply-adds)`` bounds it from the row
    lengths alone, so this calls ``csr_matmat`` on buffers of that size: the same entries in
    the same order, with one pass fewer over the multiply-adds. Falls
    back to ``A @ B`` if scipy's private kernel is missing or refuses the arguments.

    Parameters
    ----------
    A : csr_matrix, shape (m, k)
    B : csr_matrix, shape (k, n)

    Returns
    -------
    csr_matrix float32, shape (m, n), indices in scipy's product order (not sorted); the
    buffers may be longer than ``nnz`` (unused tail, never touched, so never resident).
    """
    A = sp.csr_matrix(A, dtype=np.float32)
    B = sp.csr_matrix(B, dtype=np.float32)
    m, n = A.shape[0], B.shape[1]
    try:
        from scipy.sparse._sparsetools import csr_matmat
    except ImportError:  # pragma: no cover - older or newer scipy layout
        return sp.csr_matrix(A @ B, dtype=np.float32)
    per_entry = np.diff(B.indptr).astype(np.int64)[A.indices]
    cumulative = np.concatenate([[0], np.cumsum(per_entry)])
    bound = int(np.minimum(cumulative[A.indptr[1:]] - cumulative[A.indptr[:-1]], n).sum())
    if bound == 0:
        return sp.csr_matrix((m, n), dtype=np.float32)
    largest = max(bound, m, n, A.shape[1], A.nnz, B.nnz)
    index = np.int32 if largest < np.iinfo(np.int32).max else np.int64
    indptr = np.empty(m + 1, dtype=index)
    indices = np.empty(bound, dtype=index)
    data = np.empty(bound, dtype=np.float32)
    try:
        csr_matmat(
            m, n,
            A.indptr.astype(index, copy=False), A.indices.astype(index, copy=False), A.data,
            B.indptr.astype(index, copy=False), B.indices.astype(index, copy=False), B.data,
            indptr, indices, data,
        )
    except (TypeError, ValueError):  # pragma: no cover - signature changed: scipy's own product
        return sp.csr_matrix(A @ B, dtype=np.float32)
    nnz = int(indptr[-1])
    return sp.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(m, n))


def split_heavy_rows(
    M: sp.spmatrix, fraction: float | None = None, budget_bytes: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float32] | None, sp.csr_matrix]:
    """Split the right operand of ``X @ M`` into its long rows (dense) and the rest (sparse).

    scipy's sparse product costs one multiply-add per (stored entry of ``X``, stored entry of
    the matching row of ``M``) plus the building of a sparse result. When a few rows of ``M``
    are nearly full (popular items in a column-wise top-k similarity, very active users in
    ``X``), most of the work is those rows and the result is nearly dense; a sparse x dense
    product (one contiguous axpy per entry) does it several times faster. Rows storing at
    least ``fraction`` of the columns (default ``HEAVY_ROW_FRACTION``) go dense, longest
    first, within ``budget_bytes`` (default ``HEAVY_DENSE_BYTES``).

    Returns
    -------
    heavy : ndarray int64, sorted row indices kept dense
    dense : ndarray float32, shape (heavy.size, n_cols), or None
    light : csr_matrix float32, ``M`` with the heavy rows emptied
    """
    fraction = HEAVY_ROW_FRACTION if fraction is None else fraction
    budget_bytes = HEAVY_DENSE_BYTES if budget_bytes is None else budget_bytes
    S = sp.csr_matrix(M, dtype=np.float32)
    n_rows, n_cols = S.shape
    row_nnz = np.diff(S.indptr)
    heavy = np.flatnonzero(row_nnz >= max(1.0, fraction * n_cols)).astype(np.int64)
    budget = max(0, int(budget_bytes) // max(1, 4 * n_cols))
    if heavy.size > budget:
        heavy = np.sort(heavy[np.argsort(-row_nnz[heavy], kind="stable")[:budget]])
    if not heavy.size:
        return heavy, None, S
    dense = S[heavy].toarray()
    is_heavy = np.zeros(n_rows, dtype=bool)
    is_heavy[heavy] = True
    light = S.copy()
    light.data[np.repeat(is_heavy, row_nnz)] = 0.0
    light.eliminate_zeros()
    return heavy, dense, light


def sparse_dot_split(
    X: sp.csr_matrix, heavy: NDArray[np.int64], dense: NDArray[np.float32] | None, light: sp.csr_matrix
) -> NDArray[np.float32]:
    """Dense ``X @ M`` from ``split_heavy_rows(M)``, float32, shape (X.shape[0], M.shape[1])."""
    partial = sp.csr_matrix(X @ light)
    X_heavy = X[:, heavy] if heavy.size else None
    if X_heavy is None or not X_heavy.nnz:
        return np.asarray(partial.toarray(), dtype=np.float32)
    out = np.asarray(X_heavy @ dense, dtype=np.float32)
    # add the sparse part in place: a flat scatter beats toarray() + a dense add
    flat = np.repeat(np.arange(X.shape[0], dtype=np.int64) * out.shape[1], np.diff(partial.indptr))
    flat += partial.indices
    out.reshape(-1)[flat] += partial.data
    return out
