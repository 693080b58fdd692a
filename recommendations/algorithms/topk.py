"""Provides top-k selection: the best k values of each row of dense or sparse scores.

Every selection in ``recommendations.algorithms`` goes through this module. Among values tied
with the k-th largest, the lowest columns are kept, except where a model reproduces published
code that kept ``np.argpartition``'s pick (``ties="partition"``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .blocks import block_rows_for, map_blocks

__all__ = [
    "topk_dense_rows",
    "topk_keep_mask",
    "topk_sparse_rows",
    "topk_block",
    "blockwise_topk",
    "topn_rows",
    "topn_sparse_rows",
]


def topk_dense_rows(
    block: NDArray[np.floating], k: int, ties: str = "lowest"
) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Select the ``k`` largest values of each row of a dense block, best first.

    Parameters
    ----------
    block : ndarray, shape (m, n)
    k : int
        Clipped to ``n``.
    ties : {"lowest", "partition"}
        Which of the values tied with the k-th largest are kept: the lowest columns, or the
        ones ``np.argpartition`` picks (the rule of the published reproductions, kept where
        they are reproduced).

    Returns
    -------
    indices : ndarray int64, shape (m, min(k, n))
    values : ndarray, shape (m, min(k, n)), same dtype as ``block``
    """
    m, n = block.shape
    k = min(int(k), n)
    if k <= 0 or m == 0:
        return np.zeros((m, 0), dtype=np.int64), np.zeros((m, 0), dtype=block.dtype)
    if k * 8 > n and k < n and ties != "partition":  # short rows: a stable sort keeps the lowest tied columns
        return _topk_dense_rows_sorted(block, k)
    if ties == "partition" or k == n or k * 8 > n:
        if k < n:
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n), (m, n))
        values = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1).astype(np.int64), np.take_along_axis(values, order, axis=1)
    if n >= _CHUNK_MIN_RATIO * k:
        return _topk_dense_rows_chunked(block, k)
    return _topk_dense_rows_partition(block, k)


#: Rows at least this many times longer than ``k`` use the chunk-maximum selection.
_CHUNK_MIN_RATIO = 32


def _topk_dense_rows_partition(block: NDArray[np.floating], k: int) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Small-``k`` selection: each row's k-th value by ``np.partition``, then entries above it
    plus just enough ties (lowest column first)."""
    m = block.shape[0]
    threshold = -np.partition(-block, k - 1, axis=1)[:, k - 1]
    above_rows, above_cols = np.nonzero(block > threshold[:, None])
    need = k - np.bincount(above_rows, minlength=m)
    tie_rows_needed = np.flatnonzero(need > 0)
    tie_local, tie_cols = np.nonzero(block[tie_rows_needed] == threshold[tie_rows_needed, None])
    tie_rows = tie_rows_needed[tie_local]
    rank = np.arange(tie_rows.size) - np.searchsorted(tie_rows, tie_rows)
    keep = rank < need[tie_rows]
    rows = np.concatenate([above_rows, tie_rows[keep]])
    cols = np.concatenate([above_cols, tie_cols[keep]])
    values = block[rows, cols]
    order = np.lexsort((cols, -values, rows))
    indices = cols[order].reshape(m, k).astype(np.int64)
    return indices, values[order].reshape(m, k)


def _topk_dense_rows_sorted(block: NDArray[np.floating], k: int) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Same output as the partition path, by a stable sort of each row: for the few rows full
    of ties (mostly zero or -inf scores), where ``np.partition`` is slow."""
    part = np.argsort(-block, axis=1, kind="stable")[:, :k]
    return part.astype(np.int64), np.take_along_axis(block, part, axis=1)


