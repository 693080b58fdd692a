"""Provides the one loop that runs work over blocks of rows, in a thread pool, and its sizing helpers."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["BLOCK_ELEMENTS", "block_rows_for", "map_blocks", "n_threads_to_use"]

T = TypeVar("T")

#: Elements of a dense float32 work block (about 64 MB); blocks of rows are sized from it.
BLOCK_ELEMENTS = 16_000_000


def n_threads_to_use(n_threads: int | None) -> int:
    """Threads for an ``n_threads`` parameter: itself when positive, else every core this process may use."""
    if n_threads and n_threads > 0:
        return int(n_threads)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def block_rows_for(n_rows: int, n_cols: int, cap: int | None = None) -> int:
    """Rows per block so one dense ``(rows, n_cols)`` block holds about ``BLOCK_ELEMENTS`` values."""
    rows = max(1, min(max(1, n_rows), BLOCK_ELEMENTS // max(1, n_cols)))
    return rows if cap is None else max(1, min(rows, cap))


def map_blocks(work: Callable[[int, int], T], n_rows: int, block_rows: int, n_threads: int | None = 0) -> list[T]:
    """Run ``work(start, end)`` over consecutive blocks of ``block_rows`` rows; results in block order.

    Blocks run in a thread pool when there are several of them and more than one thread: numpy
    and scipy release the GIL in the heavy parts, so threads share the cores without copies.

    Parameters
    ----------
    work : callable (start, end) -> T
    n_rows : int
    block_rows : int
    n_threads : int
        0 or None: every core this process may use.

    Returns
    -------
    list of T, one per block.
    """
    block_rows = max(1, int(block_rows))
    starts = range(0, n_rows, block_rows)

    def run(start: int) -> T:
        return work(start, min(n_rows, start + block_rows))

    threads = n_threads_to_use(n_threads)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as pool:
            return list(pool.map(run, starts))
    return [run(start) for start in starts]
