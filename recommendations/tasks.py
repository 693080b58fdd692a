"""Provides the Celery tasks of the recommendations app: thin wrappers over ``services``.

Tasks take ids, never objects, and are idempotent, so ``acks_late`` is safe: a task
redelivered after a worker died redoes its work and reaches the same state.
"""
from __future__ import annotations

from celery import shared_task

from . import services
from .conf import app_settings

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


# Bounded whatever the host's Celery settings say: with the broker down, a save in a web request
# must not wait on Celery's publish retries or on a Redis result store's reconnects.
PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.25}


def send_options() -> dict:
    """Options for sending the app's tasks: the ``QUEUE`` setting's queue where it is set."""
    return {"queue": app_settings.QUEUE} if app_settings.QUEUE else {}


def publish_options() -> dict:
    """Options for queuing a task from a web request: give up within about a second when the broker is down.

    The caller keeps what was asked for in the database (``UserRefresh``), so nothing is lost, and
    nobody waits for these results, so queuing does not subscribe to the result store.
    """
    return {**send_options(), "retry": True, "retry_policy": PUBLISH_RETRY_POLICY, "ignore_result": True}


@shared_task(name="recommendations.full_build_fan_out", **TASK_OPTIONS)
def full_build_fan_out(build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    """Prepare build ``build_id`` (a new one when None), then fan its parts and user chunks out over the workers."""
    return services.full_build_fan_out(build_id=build_id, triggered_by=triggered_by)


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
    """Make a build active once all its chunks are stored, then queue the pruning of old builds."""
    build = services.build_finalize(build_id=build_id, prune=False)
    builds_prune.apply_async(**send_options())
    return build.pk


@shared_task(name="recommendations.builds_prune", **TASK_OPTIONS)
def builds_prune() -> None:
    """Delete the results of builds no longer kept."""
    services.builds_prune()


@shared_task(name="recommendations.user_refresh", **TASK_OPTIONS)
def user_refresh(user_id: str) -> int:
    """Recompute one user's picks from the active model."""
    return services.user_refresh(user_id=user_id)


@shared_task(name="recommendations.item_content_refresh", **TASK_OPTIONS)
def item_content_refresh(content_type_id: int, object_id: str) -> int:
    """Recompute one item's content neighbours."""
    return services.item_content_refresh(content_type_id=content_type_id, object_id=object_id)


@shared_task(name="recommendations.pending_refreshes_run", **TASK_OPTIONS)
def pending_refreshes_run() -> int:
    """Refresh every user whose refresh could not be queued (e.g. while the broker was down)."""
    return services.pending_refreshes_run()


# The names these two tasks had until 2026-11-28. Beat rows are renamed after `migrate`, but a
# message queued before an upgrade still carries the old name: the worker must know it.
@shared_task(name="recommendations.full_build", **TASK_OPTIONS)
def _full_build(build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    return services.full_build_fan_out(build_id=build_id, triggered_by=triggered_by)


@shared_task(name="recommendations.refresh_pending_users", **TASK_OPTIONS)
def _refresh_pending_users() -> int:
    return services.pending_refreshes_run()
