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
    # Lists are kept per item model: the item competes with the build's items of its own model.
    same = np.flatnonzero(np.asarray([k[0] for k in state.item_map], dtype=np.int64) == key[0])
    every = np.arange(rows.shape[0])
    cold = cold_scores(view.cold.model, rows, view.mapped[same], every)
    seen_rows, seen_cols = rows[:, same].nonzero()
    cold[seen_rows, seen_cols] = -np.inf
    new = cold_scores(view.cold.model, rows, view.mapped[target : target + 1], every).ravel()
    k = min(MATCH_TOP, cold.shape[1] // 4)  # a small catalogue: the best quarter
    kth = -np.partition(-cold, k - 1, axis=1)[:, k - 1] if k else np.full(len(new), -np.inf)
    best = cold.max(axis=1, initial=-np.inf)
    users = np.flatnonzero((new > 0) & (new >= kth) & (best > 0))
    item_rows = UserRecommendation.objects.filter(build_id=build_id, content_type_id=key[0], object_id=key[1])
    if not len(users):
        if again:
            with transaction.atomic():
                item_rows.delete()
        return 0
    pks = [user_pk(state.user_keys[u]) for u in users.tolist()]
    db_ids = db_user_ids(pks)
    # The reader's COLD_SCALE_RANK-th score of the item's model (or their last, in a shorter list), as the blend scales.
    stored: dict = {}
    for user_id, score in (UserRecommendation.objects.filter(build_id=build_id, user__in=pks, content_type_id=key[0])
                           .values_list("user_id", "score")):
        stored.setdefault(user_id, []).append(score)
    scale = {user_id: sorted(scores, reverse=True)[: COLD_SCALE_RANK][-1] for user_id, scores in stored.items()}
    nearest = {u: view.nearest_in_history(rows.indices[rows.indptr[u]:rows.indptr[u + 1]],
                                          rows.data[rows.indptr[u]:rows.indptr[u + 1]], [target]).get(target)
               for u in users.tolist()}
    titles = get_adapter().item_titles({view.key(p) for p in nearest.values() if p is not None})
    texts: dict = {}
    picks = []
    for u, pk in zip(users.tolist(), pks):
        if nearest[u] is None:
            continue
        score = float(new[u] / best[u] * scale.get(db_ids[pk], scale.get(pk, 1.0)))
        text = new_explanations(view, np.asarray([nearest[u]]), np.ones(1), [target], titles, set(), texts)[target]
        picks.append((pk, db_ids[pk], score, text))
    # Its rank: after the reader's picks that score higher. The others keep theirs (serving orders by score).
    higher: dict = {}
    for user_id, score in UserRecommendation.objects.filter(build_id=build_id, user__in=pks).values_list("user_id",
                                                                                                      "score"):
        higher[user_id] = higher.get(user_id, [])
        higher[user_id].append(score)
    out = [(build_id, user_db, key[0], key[1], 1 + sum(s >= score for s in higher.get(user_db, higher.get(pk, []))),
            score, text, "refresh") for pk, user_db, score, text in picks]
    with transaction.atomic():
        (item_rows if again else item_rows.filter(user__in=pks)).delete()
        rows_insert(UserRecommendation, PICK_COLUMNS, out)
        payloads.user_payloads_invalidate()
    logger.info("New item %s:%s placed in the picks of %s readers.", key[0], key[1], len(out))
    return len(out)
