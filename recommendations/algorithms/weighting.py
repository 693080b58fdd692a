"""Provides pure feature-weighting functions for sparse interaction matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["bm25_weight", "tfidf_weight", "normalize"]


def tfidf_weight(X: sp.spmatrix) -> sp.csr_matrix:
    """Weight a sparse matrix by TF-IDF, documents on rows and terms on columns.

    Follows ``Base/IR_feature_weighting.TF_IDF`` of Ferrari Dacrema et al.:
    ``w = sqrt(x) * log(n_rows / (1 + df(col)))``.

    Parameters
    ----------
    X : sparse matrix, shape (n_rows, n_cols)
        Non-negative counts or confidences.

    Returns
    -------
    csr_matrix, shape (n_rows, n_cols), float32
    """
    X = sp.coo_matrix(X, dtype=np.float64)
    n_rows = float(X.shape[0])
    idf = np.log(n_rows / (1.0 + np.bincount(X.col, minlength=X.shape[1])))
    data = np.sqrt(X.data) * idf[X.col]
    return sp.csr_matrix((data.astype(np.float32), (X.row, X.col)), shape=X.shape)


def bm25_weight(X: sp.spmatrix, K1: float = 1.2, B: float = 0.75) -> sp.csr_matrix:
    """Weight a sparse matrix by Okapi BM25, documents on rows and terms on columns.

    Same formula as ``implicit.nearest_neighbours.bm25_weight`` and
    ``Base/IR_feature_weighting.okapi_BM_25``.

    Parameters
    ----------
    X : sparse matrix, shape (n_rows, n_cols)
    K1 : float
        Term-frequency saturation, > 0.
    B : float
        Length normalisation, in (0, 1].

    Returns
    -------
    csr_matrix, shape (n_rows, n_cols), float32
    """
    if K1 <= 0 or not 0 < B <= 1:
        raise ValueError(f"bm25_weight needs K1 > 0 and 0 < B <= 1, got K1={K1}, B={B}")
    X = sp.coo_matrix(X, dtype=np.float64)
    n_rows = float(X.shape[0])
    idf = np.log(n_rows / (1.0 + np.bincount(X.col, minlength=X.shape[1])))
    row_sums = np.ravel(X.sum(axis=1))
    average_length = row_sums.mean() if row_sums.size else 0.0
    if average_length <= 0:
        average_length = 1.0
    length_norm = (1.0 - B) + B * row_sums / average_length
    data = X.data * (K1 + 1.0) / (K1 * length_norm[X.row] + X.data) * idf[X.col]
    return sp.csr_matrix((data.astype(np.float32), (X.row, X.col)), shape=X.shape)


def normalize(X: sp.spmatrix) -> sp.csr_matrix:
    """L2-normalise the rows of a sparse matrix (all-zero rows stay zero).

    Parameters
    ----------
    X : sparse matrix, shape (n_rows, n_cols)

    Returns
    -------
    csr_matrix, shape (n_rows, n_cols), float32
    """
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    norms[norms == 0] = 1.0
    X.data /= np.repeat(norms, np.diff(X.indptr)).astype(np.float32)
    return X
