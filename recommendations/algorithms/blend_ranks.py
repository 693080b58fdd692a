"""Provides the held-out item's position under a blend of dense score blocks, read from each member's top columns.

The blend search of ``auto`` scores hundreds of weightings of the same cached member scores. Over a
full catalogue each weighting would sum every member's whole block, though a cut-off metric only
needs the positions below its largest ``k``. Each member's ``width`` best columns per row are found
once; a weighting then sums only those columns. An item outside all of them scores at most the
weighted sum of the members' ``width``-th best scores, so where the held-out item scores above that
bound its position among the top columns is its position in the full row; where ``k_max`` columns
already score above it, its position is past every cut-off. Only the other rows need the full
blend, and they get it. Every value is summed in the same order and precision as the full blend,
so ties and positions come out the same (docs/decisions.md, "The blend search reads members' top
columns").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from .blocks import BLOCK_ELEMENTS

__all__ = ["TOP_WIDTH_MIN", "TOP_WIDTH_PER_K", "blend_values", "member_tops", "top_column_positions"]

#: Columns kept per member and row: this many per unit of the largest cut-off, and at least ``TOP_WIDTH_MIN``.
#: Wider settles more rows from the tops and costs more per blend; results are the same at any width.
TOP_WIDTH_PER_K = 4
TOP_WIDTH_MIN = 32

#: Slack on the bound, in units of the largest magnitude a row's terms can sum to: the blend is summed in
#: float32 (a few roundings of 6e-8 each), the bound in float64.
BOUND_SLACK = 1e-5


def member_tops(C: NDArray, width: int) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray]:
    """Per row of ``C``: the columns of its ``width`` largest scores, the smallest of those, and its largest |score|."""
    width = min(width, C.shape[1])
    block = max(1, BLOCK_ELEMENTS // max(C.shape[1], 1))
    idx = np.empty((C.shape[0], width), dtype=np.int64)
    size = np.empty(C.shape[0], dtype=np.float64)
    for a in range(0, C.shape[0], block):  # in row blocks: a whole-matrix argpartition holds an int64 copy of it
        part = C[a : a + block]
        idx[a : a + block] = np.argpartition(part, C.shape[1] - width, axis=1)[:, -width:]
        size[a : a + block] = np.abs(np.where(np.isfinite(part), part, 0.0)).max(axis=1, initial=0.0)
    kth = np.take_along_axis(C, idx, axis=1).min(axis=1).astype(np.float64)
    return idx, kth, size


def blend_values(terms: Sequence[tuple[NDArray, float]], index: tuple | None = None) -> NDArray[np.float32]:
    """``sum(w * M[index])`` over ``terms`` (M, w) in their order, in float32 as ``Auto`` blends (whole M for None)."""
    out = part = None
    for M, weight in terms:
        values = M if index is None else M[index]
        # in place and without multiplying by 1: the same float32 values as ``out + values * w``, fewer passes
        if out is None:
            out = np.multiply(values, np.float32(weight))
        elif weight == 1.0:
            out += values
        else:
            part = np.multiply(values, np.float32(weight), out=part)
            out += part
    return out


def top_column_positions(
    terms: Sequence[tuple[NDArray, float]], tops: Sequence[tuple[NDArray, NDArray, NDArray]],
    positives: NDArray[np.int64], scale: NDArray[np.float32] | None, k_max: int,
) -> NDArray[np.float64]:
    """Tie-aware position of each row's ``positives`` column under the blend; NaN where the top columns cannot tell.

    ``terms`` are the blend's (scores, weight) with weights > 0, ``tops`` each term's :func:`member_tops`,
    ``scale`` the per-column factor applied after the sum (None for none). A position at or past
    ``k_max`` is a lower bound, enough for every metric cut at ``k_max`` or before.
    """
    n = positives.size
    rows = np.arange(n)[:, None]
    columns = np.sort(np.concatenate([idx for idx, _, _ in tops], axis=1), axis=1)
    counted = columns != positives[:, None]  # the held-out item is not its own rival
    counted[:, 1:] &= columns[:, 1:] != columns[:, :-1]  # an item in several members' tops counts once
    values = blend_values(terms, (rows, columns))
    held = blend_values(terms, (np.arange(n), positives))
    if scale is not None:
        values *= scale[columns]
        held *= scale[positives]
    higher = ((values > held[:, None]) & counted).sum(axis=1)
    tied = ((values == held[:, None]) & counted).sum(axis=1)
    bound = sum(np.float64(weight) * kth for (_, weight), (_, kth, _) in zip(terms, tops))
    slack = BOUND_SLACK * sum(np.float64(weight) * size for (_, weight), (_, _, size) in zip(terms, tops))
    if scale is not None:
        high, low = float(scale.max()), float(scale.min())
        bound, slack = np.where(bound >= 0, bound * high, bound * low), slack * high
    certain = np.isfinite(held) & (held > bound + slack)
    certain |= higher >= k_max
    return np.where(certain, higher + 0.5 * tied, np.nan)
