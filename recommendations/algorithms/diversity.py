"""Provides the diversity cap (a greedy re-rank by key) and beyond-accuracy metrics of top-N lists.

The cap keeps a list from repeating one author, series or brand: among candidates ordered best
first, it takes the best one whose key has not reached its limit yet. The metrics describe a set
of top-N lists beside their accuracy: catalogue coverage, intra-list diversity, novelty and the
share of slots taken by the most popular items.

Lists are ndarrays of item positions of shape ``(n_lists, n)``, padded with ``-1``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_PENALTY",
    "cap_limits",
    "capped_ranking",
    "capped_top_n",
    "max_key_counts",
    "catalogue_coverage",
    "intra_list_diversity",
    "novelty",
    "popularity_share",
    "validate_caps",
]

#: At most 2 items of a key among the first 6, at most 3 in a list of 12.
DEFAULT_CAPS: tuple[tuple[int, int], ...] = ((6, 2), (12, 3))
#: Places a candidate moves down per item of its key already in the list (see :func:`capped_ranking`).
DEFAULT_PENALTY = 12.0


def validate_caps(caps: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Return ``caps`` as a sorted list of ``(window, max)`` pairs, or raise ``ValueError``.

    Parameters
    ----------
    caps : sequence of (int, int)
        Each pair says: among the first ``window`` items of a list, at most ``max`` share a
        key. Both are positive integers; a window appears once. An empty sequence means no cap.

    Returns
    -------
    list of (int, int)
        The pairs sorted by window.
    """
    if isinstance(caps, (str, bytes)) or not isinstance(caps, Sequence):
        raise ValueError(f"caps must be a list of (window, max) pairs, not {caps!r}")
    pairs: list[tuple[int, int]] = []
    for pair in caps:
        if (
            isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in pair)
        ):
            raise ValueError(f"each cap must be a (window, max) pair of positive integers, not {pair!r}")
        pairs.append((int(pair[0]), int(pair[1])))
    windows = [w for w, _ in pairs]
    if len(set(windows)) != len(windows):
        raise ValueError(f"each window may appear once, not {windows!r}")
    return sorted(pairs)