def _topk_dense_rows_chunked(block: NDArray[np.floating], k: int) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Small-``k`` selection without a per-element partition; same output as the partition path.

    Each row is cut into ``q >= 16 k`` chunks of ``w`` columns. The k-th largest chunk maximum
    is a lower bound of the row's k-th largest value (the maxima are k distinct entries of the
    row), so only chunks whose maximum reaches it can hold the answer: usually about ``k``
    chunks per row. Their entries at or above the bound are sorted by (value desc, column
    asc). One vectorised pass over the block (the chunk maxima) replaces ``np.partition``,
    which is much slower on long rows. Rows with too many candidates (ties, -inf) are
    sorted whole (stable, so ties still go lowest column first).
    """
    m, n = block.shape
    width = max(1, n // (16 * k))
    q = n // width
    main = block[:, : q * width].reshape(m, q, width)
    maxima = main.max(axis=2)
    tail = block[:, q * width :]
    if tail.shape[1]:
        maxima = np.concatenate([maxima, tail.max(axis=1, keepdims=True)], axis=1)
    bound = -np.partition(-maxima, k - 1, axis=1)[:, k - 1]
    selected = maxima >= bound[:, None]
    # Rows with many chunks at the bound (ties: zeros, -inf) would gather most of their
    # entries: they are sorted below instead, without being gathered.
    many = selected.sum(axis=1) > 8 * k + 64  # they would fail the ``small`` test below anyway
    if many.any():
        selected[many] = False
        bound = np.where(many, np.inf, bound)
    chunk_rows, chunk_ids = np.nonzero(selected[:, :q])
    chunk_values = main[chunk_rows, chunk_ids]  # (n_chunks, width)
    hit_chunk, hit_offset = np.nonzero(chunk_values >= bound[chunk_rows, None])
    rows = chunk_rows[hit_chunk]
    cols = chunk_ids[hit_chunk] * width + hit_offset
    found = chunk_values[hit_chunk, hit_offset]
    if tail.shape[1]:
        tail_rows, tail_cols = np.nonzero(tail >= bound[:, None])
        rows = np.concatenate([rows, tail_rows])
        cols = np.concatenate([cols, tail_cols + q * width])
        found = np.concatenate([found, tail[tail_rows, tail_cols]])
    counts = np.bincount(rows, minlength=m)
    indices = np.empty((m, k), dtype=np.int64)
    values = np.empty((m, k), dtype=block.dtype)
    small = (counts <= 8 * k + 64) & ~many
    if not small.all():
        bad = np.flatnonzero(~small)
        indices[bad], values[bad] = _topk_dense_rows_sorted(block[bad], k)
        keep = small[rows]
        rows, cols, found = rows[keep], cols[keep], found[keep]
    if rows.size:
        order = np.lexsort((cols, -found, rows))
        starts = np.concatenate([[0], np.cumsum(counts[small])[:-1]])
        take = order[(starts[:, None] + np.arange(k)).ravel()]
        good = np.flatnonzero(small)
        indices[good] = cols[take].reshape(-1, k)
        values[good] = found[take].reshape(-1, k)
    return indices, values


def _row_kth_largest(
    values: NDArray[np.floating], bounds: NDArray[np.int64], rows: NDArray[np.int64], kth: NDArray[np.int64]
) -> list:
    """The ``kth[i]``-th largest of ``values[bounds[r]:bounds[r + 1]]`` for each ``r = rows[i]``
    (every such row holding more than ``kth[i]`` values): one in-place ``partition`` per row on
    a copy (values only, cheaper than ``argpartition``, which also moves indices)."""
    work, starts, ends = values.copy(), bounds[:-1].tolist(), bounds[1:].tolist()
    # ndarray.partition sorts the slice (a view of ``work``) in place and returns None.
    return [
        work[starts[row] : ends[row]].partition(ends[row] - starts[row] - k) or work[ends[row] - k]
        for row, k in zip(rows.tolist(), kth.tolist())
    ]


def topk_keep_mask(
    indptr: NDArray[np.integer], indices: NDArray[np.integer], data: NDArray[np.floating], k: int
) -> NDArray[np.bool_]:
    """Mask of the stored entries of CSR parts kept by a row-wise top-``k``: ties to the lower column.

    The same set as a stable sort of each row by value then column, without sorting: each row
    longer than ``k`` finds its ``k``-th largest value with :func:`_row_kth_largest`; values
    above it are kept, and of the values equal to it the lowest columns. ``data`` must not
    hold NaN; ``indices`` need not be sorted.
    """
    n_rows = indptr.size - 1
    counts = np.diff(indptr)
    threshold = np.full(n_rows, -np.inf, dtype=data.dtype)
    long_rows = np.flatnonzero(counts > k)
    if long_rows.size:
        threshold[long_rows] = _row_kth_largest(data, indptr, long_rows, np.full(long_rows.size, k))
    row_threshold = np.repeat(threshold, counts)
    keep = data >= row_threshold
    kept_counts = np.diff(np.searchsorted(np.flatnonzero(keep), indptr))
    over = kept_counts > k
    if over.any():
        # Ties at the k-th value: drop the tied entries with the highest columns.
        tied = np.flatnonzero(np.repeat(over, counts) & (data == row_threshold))
        tied_rows = np.searchsorted(indptr, tied, side="right") - 1
        order = np.argsort(tied_rows * (int(indices.max(initial=0)) + 1) + indices[tied], kind="stable")
        tied, tied_rows = tied[order], tied_rows[order]
        rank = np.arange(tied.size) - np.searchsorted(tied_rows, tied_rows)
        n_tied = np.bincount(tied_rows, minlength=n_rows)
        keep[tied[rank >= (n_tied - (kept_counts - k))[tied_rows]]] = False
    return keep


def _partition_keep_positions(indptr: NDArray[np.integer], data: NDArray[np.floating], k: int) -> NDArray[np.int64]:
    """Positions of the stored values ``np.argpartition`` keeps in each row of CSR parts (``ties="partition"``)."""
    counts = np.diff(indptr)
    parts: list[NDArray] = []
    long_rows = np.flatnonzero(counts > k)
    if long_rows.size:
        negated, bounds = -data, indptr.tolist()
        picks = [negated[bounds[row] : bounds[row + 1]].argpartition(k - 1)[:k] for row in long_rows.tolist()]
        parts.append(np.concatenate(picks) + np.repeat(indptr[long_rows], k))
    short = np.flatnonzero((counts <= k) & (counts > 0))
    if short.size:
        starts, lengths = indptr[short], counts[short]
        parts.append(np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum()))
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def topk_sparse_rows(M: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest stored values of each row of a sparse matrix.

    Parameters
    ----------
    M : sparse matrix, shape (m, n)
    k : int

    Returns
    -------
    csr_matrix, shape (m, n), same dtype, at most ``k`` entries per row.
    """
    M = sp.csr_matrix(M)
    M.sort_indices()
    counts = np.diff(M.indptr)
    if counts.size == 0 or counts.max(initial=0) <= k:
        return M.copy()
    rows = np.repeat(np.arange(M.shape[0]), counts)
    if k >= 1 and M.dtype.kind == "f" and not np.isnan(M.data).any():
        keep = np.flatnonzero(topk_keep_mask(M.indptr, M.indices, M.data, int(k)))
    else:
        order = np.lexsort((-M.data, rows))
        position = np.arange(M.data.size) - np.repeat(M.indptr[:-1], counts)
        keep = order[position < k]
        keep.sort()
    out = sp.csr_matrix((M.data[keep], (rows[keep], M.indices[keep])), shape=M.shape, dtype=M.dtype)
    out.sort_indices()
    return out


