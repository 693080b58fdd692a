"""Provides FeedbackConfig and confidence_matrix: explicit and implicit events to one confidence matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["FeedbackConfig", "FeedbackEvents", "confidence_matrix", "EVENT_KINDS"]

EVENT_KINDS = ("read", "rating", "not_interested")


@dataclass(frozen=True)
class FeedbackConfig:
    """How events become confidence; every default is documented and can be overridden.

    Parameters
    ----------
    negative_max_stars : float
        Ratings at or below this are negative (default 2: 1-2 stars are negative).
    rating_weight : float
        A positive rating weighs ``rating_weight * (stars - negative_max_stars)``
        (3 stars -> 1, 4 -> 2, 5 -> 3 with the defaults).
    negative_rating_weight : float
        A negative rating weighs ``negative_rating_weight * (negative_max_stars + 1 - stars)``
        (2 stars -> 1, 1 star -> 2).
    read_weight : float
        Weight of one fully engaged read.
    min_read_fraction : float
        A read with zero measured engagement still counts this fraction of ``read_weight``;
        a read with no dwell or progress data counts fully.
    words_per_minute : float
        Reading speed used to estimate an item's reading time, ``words / words_per_minute``.
    use_progress : bool
        Use scroll/progress (0-1) as an engagement signal when known.
    repeat_factor : float
        The k-th read of the same item (by time) is multiplied by ``repeat_factor ** (k - 1)``:
        repeats count, with diminishing returns.
    half_life_days : float or None
        Recency decay: an event ``half_life_days`` old counts half. None disables decay.
    bounce_seconds : float
        A read shorter than this (with progress unknown or below ``bounce_max_progress``) is a
        bounce: negative, not positive. 0 disables.
    bounce_max_progress : float
    bounce_weight : float
        Magnitude of a bounce's negative confidence.
    not_interested_weight : float
        Magnitude of a "not interested" signal's negative confidence.
    """

    negative_max_stars: float = 2.0
    rating_weight: float = 1.0
    negative_rating_weight: float = 1.0
    read_weight: float = 1.0
    min_read_fraction: float = 0.25
    words_per_minute: float = 230.0
    use_progress: bool = True
    repeat_factor: float = 0.5
    half_life_days: float | None = 90.0
    bounce_seconds: float = 10.0
    bounce_max_progress: float = 0.1
    bounce_weight: float = 0.5
    not_interested_weight: float = 2.0


@dataclass
class FeedbackEvents:
    """Events as equal-length arrays, plus per-item word counts.

    Parameters
    ----------
    user, item : int arrays, shape (n_events,)
        Row and column positions.
    kind : str array, shape (n_events,)
        "read", "rating" or "not_interested".
    stars : float array
        Stars of a rating (nan otherwise).
    dwell_seconds : float array
        Time spent on the item (nan if unknown).
    progress : float array
        Fraction read, 0-1 (nan if unknown).
    timestamp : float array
        Unix seconds.
    item_words : float array, shape (n_items,), optional
        Words per item (nan if unknown), for the estimated reading time.
    """

    user: NDArray[np.int64]
    item: NDArray[np.int64]
    kind: NDArray[np.str_]
    stars: NDArray[np.float64] | None = None
    dwell_seconds: NDArray[np.float64] | None = None
    progress: NDArray[np.float64] | None = None
    timestamp: NDArray[np.float64] | None = None
    item_words: NDArray[np.float64] | None = field(default=None)

    def __post_init__(self) -> None:
        self.user = np.asarray(self.user, dtype=np.int64).ravel()
        n = self.user.size
        self.item = np.asarray(self.item, dtype=np.int64).ravel()
        self.kind = np.asarray(self.kind, dtype=str).ravel()
        nan = np.full(n, np.nan)
        self.stars = nan.copy() if self.stars is None else np.asarray(self.stars, dtype=np.float64).ravel()
        self.dwell_seconds = (
            nan.copy() if self.dwell_seconds is None else np.asarray(self.dwell_seconds, dtype=np.float64).ravel()
        )
        self.progress = nan.copy() if self.progress is None else np.asarray(self.progress, dtype=np.float64).ravel()
        self.timestamp = (
            np.zeros(n) if self.timestamp is None else np.asarray(self.timestamp, dtype=np.float64).ravel()
        )
        if self.item_words is not None:
            self.item_words = np.asarray(self.item_words, dtype=np.float64).ravel()
        for name in ("item", "kind", "stars", "dwell_seconds", "progress", "timestamp"):
            if getattr(self, name).size != n:
                raise ValueError(f"FeedbackEvents.{name} has {getattr(self, name).size} values, user has {n}")
        unknown = set(np.unique(self.kind)) - set(EVENT_KINDS)
        if unknown:
            raise ValueError(f"FeedbackEvents.kind has unknown values {sorted(unknown)}; valid: {EVENT_KINDS}")

    def __len__(self) -> int:
        return int(self.user.size)


def _repeat_rank(user: NDArray, item: NDArray, timestamp: NDArray) -> NDArray[np.int64]:
    """0 for the first event of each (user, item) pair by time, 1 for the second, ..."""
    if user.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((timestamp, item, user))
    u, i = user[order], item[order]
    new_group = np.ones(order.size, dtype=bool)
    new_group[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(order.size), 0))
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size) - group_start
    return rank


def confidence_matrix(
    events: FeedbackEvents,
    n_users: int,
    n_items: int,
    config: FeedbackConfig | None = None,
    now: float | None = None,
    item_words: NDArray[np.float64] | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Turn events into positive and negative confidence matrices.

    Each event gets a signed weight (see :class:`FeedbackConfig`), multiplied by the recency
    decay ``0.5 ** (age_days / half_life_days)``. Weights of the same (user, item) pair are
    summed; the net sum goes to ``positive`` if > 0 and its magnitude to ``negative`` if < 0,
    so the two matrices never share a cell.

    Parameters
    ----------
    events : FeedbackEvents
    n_users, n_items : int
    config : FeedbackConfig, optional
    now : float, optional
        Reference time in unix seconds (default: the latest event).
    item_words : ndarray, shape (n_items,), optional
        Overrides ``events.item_words``.

    Returns
    -------
    positive : csr_matrix float32, shape (n_users, n_items)
    negative : csr_matrix float32, shape (n_users, n_items), magnitudes (>= 0)
    """
    config = FeedbackConfig() if config is None else config
    n = len(events)
    shape = (int(n_users), int(n_items))
    if n == 0:
        empty = sp.csr_matrix(shape, dtype=np.float32)
        return empty, empty.copy()
    if events.user.min() < 0 or events.user.max() >= n_users or events.item.min() < 0 or events.item.max() >= n_items:
        raise ValueError("FeedbackEvents has user or item positions outside the matrix shape")
    words = item_words if item_words is not None else events.item_words
    weight = np.zeros(n, dtype=np.float64)
    rating = events.kind == "rating"
    weight[rating] = _rating_weights(events.stars[rating], config)
    read = events.kind == "read"
    weight[read] = _read_weights(events, read, words, config)
    weight[events.kind == "not_interested"] = -config.not_interested_weight
    if config.half_life_days:
        reference = float(np.max(events.timestamp)) if now is None else float(now)
        age_days = np.maximum(reference - events.timestamp, 0.0) / 86_400.0
        weight *= np.power(0.5, age_days / float(config.half_life_days))

    net = sp.csr_matrix((weight, (events.user, events.item)), shape=shape, dtype=np.float64)
    net.sum_duplicates()
    positive = net.copy()
    positive.data = np.where(positive.data > 0, positive.data, 0.0)
    positive.eliminate_zeros()
    negative = net.copy()
    negative.data = np.where(negative.data < 0, -negative.data, 0.0)
    negative.eliminate_zeros()
    return sp.csr_matrix(positive, dtype=np.float32), sp.csr_matrix(negative, dtype=np.float32)


