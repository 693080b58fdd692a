"""Provides ``cold_item_place``: a new item saved after the active build, placed in matching readers' stored picks.

The item is encoded with the build's feature encoder and mapped with its cold model, then kept
with the build (``cold.extension_save``) so every later refresh scores it too. Readers for whom it
is among their ``MATCH_TOP`` best content matches get it in their stored picks now, at the score
the build's blend would give a new item, with a "New: like X, which you read" explanation.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from .. import payloads
from ..adapters import get_adapter
from ..algorithms.cold import NO_SIGNAL_SHARE
from ..db.bulk import rows_insert
from ..db.sqlite_locked import retry_when_locked
from ..models import BuildArtifact, BuildRun, UserRecommendation
from .cold import (COLD_SCALE_RANK, EXTENSION_PREFIX, cold_scores, cold_view, diversity_keys, extension_save,
                   item_records, new_explanations)
from .errors import BuildError
from .rows import PICK_COLUMNS, db_user_ids, user_pk
from .state import build_state

logger = logging.getLogger(__name__)

MATCH_TOP = 10  # a reader matches a new item when it is among their 10 best content matches of its model


def item_features_text(obj: Any) -> str:
    """Return the text the build's encoder reads for ``obj`` (its ``TEXT_FIELDS``)."""
    adapter = get_adapter()
    return adapter.item_text(obj) if adapter.text_fields(type(obj)) else ""


def _item_forget(build_id: int, key: tuple[int, str]) -> None:
    BuildArtifact.objects.filter(build_id=build_id, name=f"{EXTENSION_PREFIX}{key[0]}:{key[1]}").delete()
    UserRecommendation.objects.filter(build_id=build_id, content_type_id=key[0], object_id=key[1]).delete()


@retry_when_locked
def cold_item_place(*, content_type_id: int, object_id: str) -> int:
    """Map an item the active build has not seen and store it in matching readers' picks; return how many readers."""
    build_id = BuildRun.objects.active().values_list("pk", flat=True).first()
    if build_id is None:
        return 0
    try:
        state = build_state(build_id)
        view = cold_view(state)
    except BuildError:
        return 0
    key = (int(content_type_id), str(object_id))
    if view is None or state.item_map.get(key) is not None:
        return 0  # no cold model, or the build knows the item (its picks already score it)
    model = ContentType.objects.get_for_id(key[0]).model_class()
    obj = None if model is None else get_adapter().item_queryset(model).filter(pk=object_id).first()
    if obj is None:  # deleted or not servable (unpublished): it leaves the stored picks
        with transaction.atomic():
            _item_forget(build_id, key)
        return 0
    features = view.cold.encoder.transform(item_records([item_features_text(obj)], diversity_keys([key])))
    if features.nnz == 0:
        return 0
    # Only an item placed before (saved again) can have rows among other readers' picks: a new one skips that scan.
    again = BuildArtifact.objects.filter(build_id=build_id, name=f"{EXTENSION_PREFIX}{key[0]}:{key[1]}").exists()
    extension_save(build_id, key, features, view.cold.model.map_items(features))
    view = cold_view(state)
    return _picks_insert(build_id, state, view, key, again)


def _picks_insert(build_id: int, state, view, key: tuple[int, str], again: bool) -> int:
    """Insert the item ``key`` of ``view``'s extension into the picks of the readers it matches."""
    target = view.ext_positions[key]
    rows = state.user_items
    users, new, best = _matching_readers(state, view, key, target)
    item_rows = UserRecommendation.objects.filter(build_id=build_id, content_type_id=key[0], object_id=key[1])
    if not len(users):
        if again:
            with transaction.atomic():
                item_rows.delete()
        return 0
    pks = [user_pk(state.user_keys[u]) for u in users.tolist()]
    db_ids = db_user_ids(pks)
    user_dbs = [db_ids[pk] for pk in pks]
    nearest = view.nearest_in_rows(rows[users], target)
    scale, stored, earlier = _stored_scores(build_id, pks, user_dbs, key)
    scores = (new[users] / best[users] * scale.astype(np.float32)).astype(np.float64)  # float32, as the blend's
    ranks = 1 + np.bincount(stored[0], weights=stored[1] >= scores[stored[0]], minlength=len(users)).astype(np.int64)
    titles = get_adapter().item_titles({view.key(int(p)) for p in np.unique(nearest[nearest >= 0])})
    cache: dict = {}
    texts = {p: new_explanations(view, np.asarray([p]), np.ones(1), [target], titles, {}, cache)[target]
             for p in np.unique(nearest[nearest >= 0]).tolist()}
    placed = np.flatnonzero(nearest >= 0)
    out = [(build_id, user_dbs[i], key[0], key[1], int(ranks[i]), float(scores[i]), texts[int(nearest[i])], "refresh")
           for i in placed.tolist()]
    with transaction.atomic():
        if again:
            item_rows.delete()
        elif earlier:  # rows a refresh wrote since the item was mapped: replaced, not doubled
            item_rows.filter(user__in=earlier).delete()
        rows_insert(UserRecommendation, PICK_COLUMNS, out)
        payloads.user_payloads_invalidate()
    logger.info("New item %s:%s placed in the picks of %s readers.", key[0], key[1], len(out))
    return len(out)


