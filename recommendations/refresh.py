"""Provides the incremental updates between full builds: one reader's picks, one item's content neighbours, a forgotten reader.

A reader's picks are recomputed from the active build's model when they rate or read
(``user_refresh``), so a full build is only needed for new neighbours. Requests are recorded in
``UserRefresh`` before they are queued (``recommendations.tasks.user_refresh_request``), so a
refresh the broker lost is still pending here (``pending_refreshes_list``).
"""
from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import payloads
from .adapters import get_adapter
from .algorithms.content import ContentSimilarity
from .algorithms.matrices import IndexMap
from .build.cold import EXTENSION_PREFIX
from .build.errors import BuildError
from .build.load import decay_clock, events_matrix
from .build.rows import PICK_COLUMNS, history_keys, pick_rows, user_pk
from .build.state import build_rows_delete, build_state
from .conf import app_settings
from .db.bulk import rows_insert
from .db.sqlite_locked import retry_when_locked
from .items import items_by_key
from .models import BuildArtifact, BuildRun, PopularItem, SimilarItem, UserRecommendation, UserRefresh

logger = logging.getLogger(__name__)


@retry_when_locked
def user_refresh(*, user_id: Any) -> int:
    """Recompute one user's picks from the active model now; return how many were stored."""
    started = timezone.now()
    build = BuildRun.objects.active().only("pk").first()
    if build is None:
        return 0
    pk = user_pk(str(user_id))
    if not get_user_model()._default_manager.filter(pk=pk).exists():
        return 0  # Deleted since the refresh was queued: picks have no foreign key to refuse them.
    try:
        state = build_state(build.pk)
    except BuildError:
        return 0
    positive, negative, _, _ = events_matrix(
        get_adapter().interaction_columns(user_ids=[pk]), IndexMap([pk]), state.item_map, state.item_words,
        grow_users=False, now=decay_clock(),
    )
    recs: list[tuple] = []
    if positive.nnz:
        titles = get_adapter().item_titles(history_keys(state, positive))  # a refresh shows the current titles
        recs = existing_items_only(pick_rows(build_id=build.pk, state=state, user_pks=[pk], rows=positive,
                                             negatives=negative, titles=titles, source="refresh"))
    try:
        UserRefresh.objects.get_or_create(user_id=pk)
    except IntegrityError:
        return 0  # The user was deleted during the computation.
    with transaction.atomic():
        # One refresh of a user at a time: a twin delivery waits here, then replaces the same rows.
        if UserRefresh.objects.select_for_update().filter(user_id=pk).values_list("pk", flat=True).first() is None:
            return 0  # The user's deletion removed the row meanwhile.
        if not BuildRun.objects.active().filter(pk=build.pk).exists():
            return 0  # A new build became active meanwhile; it will be refreshed by its own switch.
        UserRecommendation.objects.filter(build_id=build.pk, user_id=pk).delete()
        rows_insert(UserRecommendation, PICK_COLUMNS, recs)
        UserRefresh.objects.filter(user_id=pk).update(refreshed_at=started)
        payloads.user_payload_invalidate(user_id=pk)
    return len(recs)


def existing_items_only(recs: list[tuple]) -> list[tuple]:
    """Drop one user's picks whose item was deleted since the build (its model still scores it), re-ranked."""
    found = items_by_key(((row[2], row[3]) for row in recs), queryset=lambda model: model._base_manager.all())
    kept = [row for row in recs if (row[2], row[3]) in found]
    return [(*row[:4], rank, *row[5:]) for rank, row in enumerate(kept, 1)]


def pending_refreshes_list(*, limit: int = 1000) -> list[Any]:
    """Return users whose refresh was asked for and not done (e.g. the broker was down)."""
    return list(
        UserRefresh.objects.filter(Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=F("requested_at")))
        .values_list("user_id", flat=True)[:limit]
    )


def pending_refreshes_run() -> int:
    """Refresh, in this process, every user whose refresh was asked for and not done; return how many."""
    users = pending_refreshes_list()
    for user_id in users:
        user_refresh(user_id=user_id)
    return len(users)