def topk_block(
    block: NDArray[np.floating] | sp.spmatrix,
    k: int,
    exclude_columns: NDArray[np.int64] | None = None,
    ties: str = "lowest",
) -> sp.csr_matrix:
    """The ``k`` largest nonzero values of each row of a dense or sparse block, as CSR.

    Parameters
    ----------
    block : ndarray or sparse matrix, shape (m, n)
        A sparse block is selected on its stored values only (no dense copy); its data may be
        overwritten.
    k : int
    exclude_columns : ndarray int, shape (m,), optional
        ``block[r, exclude_columns[r]]`` is never kept (an item's own column).
    ties : {"lowest", "partition"}
        See :func:`topk_dense_rows`.

    Returns
    -------
    csr_matrix float32, shape (m, n), at most ``k`` entries per row, no zeros, sorted indices.
    """
    m, n = block.shape
    if sp.issparse(block):
        block = sp.csr_matrix(block, dtype=np.float32)
        indptr, indices, data = block.indptr, block.indices, block.data
        counts = np.diff(indptr)
        if exclude_columns is not None:
            data[indices == np.repeat(exclude_columns.astype(indices.dtype, copy=False), counts)] = 0.0
        if k <= 0:
            positions = np.zeros(0, dtype=np.int64)
        elif ties == "partition":
            positions = _partition_keep_positions(indptr, data, int(k))
            positions = positions[data[positions] != 0]
        else:
            positions = np.flatnonzero(topk_keep_mask(indptr, indices, data, int(k)) & (data != 0))
        kept_counts = np.diff(np.searchsorted(positions, indptr))
        out = sp.csr_matrix(
            (data.take(positions), indices.take(positions), np.concatenate([[0], np.cumsum(kept_counts)])),
            shape=(m, n),
        )
    else:
        block = np.asarray(block, dtype=np.float32)
        if exclude_columns is not None:
            block = block.copy()
            block[np.arange(m), exclude_columns] = 0.0
        cols, values = topk_dense_rows(block, int(k), ties)
        nonzero = values != 0
        rows = np.broadcast_to(np.arange(m)[:, None], cols.shape)[nonzero]
        out = sp.csr_matrix((values[nonzero], (rows, cols[nonzero])), shape=(m, n), dtype=np.float32)
    out.sort_indices()
    return out