def cap_limits(caps: Sequence[Sequence[int]], n: int) -> NDArray[np.int64]:
    """Return how many items of one key each prefix of a list may hold.

    The limit of the first ``L`` items is the smallest ``max`` of the windows that contain them
    (``window >= L``). Beyond the largest window it grows in proportion:
    ``floor(max * L / window)`` of the largest pair (a list of 24 under ``(12, 3)`` holds 6).

    Parameters
    ----------
    caps : sequence of (int, int)
        ``(window, max)`` pairs (see :func:`validate_caps`); empty means no limit.
    n : int
        Length of the list.

    Returns
    -------
    limits : ndarray of int64, shape (n,)
        ``limits[L - 1]`` is the limit of the first ``L`` items; non-decreasing.
    """
    pairs = validate_caps(caps)
    if not pairs:
        return np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    big_window, big_max = pairs[-1]
    limits = np.empty(n, dtype=np.int64)
    for length in range(1, n + 1):
        if length <= big_window:
            limits[length - 1] = min(m for w, m in pairs if w >= length)
        else:
            limits[length - 1] = max(big_max, (big_max * length) // big_window)
    # A later, looser window never lowers the limit of a longer prefix below a shorter one's.
    return np.maximum.accumulate(limits)


def capped_ranking(
    keys: Sequence[Hashable | None],
    n: int,
    caps: Sequence[Sequence[int]] = DEFAULT_CAPS,
    *,
    penalty: float = 0.0,
    fill: bool = True,
) -> list[int]:
    """Choose up to ``n`` of the candidates, best first, so that no key exceeds its cap.

    A greedy re-rank: each slot takes the best remaining candidate whose key is still under the
    limit of the list so far (see :func:`cap_limits`). A skipped candidate stays in the pool
    and takes a later slot once its key's limit allows it, so a list is full and within its caps
    whenever the candidates allow it. Candidates whose key is ``None`` are never capped and do
    not count.

    ``penalty`` softens repeats below the cap: a candidate competes as if it stood ``penalty``
    places further down the candidates for each item of its key already in the list. With 0,
    only the caps act; with a few places, the third book of an author comes before a slightly
    better-ranked one only when nothing close to it is by someone else.

    When too few candidates fit the caps (say, every candidate has the same author), ``fill``
    decides what happens: True (the default) fills the remaining slots with the best skipped
    candidates, in their order, so the list is always as long as it can be and the cap is broken
    only as far as the pool forces it; False returns the shorter list, within its caps.

    Parameters
    ----------
    keys : sequence of hashable or None, length n_candidates
        The key of each candidate (author, series, brand), candidates ordered best first.
    n : int
        Length of the list wanted.
    caps : sequence of (int, int)
        ``(window, max)`` pairs; empty means no cap.
    penalty : float
        Places a candidate moves down per item of its key already chosen (0: none).
    fill : bool
        Fill the list with skipped candidates when the caps leave it short.

    Returns
    -------
    positions : list of int
        Indices into ``keys`` of the chosen candidates, in list order; at most ``n`` of them.
    """
    n = max(0, min(int(n), len(keys)))
    if not len(caps) and penalty <= 0:
        return list(range(n))
    chosen, waiting = _greedy(keys, cap_limits(caps, n), penalty)
    if fill and len(chosen) < n:
        chosen += waiting[: n - len(chosen)]
    return chosen


def _greedy(keys: Sequence[Hashable | None], limits: NDArray[np.int64], penalty: float) -> tuple[list[int], list[int]]:
    """Return :func:`capped_ranking`'s chosen candidates and those it looked at and skipped, both best first."""
    n = len(limits)
    chosen: list[int] = []
    waiting: list[int] = []  # candidates looked at and not chosen, best first
    counts: dict[Hashable, int] = {}
    upcoming = 0

    def place(position: int, limit: int) -> float | None:
        """Where the candidate competes now, or None when its key is at its limit."""
        key = keys[position]
        count = 0 if key is None else counts.get(key, 0)
        return None if count >= limit else position + penalty * count

    while len(chosen) < n:
        limit = limits[len(chosen)]
        best, best_place = None, float("inf")
        for j, position in enumerate(waiting):
            at = place(position, limit)
            if at is not None and at < best_place:
                best, best_place = j, at
        # A candidate not looked at yet competes at its own position at best: stop past the best so far.
        while upcoming < len(keys) and upcoming < best_place:
            waiting.append(upcoming)
            at = place(upcoming, limit)
            if at is not None and at < best_place:
                best, best_place = len(waiting) - 1, at
            upcoming += 1
        if best is None:
            break
        position = waiting.pop(best)
        chosen.append(position)
        if keys[position] is not None:
            counts[keys[position]] = counts.get(keys[position], 0) + 1
    return chosen, waiting


def capped_top_n(
    candidates: NDArray[np.int64],
    item_keys: ArrayLike,
    n: int,
    caps: Sequence[Sequence[int]] = DEFAULT_CAPS,
    *,
    penalty: float = 0.0,
    fill: bool = True,
) -> NDArray[np.int64]:
    """Apply :func:`capped_ranking` to many candidate lists at once.

    Parameters
    ----------
    candidates : ndarray of int, shape (n_lists, m)
        Item positions of each list's candidates, best first; ``-1`` pads.
    item_keys : array-like of int, shape (n_items,)
        The key of each item as an integer; negative means no key (never capped).
    n : int
        Length of each capped list (at most ``m``).
    caps : sequence of (int, int)
    penalty : float
    fill : bool
        See :func:`capped_ranking`.

    Returns
    -------
    lists : ndarray of int64, shape (n_lists, n)
        The capped lists, padded with ``-1``.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    item_keys = np.asarray(item_keys, dtype=np.int64)
    out = np.full((candidates.shape[0], n), -1, dtype=np.int64)
    for row, cands in enumerate(candidates):
        cands = cands[cands >= 0]
        keys = item_keys[cands]
        chosen = capped_ranking([int(k) if k >= 0 else None for k in keys], n, caps, penalty=penalty, fill=fill)
        out[row, : len(chosen)] = cands[chosen]
    return out


def max_key_counts(lists: NDArray[np.int64], item_keys: ArrayLike) -> NDArray[np.int64]:
    """Return, per list, how many items share its most repeated key (0 for a list with no keys).

    Parameters
    ----------
    lists : ndarray of int, shape (n_lists, n)
        Item positions; ``-1`` pads.
    item_keys : array-like of int, shape (n_items,)
        The key of each item; negative means no key.

    Returns
    -------
    counts : ndarray of int64, shape (n_lists,)
    """
    lists = np.asarray(lists, dtype=np.int64)
    item_keys = np.asarray(item_keys, dtype=np.int64)
    out = np.zeros(lists.shape[0], dtype=np.int64)
    for row, items in enumerate(lists):
        keys = item_keys[items[items >= 0]]
        keys = keys[keys >= 0]
        if keys.size:
            out[row] = np.bincount(np.unique(keys, return_inverse=True)[1]).max()
    return out


def catalogue_coverage(lists: NDArray[np.int64], n_items: int) -> float:
    """Return the share of the catalogue that appears in at least one list.

    Parameters
    ----------
    lists : ndarray of int, shape (n_lists, n)
        Item positions; ``-1`` pads.
    n_items : int
        Size of the catalogue.

    Returns
    -------
    float
        In [0, 1]; NaN for an empty catalogue.
    """
    lists = np.asarray(lists, dtype=np.int64)
    if n_items <= 0:
        return float("nan")
    return float(np.unique(lists[lists >= 0]).size / n_items)


def intra_list_diversity(
    lists: NDArray[np.int64],
    *,
    item_keys: ArrayLike | None = None,
    similarity: sp.spmatrix | NDArray | None = None,
) -> float:
    """Return the mean dissimilarity of the pairs of items within a list, averaged over lists.

    Give exactly one of ``item_keys`` (two items are alike when they share a key: the score is
    the share of pairs with different keys) or ``similarity`` (the score is the mean of
    ``1 - similarity[a, b]`` over pairs). Lists with fewer than two items are left out.

    Parameters
    ----------
    lists : ndarray of int, shape (n_lists, n)
        Item positions; ``-1`` pads.
    item_keys : array-like of int, shape (n_items,), optional
        The key of each item; a negative key is unique (it matches no other item).
    similarity : sparse matrix or ndarray, shape (n_items, n_items), optional
        Item-item similarity in [0, 1], e.g. cosine of content vectors.

    Returns
    -------
    float
        In [0, 1] (1 = no two items alike); NaN when no list has two items.
    """
    if (item_keys is None) == (similarity is None):
        raise ValueError("give exactly one of item_keys and similarity")
    lists = np.asarray(lists, dtype=np.int64)
    keys = None if item_keys is None else np.asarray(item_keys, dtype=np.int64)
    sim = None
    if similarity is not None:
        sim = sp.csr_matrix(similarity) if sp.issparse(similarity) else np.asarray(similarity)
    scores = []
    for items in lists:
        items = items[items >= 0]
        k = items.size
        if k < 2:
            continue
        a, b = np.triu_indices(k, 1)
        if keys is not None:
            ka, kb = keys[items[a]], keys[items[b]]
            alike = (ka == kb) & (ka >= 0)
        else:
            block = sim[items][:, items]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            alike = block[a, b]
        scores.append(1.0 - float(np.mean(alike)))
    return float(np.mean(scores)) if scores else float("nan")


def novelty(lists: NDArray[np.int64], item_popularity: ArrayLike, n_users: int) -> float:
    """Return the mean self-information of the recommended items, in bits.

    An item that ``c`` of ``n_users`` interacted with carries ``-log2(c / n_users)`` bits; items
    nobody touched count as touched by one user. Higher means less obvious picks.

    Parameters
    ----------
    lists : ndarray of int, shape (n_lists, n)
        Item positions; ``-1`` pads.
    item_popularity : array-like, shape (n_items,)
        Number of users who interacted with each item (in the train data).
    n_users : int
        Number of users in the train data.

    Returns
    -------
    float
        Mean over all recommended slots; NaN when the lists are empty.
    """
    lists = np.asarray(lists, dtype=np.int64)
    items = lists[lists >= 0]
    if items.size == 0 or n_users <= 0:
        return float("nan")
    counts = np.maximum(np.asarray(item_popularity, dtype=np.float64)[items], 1.0)
    return float(np.mean(-np.log2(counts / n_users)))


def popularity_share(lists: NDArray[np.int64], item_popularity: ArrayLike, head: float = 0.2) -> float:
    """Return the share of recommended slots taken by the short head: the most popular ``head`` of the catalogue.

    Parameters
    ----------
    lists : ndarray of int, shape (n_lists, n)
        Item positions; ``-1`` pads.
    item_popularity : array-like, shape (n_items,)
        Interaction count of each item.
    head : float
        Share of the catalogue, by decreasing popularity, that counts as popular (ties at the
        boundary are broken by position, stably).

    Returns
    -------
    float
        In [0, 1]; NaN when the lists are empty.
    """
    lists = np.asarray(lists, dtype=np.int64)
    popularity = np.asarray(item_popularity, dtype=np.float64)
    items = lists[lists >= 0]
    if items.size == 0:
        return float("nan")
    n_head = int(np.ceil(head * popularity.size))
    in_head = np.zeros(popularity.size, dtype=bool)
    in_head[np.argsort(-popularity, kind="stable")[:n_head]] = True
    return float(np.mean(in_head[items]))
