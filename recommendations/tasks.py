"""Provides the Celery tasks of the recommendations app, the chord of a full build, and the requests that queue them.

Tasks take ids, never objects, and are idempotent, so ``acks_late`` is safe: a task redelivered
after a worker died redoes its work and reaches the same state. Nobody waits for the result of a
task but the chord's members, so the others ignore their results: queuing them then never
subscribes to the result store, which could hang a request while the broker is down.
``full_build_start`` and ``user_refresh_request`` are the two ways work gets queued.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import chord, shared_task
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import refresh
from .build import parts, pipeline
from .build.errors import BuildAlreadyRunning
from .build.lease import build_lock_holder
from .conf import app_settings
from .impressions import rollup
from .models import BuildRun, UserRefresh

logger = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}
# The chord's members report to its callback, through the result backend; nothing else is awaited.
CHORD_MEMBER_OPTIONS = {**TASK_OPTIONS, "ignore_result": False}
FIRE_AND_FORGET_OPTIONS = {**TASK_OPTIONS, "ignore_result": True}


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


# --- the full build -------------------------------------------------------------------------------


@shared_task(name="recommendations.full_build_fan_out", **FIRE_AND_FORGET_OPTIONS)
def full_build_fan_out(build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    """Prepare build ``build_id`` (a new one when None), then fan its parts and user chunks out over the workers.

    The parts and the chunks go as one chord whose callback is ``build_finalize``. Without a
    ``build_id`` (the schedule) it skips while another build runs. Return the build's id, or None when skipped.
    """
    if build_id is None:
        if build_lock_holder() is not None:
            logger.info("Skipping a scheduled build: another build is running.")
            return None
        build_id = pipeline.build_create(triggered_by=triggered_by).pk
    chunks = pipeline.build_prepare(build_id=build_id, parts_inline=False)
    if chunks is None:
        return build_id
    options = send_options()
    # The parts go first: each is longer than a chunk, and a worker that takes one early overlaps it
    # with the other workers' chunks instead of finishing last.
    header = [build_part.si(build_id, part).set(**options) for part in parts.BUILD_PARTS]
    header += [build_score_chunk.si(build_id, start, stop).set(**options) for start, stop in chunks]
    chord(header)(build_finalize.si(build_id).set(**options))
    return build_id


@shared_task(name="recommendations.build_part", **CHORD_MEMBER_OPTIONS)
def build_part(build_id: int, part: str) -> int:
    """Fit and store one part of a build (its neighbour lists or its rating model) beside the user chunks."""
    try:
        return parts.build_part(build_id=build_id, part=part)
    except Exception as exc:
        pipeline.build_fail(build_id=build_id, error=exc)
        raise


@shared_task(name="recommendations.build_score_chunk", **CHORD_MEMBER_OPTIONS)
def build_score_chunk(build_id: int, start: int, stop: int) -> int:
    """Score and store the picks of users ``start:stop`` of a build."""
    try:
        return pipeline.build_score_chunk(build_id=build_id, start=start, stop=stop)
    except Exception as exc:
        pipeline.build_fail(build_id=build_id, error=exc)
        raise


@shared_task(name="recommendations.build_finalize", **CHORD_MEMBER_OPTIONS)
def build_finalize(build_id: int) -> int:
    """Make a build active once all its chunks are stored, then queue the pruning of old builds."""
    build = pipeline.build_finalize(build_id=build_id, prune=False)
    builds_prune.apply_async(**send_options())
    return build.pk


@shared_task(name="recommendations.builds_prune", **FIRE_AND_FORGET_OPTIONS)
def builds_prune() -> None:
    """Delete the results of builds no longer kept."""
    pipeline.builds_prune()


def full_build_start(*, triggered_by: str = "api") -> BuildRun:
    """Create a queued build and queue its ``full_build_fan_out`` task after commit.

    Raises ``BuildAlreadyRunning`` when another build holds the lock. When the broker cannot be
    reached (within about a second) the build is marked failed, with the reason as its ``error``.
    """
    holder = build_lock_holder()
    if holder is not None:
        raise BuildAlreadyRunning(
            f"A full build is already running ({holder.owner.split('@')[0]}, since "
            f"{holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish."
        )
    build = pipeline.build_create(triggered_by=triggered_by)

    def queue() -> None:
        try:
            full_build_fan_out.apply_async(args=[build.pk], **publish_options())
        except Exception as exc:  # The broker is down: a build left "queued" would never run.
            logger.warning("Could not queue build #%s (%r).", build.pk, exc)
            build.status = BuildRun.Status.FAILED
            build.error = f"The build could not be queued: the broker is unreachable ({exc})."
            pipeline.build_fail(build_id=build.pk, error=build.error)

    transaction.on_commit(queue)
    return build


# --- incremental updates ---------------------------------------------------------------------------


@shared_task(name="recommendations.user_refresh", **FIRE_AND_FORGET_OPTIONS)
def user_refresh(user_id: str) -> int:
    """Recompute one user's picks from the active model."""
    return refresh.user_refresh(user_id=user_id)