def blockwise_topk(
    n_rows: int,
    n_cols: int,
    block_fn: Callable[[int, int], NDArray[np.float32] | sp.spmatrix],
    k: int,
    n_threads: int = 0,
    block_rows: int | None = None,
    exclude_columns: NDArray[np.int64] | None = None,
    ties: str = "lowest",
) -> sp.csr_matrix:
    """Build a sparse matrix keeping the ``k`` largest nonzero values of each row, block by block.

    Only one ``(block_rows, n_cols)`` block per thread exists at a time, so the
    ``n_rows x n_cols`` matrix is never built; each block is selected by :func:`topk_block`.

    Parameters
    ----------
    n_rows, n_cols : int
        Shape of the (virtual) matrix.
    block_fn : callable (start, end) -> ndarray or sparse matrix, shape (end - start, n_cols)
        Returns rows ``start:end``; entries that must never be kept (e.g. the diagonal) set to 0.
    k : int
        Values kept per row.
    n_threads : int
        Worker threads (0: all cores).
    block_rows : int, optional
        Rows per block (default: about ``BLOCK_ELEMENTS`` values per block).
    exclude_columns : ndarray int, shape (n_rows,), optional
        Row ``r`` never keeps column ``exclude_columns[r]`` (see :func:`topk_block`).
    ties : {"lowest", "partition"}
        See :func:`topk_dense_rows`.

    Returns
    -------
    csr_matrix float32, shape (n_rows, n_cols), at most ``k`` entries per row, no zeros,
    sorted indices.
    """
    k = int(min(k, n_cols))
    if block_rows is None:
        block_rows = block_rows_for(n_rows, n_cols)
    def work(start: int, end: int) -> sp.csr_matrix:
        exclude = None if exclude_columns is None else exclude_columns[start:end]
        return topk_block(block_fn(start, end), k, exclude, ties)

    parts = map_blocks(work, n_rows, block_rows, n_threads)
    if not parts:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float32)
    counts = np.concatenate([np.diff(p.indptr) for p in parts])
    indices = np.concatenate([p.indices for p in parts])
    data = np.concatenate([p.data for p in parts]).astype(np.float32, copy=False)
    out = sp.csr_matrix((data, indices, np.concatenate([[0], np.cumsum(counts)])), shape=(n_rows, n_cols))
    out.has_sorted_indices = True
    return out


def topn_rows(
    scores: NDArray[np.floating], n: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Return the best ``n`` columns of each row, padded with -1 / -inf.

    Entries scored ``-inf`` are never returned (their index becomes -1).

    Parameters
    ----------
    scores : ndarray, shape (m, n_items)
    n : int

    Returns
    -------
    indices : ndarray int64, shape (m, n)
    scores : ndarray float32, shape (m, n)
    """
    m = scores.shape[0]
    indices = np.full((m, n), -1, dtype=np.int64)
    values = np.full((m, n), -np.inf, dtype=np.float32)
    idx, val = topk_dense_rows(scores, n)
    width = idx.shape[1]
    valid = val > -np.inf
    indices[:, :width] = np.where(valid, idx, -1)
    values[:, :width] = np.where(valid, val, -np.inf)
    return indices, values


def _order_by_row_value_column(
    rows: NDArray[np.int64], values: NDArray[np.float32], cols: NDArray[np.int64], n_rows: int, n_cols: int
) -> NDArray[np.int64]:
    """``np.lexsort((cols, -values, rows))`` for positive float32 ``values``, by one sort.

    A positive float32's bits read as an unsigned integer grow with it, so (row, inverted
    bits, column) packed in one uint64 sorts like the three keys, when they fit in 64 bits.
    """
    row_bits, col_bits = max(1, int(n_rows - 1).bit_length()), max(1, int(n_cols - 1).bit_length())
    if row_bits + 32 + col_bits > 64 or values.dtype != np.float32:
        return np.lexsort((cols, -values, rows))
    inverted = np.uint64(0xFFFFFFFF) - values.view(np.uint32).astype(np.uint64)
    keys = (rows.astype(np.uint64) << np.uint64(32 + col_bits)) | (inverted << np.uint64(col_bits))
    keys |= cols.astype(np.uint64)
    return np.argsort(keys)


def _rows_at_or_above(
    row_counts: NDArray[np.int64], values: NDArray[np.floating], want: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Positions (in ``values``, rows laid end to end with ``row_counts`` values each) of the
    values at or above their row's ``want``-th largest: every value of a row holding at most
    ``want``, its best ``want`` plus any ties otherwise."""
    bounds = np.concatenate([[0], np.cumsum(row_counts)])
    threshold = np.full(row_counts.size, -np.inf, dtype=values.dtype)
    long_rows = np.flatnonzero(row_counts > want)
    if long_rows.size:
        threshold[long_rows] = _row_kth_largest(values, bounds, long_rows, want[long_rows])
    return np.flatnonzero(values >= np.repeat(threshold, row_counts))


