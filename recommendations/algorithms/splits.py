"""Provides the splits of offline evaluation: random and time-based leave-one-out, sampled negatives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["leave_one_out_split", "leave_last_out_split", "last_timestamp_matrix", "sample_negatives"]


def _as_csr(user_items: sp.spmatrix) -> sp.csr_matrix:
    X = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X


def _split_by_choice(X: sp.csr_matrix, chosen_pos: NDArray, has_test: NDArray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Move the stored entry at CSR position chosen_pos[u] of each user with has_test[u] to test."""
    test_mask = np.zeros(X.nnz, dtype=bool)
    test_mask[chosen_pos[has_test]] = True
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    coo_rows, cols, vals = rows, X.indices, X.data
    train = sp.csr_matrix((vals[~test_mask], (coo_rows[~test_mask], cols[~test_mask])), shape=X.shape, dtype=np.float32)
    test = sp.csr_matrix((vals[test_mask], (coo_rows[test_mask], cols[test_mask])), shape=X.shape, dtype=np.float32)
    return train, test


def leave_one_out_split(
    user_items: sp.spmatrix, random_state: int | np.random.Generator | None = 0, min_train: int = 1
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out one random item per user.

    Parameters
    ----------
    user_items : sparse matrix of shape (n_users, n_items)
        Interactions; duplicate (user, item) entries are summed first, so an item is never in
        both train and test.
    random_state : int or Generator
        Seed for the choice.
    min_train : int
        A user is split only if at least ``min_train`` items stay in train; others keep all their
        items in train and have no test item.

    Returns
    -------
    train, test : csr_matrix float32 of shape (n_users, n_items)
        ``test`` has at most one stored entry per row.
    """
    X = _as_csr(user_items)
    rng = np.random.default_rng(random_state)
    counts = np.diff(X.indptr)
    has_test = counts >= min_train + 1
    offsets = np.floor(rng.random(X.shape[0]) * np.maximum(counts, 1)).astype(np.int64)
    chosen = X.indptr[:-1] + offsets
    return _split_by_choice(X, chosen, has_test)


def last_timestamp_matrix(
    users: NDArray, items: NDArray, timestamps: NDArray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Build a CSR matrix holding, for each (user, item) pair, its LATEST timestamp.

    Parameters
    ----------
    users, items : ndarray of int, shape (n,)
        Row and column of every event (duplicates allowed).
    timestamps : ndarray of float, shape (n,)
        Event times (any monotone unit, e.g. unix seconds).
    shape : (n_users, n_items)

    Returns
    -------
    csr_matrix float64 of shape ``shape`` with the same sparsity pattern as the interactions.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    ts = np.asarray(timestamps, dtype=np.float64)
    key = users * shape[1] + items
    order = np.lexsort((ts, key))
    key_sorted = key[order]
    last = np.r_[key_sorted[1:] != key_sorted[:-1], True]
    sel = order[last]
    M = sp.csr_matrix((ts[sel], (users[sel], items[sel])), shape=shape, dtype=np.float64)
    M.sort_indices()
    return M


def leave_last_out_split(
    user_items: sp.spmatrix,
    timestamps: sp.spmatrix,
    random_state: int | np.random.Generator | None = 0,
    min_train: int = 1,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out each user's most recent item (time-based leave-last-out).

    Parameters
    ----------
    user_items : sparse matrix of shape (n_users, n_items)
        Interactions.
    timestamps : sparse matrix of shape (n_users, n_items)
        Same sparsity pattern as ``user_items`` with the time of each pair (see
        :func:`last_timestamp_matrix`).
    random_state : int or Generator
        Breaks ties between items sharing the latest timestamp.
    min_train : int
        Users with fewer than ``min_train + 1`` items are not split.

    Returns
    -------
    train, test : csr_matrix float32
    """
    X = _as_csr(user_items)
    T = sp.csr_matrix(timestamps, dtype=np.float64, copy=True)
    T.sum_duplicates()
    T.sort_indices()
    if T.shape != X.shape or T.nnz != X.nnz or not np.array_equal(T.indices, X.indices):
        raise ValueError("timestamps must have the same sparsity pattern as user_items")
    rng = np.random.default_rng(random_state)
    counts = np.diff(X.indptr)
    has_test = counts >= min_train + 1
    rows = np.repeat(np.arange(X.shape[0]), counts)
    jitter = rng.random(X.nnz)
    # sort by row, then time, then a random tie-break: the last entry of each row is the latest
    order = np.lexsort((jitter, T.data, rows))
    last_in_row = np.zeros(X.shape[0], dtype=np.int64)
    nonempty = counts > 0
    last_in_row[nonempty] = order[X.indptr[1:][nonempty] - 1]
    return _split_by_choice(X, last_in_row, has_test)


def sample_negatives(
    train: sp.spmatrix,
    test: sp.spmatrix,
    n_negatives: int = 100,
    random_state: int | np.random.Generator | None = 0,
) -> sp.csr_matrix:
    """Draw, for each user with a test item, ``n_negatives`` items it has in neither train nor test.

    Parameters
    ----------
    train, test : sparse matrix of shape (n_users, n_items)
    n_negatives : int
        Fewer are drawn when the catalogue does not allow that many.
    random_state : int or Generator

    Returns
    -------
    csr_matrix float32 (n_users, n_items) with a 1 at every sampled negative.
    """
    train = sp.csr_matrix(train)
    test = sp.csr_matrix(test)
    n_users, n_items = train.shape
    rng = np.random.default_rng(random_state)
    seen = (train + test).tocsr()
    seen.sort_indices()
    rows, cols = [], []
    for u in np.flatnonzero(np.diff(test.indptr)):
        own = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        available = n_items - own.size
        want = min(n_negatives, available)
        if want <= 0:
            continue
        picked: set[int] = set()
        own_set = set(own.tolist())
        if want > available // 2:
            pool = np.setdiff1d(np.arange(n_items), own, assume_unique=True)
            chosen = rng.choice(pool, size=want, replace=False)
        else:
            while len(picked) < want:
                for c in rng.integers(0, n_items, size=2 * (want - len(picked))).tolist():
                    if c not in own_set and c not in picked:
                        picked.add(c)
                        if len(picked) == want:
                            break
            chosen = np.fromiter(picked, dtype=np.int64)
        rows.append(np.full(chosen.size, u, dtype=np.int64))
        cols.append(np.asarray(chosen, dtype=np.int64))
    if not rows:
        return sp.csr_matrix((n_users, n_items), dtype=np.float32)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n_users, n_items))
