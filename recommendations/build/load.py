"""Provides the build's loading: item texts and interactions from the adapter, turned into confidence matrices."""
from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.contrib.contenttypes.models import ContentType

from ..adapters import get_adapter
from ..algorithms.feedback import FeedbackEvents, confidence_matrix
from ..algorithms.matrices import IndexMap
from ..algorithms.splits import last_timestamp_matrix
from ..conf import app_settings
from ..interactions import InteractionColumns
from .config import feedback_config


@dataclass
class LoadedData:
    """Everything a build learns from, as matrices over the build's user and item positions."""

    user_items: sp.csr_matrix
    negatives: sp.csr_matrix
    user_map: IndexMap
    item_map: IndexMap
    item_words: np.ndarray
    texts: dict[int, list[tuple[str, str]]]  # content_type_id -> [(object_id, text)]
    n_events: int
    cols: InteractionColumns | None = None
    event_users: np.ndarray | None = None
    event_items: np.ndarray | None = None
    clock: float | None = None  # the reference time of the recency decay and the popularity window


DECAY_CLOCK_SECONDS = 3600


def decay_clock(now: float | None = None) -> float:
    """Return the build's reference time: ``now`` (default the wall clock) raised to the next whole hour.

    Two builds within one hour over the same data then give the same scores, not float-near ties
    moved by a second of recency decay (docs/decisions.md, "A build's clock is the next whole hour").
    """
    now = time.time() if now is None else now
    return float(math.ceil(now / DECAY_CLOCK_SECONDS) * DECAY_CLOCK_SECONDS)


def positions(keys: list, lookup: Callable[[Any], int]) -> np.ndarray:
    """``[lookup(k) for k in keys]`` as int64, calling ``lookup`` once per distinct key, in first-appearance order.

    A full build maps millions of interactions onto a few thousand users and items: one Python
    call per row would dominate the load.
    """
    table = {key: lookup(key) for key in dict.fromkeys(keys)}
    return np.fromiter(map(table.__getitem__, keys), dtype=np.int64, count=len(keys))


def key_order(key: Any) -> tuple:
    """Sort key putting integer keys (and strings of digits) in numeric order, then other keys as text.

    Positions follow it so that a build does not depend on the database's row order: ties between
    scores break the same way every build, in the order the rows were created for integer keys.
    """
    if isinstance(key, int):
        return (0, key, "")
    text = str(key)
    return (0, int(text), text) if text.isdecimal() else (1, 0, text)


def events_matrix(cols: InteractionColumns, user_map: IndexMap, item_map: IndexMap,
                  item_words: np.ndarray, *, grow_users: bool, now: float):
    """Turn interaction columns into (positive, negative) confidence matrices with the feedback model.

    Return the two matrices and the positions ``(users, items)`` of every event (-1 where the
    item or user is unknown) so callers can reuse them. With ``grow_users`` unknown users are added.
    """
    items = np.full(len(cols), -1, dtype=np.int64)
    cts = np.asarray(cols.content_type_id, dtype=np.int64)
    for ct in np.unique(cts).tolist():
        rows = np.flatnonzero(cts == ct)
        object_ids = cols.object_id if len(rows) == len(cols) else [cols.object_id[i] for i in rows.tolist()]
        items[rows] = positions(object_ids, lambda object_id, ct=ct: item_map.get((ct, object_id), -1))
    # dict.fromkeys keeps first appearance: users get the positions the row-by-row loop gave them.
    users = positions(cols.user_id, user_map.add if grow_users else (lambda u: user_map.get(u, -1)))
    keep = (items >= 0) & (users >= 0)
    # A plain weighted interaction counts as a read (its weight is not used by the feedback model).
    kind = np.where(cols.kind == "weight", "read", cols.kind)
    events = FeedbackEvents(
        user=users[keep], item=items[keep], kind=kind[keep], stars=cols.stars[keep],
        dwell_seconds=cols.dwell_seconds[keep], progress=cols.progress[keep],
        timestamp=np.where(np.isnan(cols.timestamp), now, cols.timestamp)[keep], item_words=item_words,
    )
    positive, negative = confidence_matrix(events, len(user_map), len(item_map), feedback_config(), now=now)
    return positive.tocsr().astype(np.float32), negative.tocsr().astype(np.float32), users, items