def topn_sparse_rows(
    scores: sp.csr_matrix, seen: sp.csr_matrix | None, n: int
) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.bool_]]:
    """Best ``n`` positive stored scores of each row, skipping seen items, best first.

    The rows that hold at least ``n`` such scores get exactly what :func:`topn_rows` returns
    on the dense scores with seen items set to ``-inf`` (values descending, lowest column
    first on ties): their best ``n`` are positive, hence stored. The other rows are flagged
    for the caller and padded with -1 / -inf.

    No dense block is built. A row with ``h`` seen items first keeps its best ``n + h``
    positive scores (at most ``h`` of them are seen, so they hold the best ``n`` unseen), then
    drops the seen ones, keeps the best ``n`` left (plus ties) and sorts those.

    Parameters
    ----------
    scores : csr_matrix, shape (m, n_items)
    seen : csr_matrix, shape (m, n_items), or None
        Stored entries are the items to skip (None: skip nothing).
    n : int

    Returns
    -------
    indices : ndarray int64, shape (m, n)
    values : ndarray float32, shape (m, n)
    short : ndarray bool, shape (m,), rows with fewer than ``n`` positive unseen scores
    """
    m, n_items = scores.shape
    n = int(n)
    indices = np.full((m, n), -1, dtype=np.int64)
    values = np.full((m, n), -np.inf, dtype=np.float32)
    if n <= 0:
        return indices, values, np.zeros(m, dtype=bool)
    indptr, data, cols = scores.indptr, scores.data, scores.indices
    if data.size and data.min() > 0:  # the usual case (nonnegative similarities): no copy
        row_counts, found = np.diff(indptr).astype(np.int64), data
    else:
        positive = np.flatnonzero(data > 0)
        row_counts = np.diff(np.searchsorted(positive, indptr))
        found, cols = data.take(positive), cols.take(positive)
    seen_counts = np.zeros(m, dtype=np.int64) if seen is None else np.diff(seen.indptr).astype(np.int64)
    keep = _rows_at_or_above(row_counts, found, n + seen_counts)
    rows = np.searchsorted(np.cumsum(row_counts), keep, side="right").astype(np.int64)
    cols, found = cols[keep].astype(np.int64), found[keep]
    if seen is not None and seen.nnz:
        unseen = _not_in(rows, cols, seen, seen_counts)
        rows, cols, found = rows[unseen], cols[unseen], found[unseen]
    row_counts = np.bincount(rows, minlength=m)
    short = row_counts < n
    keep = _rows_at_or_above(row_counts, found, np.full(m, n, dtype=np.int64))
    rows, cols, found = rows[keep], cols[keep], found[keep]
    order = _order_by_row_value_column(rows, found, cols, m, n_items)
    rows, cols, found = rows[order], cols[order], found[order]
    rank = np.arange(rows.size) - np.searchsorted(rows, rows)
    top = rank < n
    indices[rows[top], rank[top]] = cols[top]
    values[rows[top], rank[top]] = found[top]
    return indices, values, short


def _not_in(rows: NDArray[np.int64], cols: NDArray[np.int64], seen: sp.csr_matrix,
            seen_counts: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Mask of the (row, col) pairs that are not stored in ``seen``."""
    n_items = seen.shape[1]
    seen_keys = np.repeat(np.arange(seen.shape[0], dtype=np.int64) * n_items, seen_counts) + seen.indices
    if not seen.has_sorted_indices:
        seen_keys.sort()
    keys = rows * n_items + cols
    at = np.minimum(np.searchsorted(seen_keys, keys), seen_keys.size - 1)
    return seen_keys[at] != keys