@shared_task(name="recommendations.item_content_refresh", **FIRE_AND_FORGET_OPTIONS)
def item_content_refresh(content_type_id: int, object_id: str) -> int:
    """Recompute one item's content neighbours."""
    return refresh.item_content_refresh(content_type_id=content_type_id, object_id=object_id)


@shared_task(name="recommendations.pending_refreshes_run", **FIRE_AND_FORGET_OPTIONS)
def pending_refreshes_run() -> int:
    """Refresh every user whose refresh could not be queued (e.g. while the broker was down)."""
    return refresh.pending_refreshes_run()


def user_refresh_request(*, user_id: Any) -> None:
    """Ask for ``user_id``'s picks to be refreshed soon; debounced, safe to call on every write.

    The request is recorded in the database first, so that if the broker is down the refresh
    is not lost: ``pending_refreshes_run`` (and the next full build) pick up every pending user.
    """
    now = timezone.now()
    try:
        state, created = UserRefresh.objects.get_or_create(user_id=user_id, defaults={"requested_at": now})
    except IntegrityError:  # The user was deleted meanwhile: there is nothing left to refresh.
        return
    if not created:
        UserRefresh.objects.filter(pk=state.pk).update(requested_at=now)
    debounce = timedelta(seconds=app_settings.REFRESH_DEBOUNCE_SECONDS)
    recently_queued = (
        state.queued_at is not None
        and state.queued_at > now - debounce
        and (state.refreshed_at is None or state.refreshed_at < state.queued_at)
    )
    if recently_queued and not created:
        return  # A refresh queued moments ago has not run yet; it will see this change too.
    try:
        user_refresh.apply_async(args=[str(user_id)], countdown=app_settings.REFRESH_DEBOUNCE_SECONDS,
                                 **publish_options())
    except Exception as exc:  # The broker is down: the request stays pending in the database.
        logger.warning("Could not queue the refresh of user %s (%r); it stays pending.", user_id, exc)
        return
    UserRefresh.objects.filter(pk=user_id).update(queued_at=now)


def users_changed_requeue(*, build: BuildRun) -> None:
    """After a switch, ask again for the refreshes that arrived while ``build`` read its data."""
    for user_id in refresh.users_changed_since(build):
        user_refresh_request(user_id=user_id)


# --- the names two tasks had before; a message queued before an upgrade still carries them -------


@shared_task(name="recommendations.impressions_daily_run", **FIRE_AND_FORGET_OPTIONS)
def impressions_daily_run() -> dict:
    """Roll up the online metrics of the last two days and purge impressions past their retention."""
    return rollup.impressions_daily_run()


@shared_task(name="recommendations.full_build", **FIRE_AND_FORGET_OPTIONS)
def full_build_old_name(build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    """The former name of ``full_build_fan_out`` (beat rows are renamed after ``migrate``)."""
    return full_build_fan_out(build_id=build_id, triggered_by=triggered_by)


@shared_task(name="recommendations.refresh_pending_users", **FIRE_AND_FORGET_OPTIONS)
def refresh_pending_users_old_name() -> int:
    """The former name of ``pending_refreshes_run``."""
    return refresh.pending_refreshes_run()
