"""Provides the Celery tasks of the recommendations app: thin wrappers over ``services``.

Tasks take ids, never objects, and are idempotent, so ``acks_late`` is safe: a task
redelivered after a worker died redoes its work and reaches the same state.
"""
from __future__ import annotations

import logging

from celery import chord, shared_task

from . import services
from .conf import app_settings

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


def _options() -> dict:
    return {"queue": app_settings.QUEUE} if app_settings.QUEUE else {}


@shared_task(name="recommendations.full_build", **TASK_OPTIONS)
def full_build(build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    """Prepare build ``build_id`` (a new one when None), then fan its parts and user chunks out over the workers."""
    from .models import BuildRun

    if build_id is None:
        if services.build_lock_holder() is not None:
            logger.info("Skipping a scheduled build: another build is running.")
            return None
        build_id = BuildRun.objects.create(triggered_by=triggered_by, algorithm=services._algorithm()[0]).pk
    chunks = services.build_prepare(build_id=build_id, parts_inline=False)
    if chunks is None:
        return build_id
    # The parts go first: each is longer than a chunk, and a worker that takes one early overlaps it
    # with the other workers' chunks instead of finishing last.
    header = [build_part.si(build_id, part).set(**_options()) for part in services.BUILD_PARTS]
    header += [build_score_chunk.si(build_id, start, stop).set(**_options()) for start, stop in chunks]
    callback = build_finalize.si(build_id).set(**_options())
    chord(header)(callback)
    return build_id


@shared_task(name="recommendations.build_part", **TASK_OPTIONS)
def build_part(build_id: int, part: str) -> int:
    """Fit and store one part of a build (its neighbour lists or its rating model) beside the user chunks."""
    try:
        return services.build_part(build_id=build_id, part=part)
    except Exception as exc:
        services.build_fail(build_id=build_id, error=exc)
        raise


@shared_task(name="recommendations.build_score_chunk", **TASK_OPTIONS)
def build_score_chunk(build_id: int, start: int, stop: int) -> int:
    """Score and store the picks of users ``start:stop`` of a build."""
    try:
        return services.build_score_chunk(build_id=build_id, start=start, stop=stop)
    except Exception as exc:
        services.build_fail(build_id=build_id, error=exc)
        raise


@shared_task(name="recommendations.build_finalize", **TASK_OPTIONS)
def build_finalize(build_id: int) -> int:
    """Make a build active once all its chunks are stored."""
    return services.build_finalize(build_id=build_id).pk


@shared_task(name="recommendations.user_refresh", **TASK_OPTIONS)
def user_refresh(user_id: str) -> int:
    """Recompute one user's picks from the active model."""
    return services.user_refresh(user_id=user_id)


@shared_task(name="recommendations.item_content_refresh", **TASK_OPTIONS)
def item_content_refresh(content_type_id: int, object_id: str) -> int:
    """Recompute one item's content neighbours."""
    return services.item_content_refresh(content_type_id=content_type_id, object_id=object_id)


@shared_task(name="recommendations.refresh_pending_users", **TASK_OPTIONS)
def refresh_pending_users() -> int:
    """Refresh every user whose refresh could not be queued (e.g. while the broker was down)."""
    users = services.pending_refresh_users()
    for user_id in users:
        services.user_refresh(user_id=user_id)
    return len(users)