def _matching_readers(state, view, key: tuple[int, str], target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the readers the item matches, and every reader's cold score of it and best cold score of its model."""
    rows = state.user_items
    every = np.arange(rows.shape[0])
    kth, best = _model_thresholds(state, view, key[0])
    new = cold_scores(view.cold.model, rows, view.mapped[target : target + 1], every).ravel()
    return np.flatnonzero((new > 0) & (new >= kth) & (best > 0)), new, best


def _model_thresholds(state, view, content_type_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each reader's ``MATCH_TOP``-th and best cold score over the build's unseen items of one model.

    They depend on the build alone, so each worker process computes them once per build and model.
    """
    cache = view.cold.thresholds
    if content_type_id not in cache:
        rows = state.user_items
        # Lists are kept per item model: the item competes with the build's items of its own model.
        same = np.flatnonzero(np.asarray([k[0] for k in state.item_map], dtype=np.int64) == content_type_id)
        cold = cold_scores(view.cold.model, rows, view.mapped[same], np.arange(rows.shape[0]))
        seen_rows, seen_cols = rows[:, same].nonzero()
        cold[seen_rows, seen_cols] = -np.inf
        k = min(MATCH_TOP, cold.shape[1] // 4)  # a small catalogue: the best quarter
        kth = -np.partition(-cold, k - 1, axis=1)[:, k - 1] if k else np.full(cold.shape[0], -np.inf)
        cache[content_type_id] = (kth, cold.max(axis=1, initial=-np.inf))
    return cache[content_type_id]


def _stored_scores(build_id: int, pks: list, user_dbs: list, key: tuple[int, str]):
    """Return each reader's scale for the item (as :func:`blend_scores` scales cold scores), every stored pick
    of theirs as (reader index, score) arrays, and the readers who have the item already: one query for all."""
    index = {value: i for i, (pk, db) in enumerate(zip(pks, user_dbs)) for value in (pk, db)}
    picks = list(UserRecommendation.objects.filter(build_id=build_id, user__in=pks)
                 .values_list("user_id", "content_type_id", "score", "object_id"))
    earlier = {p[0] for p in picks if p[1] == key[0] and p[3] == key[1]}
    reader = np.fromiter((index[p[0]] for p in picks), dtype=np.int64, count=len(picks))
    model = np.fromiter((p[1] for p in picks), dtype=np.int64, count=len(picks))
    score = np.fromiter((p[2] for p in picks), dtype=np.float64, count=len(picks))
    mine = np.flatnonzero(model == key[0])
    own = _kth_stored(reader[mine], score[mine], len(pks))
    overall = _kth_stored(reader, score, len(pks))
    # The blend's rule: without picks of the item's model, a thousandth of the reader's scale (never on top).
    scale = np.where(np.isnan(own), NO_SIGNAL_SHARE * overall, own)
    return np.where(np.isnan(scale), 1.0, scale), (reader, score), earlier


def _kth_stored(reader: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Return each of ``n`` readers' ``COLD_SCALE_RANK``-th best score (their last in a shorter list, else NaN)."""
    order = np.lexsort((-score, reader))
    counts = np.bincount(reader[order], minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    at = np.clip(starts + np.minimum(counts, COLD_SCALE_RANK) - 1, 0, max(len(order) - 1, 0))
    return np.where(counts > 0, score[order][at] if len(order) else np.nan, np.nan)