def _rating_weights(stars: NDArray[np.float64], config: FeedbackConfig) -> NDArray[np.float64]:
    """Signed weight of rating events: 1-2 stars negative, more stars more positive."""
    if np.any(np.isnan(stars)):
        raise ValueError("FeedbackEvents: a rating event has no stars")
    negative = stars <= config.negative_max_stars
    return np.where(
        negative,
        -config.negative_rating_weight * (config.negative_max_stars + 1.0 - stars),
        config.rating_weight * (stars - config.negative_max_stars),
    )


def _read_weights(
    events: FeedbackEvents, read: NDArray[np.bool_], words: NDArray | None, config: FeedbackConfig
) -> NDArray[np.float64]:
    """Weight of read events: engagement from dwell time (against the estimated reading time) and
    progress, damped for repeats; a bounce (short dwell, little progress) is negative."""
    n = len(events)
    dwell = events.dwell_seconds
    progress = np.clip(events.progress, 0.0, 1.0)
    expected = np.full(n, np.nan)
    if words is not None:
        expected = np.asarray(words, dtype=np.float64)[events.item] / config.words_per_minute * 60.0
    dwell_ratio = np.where(
        np.isfinite(dwell) & np.isfinite(expected) & (expected > 0),
        np.clip(dwell / np.where(expected > 0, expected, 1.0), 0.0, 1.0),
        np.nan,
    )
    signals = np.vstack([dwell_ratio, progress if config.use_progress else np.full(n, np.nan)])
    known = np.isfinite(signals)
    n_known = known.sum(axis=0)
    engagement = np.where(n_known > 0, np.where(known, signals, 0.0).sum(axis=0) / np.maximum(n_known, 1), 1.0)
    value = config.read_weight * (config.min_read_fraction + (1.0 - config.min_read_fraction) * engagement)
    value[read] *= config.repeat_factor ** _repeat_rank(events.user[read], events.item[read], events.timestamp[read])
    bounce = (
        (config.bounce_seconds > 0)
        & np.isfinite(dwell)
        & (dwell < config.bounce_seconds)
        & ~(np.isfinite(progress) & (progress >= config.bounce_max_progress))
    )
    value[bounce] = -config.bounce_weight
    return value[read]