def users_changed_since(build: BuildRun) -> list[Any]:
    """Return the users who asked for a refresh after ``build`` read its data (its picks miss their change)."""
    if build.data_until is None:
        return []
    return list(UserRefresh.objects.filter(requested_at__gt=build.data_until).values_list("user_id", flat=True))


def _content_rows_delete(build_id: int, content_type_id: int, object_id: str) -> None:
    SimilarItem.objects.filter(build_id=build_id, kind=SimilarItem.Kind.CONTENT,
                               content_type_id=content_type_id, object_id=object_id).delete()


def item_content_refresh(*, content_type_id: int, object_id: str) -> int:
    """Recompute the content neighbours of one item in the active build; return how many were stored."""
    build = BuildRun.objects.active().only("pk").first()
    if build is None:
        return 0
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    adapter = get_adapter()
    if model is None or not adapter.text_fields(model):
        return 0
    object_id = str(object_id)
    pairs = list(adapter.item_texts(model))
    ids = [object_id_ for object_id_, _ in pairs]
    if object_id not in ids or len(pairs) < 2:
        with transaction.atomic():
            _content_rows_delete(build.pk, content_type_id, object_id)
            payloads.user_payloads_invalidate()
        return 0
    content = ContentSimilarity(top_k=app_settings.N_SIMILAR).fit([text for _, text in pairs])
    source = ids.index(object_id)
    idx, scores = content.similar_items(source, n=app_settings.N_SIMILAR)
    rows = [
        SimilarItem(build_id=build.pk, kind=SimilarItem.Kind.CONTENT, content_type_id=content_type_id,
                    object_id=object_id, target_content_type_id=content_type_id, target_object_id=ids[t],
                    rank=rank, score=float(s))
        for rank, (t, s) in enumerate(((t, s) for t, s in zip(idx, scores) if s > 0 and t != source), 1)
    ]
    with transaction.atomic():
        _content_rows_delete(build.pk, content_type_id, object_id)
        SimilarItem.objects.bulk_create(rows)
        payloads.user_payloads_invalidate()  # cold readers' picks come from content neighbours
    return len(rows)


def item_rows_forget(*, content_type_id: int, object_id: str) -> int:
    """Drop every stored row that points at a deleted item, in every build; return how many.

    Its neighbours and the lists it is a neighbour in, the picks and the popular lists it is in:
    serving would skip the missing item and show a short list until the next build.
    """
    item = Q(content_type_id=content_type_id, object_id=str(object_id))
    target = Q(target_content_type_id=content_type_id, target_object_id=str(object_id))
    deleted = SimilarItem.objects.filter(item | target).delete()[0]
    deleted += UserRecommendation.objects.filter(item).delete()[0]
    deleted += PopularItem.objects.filter(item).delete()[0]
    # A new item mapped since its build (build.cold): later refreshes must not score it again.
    deleted += BuildArtifact.objects.filter(name=f"{EXTENSION_PREFIX}{content_type_id}:{object_id}").delete()[0]
    return deleted


def user_data_forget(*, user_id: Any) -> None:
    """Forget a deleted reader in stored results.

    Their own rows go with the user (``on_delete=CASCADE``). Every existing build was computed
    with their history, so none may be made active again, and the finished inactive ones lose
    their results now; the active one is replaced, without them, by the next build. A running
    build is treated like the active one: it finishes (its finalize drops the picks its chunks
    still wrote for this reader) and is replaced by the next build.
    """
    BuildRun.objects.filter(reactivable=True).update(reactivable=False)
    finished = BuildRun.objects.filter(is_active=False).exclude(status__in=[BuildRun.Status.RUNNING,
                                                                            BuildRun.Status.QUEUED])
    for build_id in finished.values_list("pk", flat=True):
        build_rows_delete(build_id)
    logger.info("Reader %s deleted: older builds can no longer be made active.", user_id)