def item_texts_load() -> tuple[IndexMap, dict[int, list[tuple[str, str]]], np.ndarray]:
    """Return every item's position, its text per content type, and its word count (NaN without text)."""
    adapter = get_adapter()
    item_map = IndexMap()
    texts: dict[int, list[tuple[str, str]]] = {}
    words: list[float] = []
    for model in adapter.item_models():
        ct_id = ContentType.objects.get_for_model(model).pk
        pairs = list(adapter.item_texts(model)) if adapter.text_fields(model) else [
            (str(pk), "") for pk in adapter.item_queryset(model).values_list("pk", flat=True).iterator()
        ]
        pairs.sort(key=lambda pair: key_order(pair[0]))
        texts[ct_id] = pairs
        for object_id, text in pairs:
            item_map.add((ct_id, object_id))
            words.append(float(len(text.split())) if text else np.nan)
    return item_map, texts, np.asarray(words, dtype=np.float64)


def build_load(*, now: float | None = None) -> LoadedData:
    """Read every item text and interaction through the adapter and build the matrices."""
    now = decay_clock() if now is None else now
    item_map, texts, item_words = item_texts_load()
    cols = get_adapter().interaction_columns()
    user_map = IndexMap(sorted(set(cols.user_id), key=key_order))
    positive, negative, users, items = events_matrix(cols, user_map, item_map, item_words, grow_users=True, now=now)
    keep = (users >= 0) & (items >= 0)
    return LoadedData(positive, negative, user_map, item_map, item_words, texts, int(keep.sum()),
                      cols=cols, event_users=users, event_items=items, clock=now)


def recent_counts(data: LoadedData) -> np.ndarray:
    """Count distinct readers per item over the last ``POPULAR_WINDOW_DAYS`` days (rejections excluded)."""
    since = (decay_clock() if data.clock is None else data.clock) - app_settings.POPULAR_WINDOW_DAYS * 86400
    cols = data.cols
    ok = (
        (data.event_users >= 0) & (data.event_items >= 0) & (cols.timestamp > since)
        & (cols.kind != "not_interested") & ~(cols.stars <= 2)
    )
    pairs = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (data.event_users[ok], data.event_items[ok])),
        shape=(len(data.user_map), len(data.item_map)),
    )
    pairs.data[:] = 1  # duplicates were summed: count each reader once
    return np.asarray((pairs > 0).sum(axis=0)).ravel().astype(np.float64)


def explicit_ratings(data: LoadedData) -> dict[str, np.ndarray]:
    """Return the explicit ratings the star predictor learns from: user and item positions, stars, shape."""
    cols = data.cols
    ok = (cols.kind == "rating") & ~np.isnan(cols.stars) & (data.event_users >= 0) & (data.event_items >= 0)
    return {"users": data.event_users[ok], "items": data.event_items[ok], "stars": cols.stars[ok],
            "shape": np.asarray([len(data.user_map), len(data.item_map)], dtype=np.int64)}


def interaction_times(data: LoadedData) -> sp.csr_matrix | None:
    """The latest time of each (user, item) pair with a timestamp, or None when no event has one.

    A self-tuning algorithm validates on each user's latest interaction with it (else on a random one).
    """
    cols = data.cols
    if cols is None or data.event_users is None:
        return None
    ok = (data.event_users >= 0) & (data.event_items >= 0) & np.isfinite(cols.timestamp)
    ok &= cols.kind != "not_interested"
    if not ok.any():
        return None
    return last_timestamp_matrix(data.event_users[ok], data.event_items[ok], cols.timestamp[ok],
                                 (len(data.user_map), len(data.item_map)))


def fit_inputs(model: Any, data: LoadedData) -> dict[str, Any]:
    """Keyword arguments of ``model.fit`` beyond the matrix: the timestamps, for a fit that takes them."""
    if "timestamps" not in inspect.signature(model.fit).parameters:
        return {}
    return {"timestamps": interaction_times(data)}
