"""Provides the stages of a full build: prepare, score chunks, finalize, fail, prune and activate.

A full build goes through five stages, each timed on its ``BuildRun``:

1. **load**: the adapter reads every interaction and item text; the feedback model turns them
   into one confidence matrix (``user_items``) plus a matrix of negative signals (``load``).
2. **fit**: the configured algorithm is fitted and popularity is counted. The fitted model and
   the index maps are saved as artifacts so that other workers can score (``state``). The
   *parts* (neighbour lists and the star predictor, ``parts``) are fitted here or, from the
   ``full_build_fan_out`` task, as ``build_part`` tasks beside the user chunks.
3. **score**: users are split into chunks of ``BUILD_CHUNK_SIZE``; each chunk is scored and
   written by its own task (``build_score_chunk``), so a build fans out over every worker.
4. **write**: neighbours, popular lists and per-user picks are bulk-inserted under the new
   build's id. Nothing is visible yet: serving reads only the active build.
5. **switch**: one transaction marks the new build active and the old one inactive (only once
   every part is stored; otherwise the build fails), then ``build_switched`` is sent.

A crash anywhere before the switch leaves the previous build active. The lease (``lease``) lets
one full build run at a time. Tasks are idempotent: scoring a chunk (or fitting a part) first
checks for (or deletes) what an earlier delivery of the same chunk (or part) wrote.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from ..adapters import get_adapter
from ..algorithms import get_estimator
from ..algorithms.base import topk_sparse_rows
from ..conf import app_settings
from ..db.bulk import rows_insert
from ..db.sqlite_locked import retry_when_locked
from ..experiments.models import Arm, Experiment
from ..experiments.picks import arm_picks_build
from ..models import BuildRun, PopularItem, UserRecommendation
from .cold import cold_fit
from .config import algorithm_settings, build_algorithm_settings
from .errors import BuildError
from .lease import build_lock_acquire, build_lock_extend, build_lock_holder, build_lock_release
from .load import LoadedData, build_load, fit_inputs, recent_counts
from .parts import BUILD_PARTS, PART_COUNTS, part_inputs_save, part_store, parts_fit
from .progress import StageTimer, build_add, build_write_lock, picks_stored
from .rows import PICK_COLUMNS, POPULAR_COLUMNS, history_keys, pick_rows, popular_rows, user_pk
from .state import build_rows_delete, build_state, state_save
from .tuning import fit_params, tuning_record

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None] | None

# Sent after a build became active (``build_finalize``), with ``build``: the refresh requests
# that arrived while it read its data are queued again by ``recommendations.signals``.
build_switched = Signal()


def build_create(*, triggered_by: str) -> BuildRun:
    """Create a queued build of the configured algorithm."""
    return BuildRun.objects.create(triggered_by=triggered_by, algorithm=algorithm_settings()[0])


def full_build_run(*, build_id: int | None = None, triggered_by: str = "command", progress: Progress = None) -> BuildRun:
    """Run a whole build in this process (no fan-out) and return it, active."""
    if build_id is None:
        build_id = build_create(triggered_by=triggered_by).pk
    chunks = build_prepare(build_id=build_id, progress=progress)
    if chunks is None:
        return BuildRun.objects.get(pk=build_id)
    try:
        for done, (start, stop) in enumerate(chunks, 1):
            build_score_chunk(build_id=build_id, start=start, stop=stop)
            if progress:
                progress("score", done, len(chunks))
        return build_finalize(build_id=build_id)
    except Exception as exc:
        build_fail(build_id=build_id, error=exc)
        raise


# --- prepare ------------------------------------------------------------------------------------------


def _build_claim(build: BuildRun) -> bool:
    """Take the lease for ``build``; mark it failed (or leave it to its twin) when another holds it."""
    if build.status in (BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED):
        logger.info("Build #%s already %s; nothing to do.", build.pk, build.status)
        return False
    if build_lock_acquire(build_id=build.pk):
        return True
    holder = build_lock_holder()
    if holder is not None and holder.owner.startswith(f"build:{build.pk}@"):
        logger.info("Build #%s is already running elsewhere (%s); this delivery does nothing.", build.pk, holder.owner)
        return False
    build.status = BuildRun.Status.FAILED
    build.error = f"Another full build holds the lock ({holder.owner if holder else 'unknown'})."
    build.finished_at = timezone.now()
    build.save(update_fields=["status", "error", "finished_at"])
    logger.warning("Build #%s refused: %s", build.pk, build.error)
    return False


def _build_fit(build: BuildRun, timer: StageTimer, progress: Progress, parts_inline: bool) -> LoadedData:
    """Load, fit and write what the build's chunks need; fit and store its parts too with ``parts_inline``."""
    with timer.stage("load"):
        data = build_load()
        recent = recent_counts(data)
    if progress:
        progress("load", 1, 1)
    if data.user_items.nnz == 0:
        raise BuildError("There are no interactions to learn from yet.")
    with timer.stage("fit"):
        params, decision = fit_params(build, data.n_events)
        model = get_estimator(build.algorithm, **params)
        model.fit(data.user_items, **fit_inputs(model, data))
        build.tuning = tuning_record(build, model, decision, data.n_events)
        prune_similarity(model)
        popular = popular_rows(build.pk, data, recent)
        parts = parts_fit(build.pk, data, model) if parts_inline else {}
        cold_items = cold_fit(build.pk, data)
    if progress:
        progress("fit", 1, 1)
    with timer.stage("write"):
        state_save(build.pk, data, model)
        rows_insert(PopularItem, POPULAR_COLUMNS, popular)
        counts = {PART_COUNTS[part]: part_store(build.pk, part, result) for part, result in parts.items()}
        if not parts_inline:
            part_inputs_save(build.pk, data)
    with timer.stage("experiments"):
        arms = arm_picks_build(build.pk, data)
    build.counts = {"users": len(data.user_map), "items": len(data.item_map), "interactions": data.n_events,
                    "nonzeros": int(data.user_items.nnz), "cold_items": cold_items, **counts,
                    **({"arms": arms} if arms else {})}
    return data


def build_prepare(*, build_id: int, progress: Progress = None, parts_inline: bool = True) -> list[tuple[int, int]] | None:
    """Load and fit build ``build_id`` and store what its chunks need to score users.

    With ``parts_inline`` the ``BUILD_PARTS`` (neighbour lists, rating model) are fitted and
    stored here too; without it the caller runs each with ``build_part`` (the ``full_build_fan_out``
    task queues them beside the user chunks, so that with several workers they overlap).
    Return the user chunks to score, or ``None`` when the build cannot run (the lock is held
    by another build, or the build already finished).
    """
    build = BuildRun.objects.get(pk=build_id)
    if not _build_claim(build):
        return None
    try:
        # A redelivered task starts this build over: drop what an earlier attempt wrote.
        build_rows_delete(build_id)
        build.algorithm, build.params = build_algorithm_settings()
        build.status, build.started_at = BuildRun.Status.RUNNING, timezone.now()
        build.timings, build.counts, build.tuning, build.data_until = {}, {}, {}, timezone.now()
        build.save()
        data = _build_fit(build, StageTimer(build), progress, parts_inline)
        build.save(update_fields=["timings", "counts", "tuning"])
        build_lock_extend(build_id=build_id)
        return chunk_spans(len(data.user_map), app_settings.BUILD_CHUNK_SIZE)
    except Exception as exc:
        build_fail(build_id=build_id, error=exc)
        raise


def chunk_spans(n_users: int, size: int) -> list[tuple[int, int]]:
    """Cut ``n_users`` into ``ceil(n_users / size)`` chunks of equal size (within one user).

    Equal chunks, not ``size`` users each and a short last one: with few chunks per worker, a
    short last chunk leaves a worker idle while another finishes.
    """
    n_chunks = -(-n_users // size)
    bounds = [round(k * n_users / n_chunks) for k in range(n_chunks + 1)] if n_chunks else [0]
    return list(zip(bounds[:-1], bounds[1:]))


def prune_similarity(model) -> None:
    """Keep the ``MODEL_TOP_K`` strongest entries per row of an item-item model.

    Dense blends (EASE^R) would otherwise store n_items^2 weights; serving and refreshes
    only need each history item's strongest targets.
    """
    similarity = getattr(model, "similarity_", None)
    if similarity is None:
        return
    k = app_settings.MODEL_TOP_K
    similarity = sp.csr_matrix(similarity, dtype=np.float32)
    if similarity.nnz > k * similarity.shape[0]:
        model.similarity_ = topk_sparse_rows(similarity, k)


# --- score ---------------------------------------------------------------------------------------------


@retry_when_locked
def build_score_chunk(*, build_id: int, start: int, stop: int) -> int:
    """Score users ``start:stop`` of a build and write their picks; safe to run twice."""
    build = BuildRun.objects.only("status").get(pk=build_id)
    if build.status != BuildRun.Status.RUNNING:
        return 0
    t0 = time.perf_counter()
    state = build_state(build_id)
    positions = np.arange(start, stop)
    rows = state.user_items[start:stop]
    user_pks = [user_pk(state.user_keys[p]) for p in positions]
    # A build's chunks share titles: fetch each item once per worker process, not once per chunk.
    missing = [key for key in history_keys(state, rows) if key not in state.titles]
    state.titles.update(get_adapter().item_titles(missing) if missing else {})
    t1 = time.perf_counter()
    # Build chunks score training rows: factor models reuse the user factors learned by the fit.
    recs = pick_rows(build_id=build_id, state=state, user_pks=user_pks, rows=rows,
                     negatives=state.negatives[start:stop], titles=state.titles, source="build", users=positions)
    t2 = time.perf_counter()
    with transaction.atomic():
        if not build_write_lock(build_id, f"{start}:{stop}"):
            return 0
        t_locked = time.perf_counter()
        if recs and picks_stored(build_id, recs[0][1]):
            return 0  # an earlier delivery of this chunk stored it (it stores all its rows in one transaction)
        rows_insert(UserRecommendation, PICK_COLUMNS, recs)
    t3 = time.perf_counter()
    # write_picks includes write_wait: the time spent waiting for the chunk's write lock.
    build_add(build_id, {"load_state": t1 - t0, "score": t2 - t1, "write_picks": t3 - t2,
                         "write_wait": t_locked - t2})
    build_lock_extend(build_id=build_id)
    return len(recs)


# --- switch, fail, prune, activate ------------------------------------------------------------------


@retry_when_locked
def build_finalize(*, build_id: int, prune: bool = True) -> BuildRun:
    """Switch the active build to ``build_id`` in one transaction, then prune old builds (unless ``prune`` is False).

    A build whose parts (``BUILD_PARTS``) were not all stored fails instead: the previous build
    stays active. The ``build_finalize`` task prunes in a task of its own, after the switch, so
    the new build is served without waiting for old rows to be deleted.
    """
    t0 = time.perf_counter()
    with transaction.atomic():
        build = BuildRun.objects.select_for_update().get(pk=build_id)
        if build.status != BuildRun.Status.RUNNING:
            return build
        missing = [part for part in BUILD_PARTS if PART_COUNTS[part] not in build.counts]
        if not missing:
            if not build.reactivable:  # a reader was deleted while this build ran
                orphan_picks_delete(build_id)
            build.counts["recommendations"] = UserRecommendation.objects.filter(build_id=build_id).count()
            BuildRun.objects.active().exclude(pk=build_id).update(is_active=False)
            build.is_active = True
            build.status = BuildRun.Status.SUCCEEDED
            build.finished_at = build.activated_at = timezone.now()
            build.timings["switch"] = round(time.perf_counter() - t0, 4)
            build.save()
    if missing:
        error = BuildError(f"Build #{build_id} cannot switch: its part(s) {', '.join(missing)} were not stored.")
        build_fail(build_id=build_id, error=error)
        raise error
    build_lock_release(build_id=build_id)
    if prune:
        builds_prune()
    build_switched.send(sender=BuildRun, build=build)
    logger.info("Build #%s is active: %s", build_id, build.counts)
    return build


def orphan_picks_delete(build_id: int) -> int:
    """Delete the build's picks of users who no longer exist; return how many rows went.

    The picks table has no database constraint on its user (see ``models.RESULT_ROW_KEYS``), so
    a chunk that scored a reader deleted meanwhile stores their rows; Django's cascade ran before.
    """
    users = get_user_model()._default_manager.all()
    deleted, _ = UserRecommendation.objects.filter(build_id=build_id).exclude(user__in=users).delete()
    if deleted:
        logger.info("Build #%s: dropped %s picks of deleted readers.", build_id, deleted)
    return deleted


@retry_when_locked
def build_fail(*, build_id: int, error: BaseException | str) -> None:
    """Mark a build failed, drop its rows and release its lock; the active build is untouched."""
    BuildRun.objects.filter(pk=build_id).exclude(status=BuildRun.Status.SUCCEEDED).update(
        status=BuildRun.Status.FAILED, error=str(error)[:5000], finished_at=timezone.now(), is_active=False
    )
    build_rows_delete(build_id)
    build_lock_release(build_id=build_id)


def builds_prune() -> None:
    """Delete the results of builds no longer kept: beyond the newest ``KEEP_BUILDS`` succeeded, or not reactivable."""
    # Builds computed before a reader was deleted still hold that reader's history: drop their results.
    for build_id in BuildRun.objects.filter(is_active=False, reactivable=False).values_list("pk", flat=True):
        build_rows_delete(build_id)
    keep = list(
        BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED).order_by("-created_at").values_list("pk", flat=True)
    )[: app_settings.KEEP_BUILDS]
    # A build that an experiment arm serves is kept while the experiment may still run.
    keep += list(Arm.objects.filter(build__isnull=False).exclude(experiment__state=Experiment.State.STOPPED)
                 .values_list("build_id", flat=True))
    old = BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED, is_active=False).exclude(pk__in=keep)
    for build_id in old.values_list("pk", flat=True):
        build_rows_delete(build_id)
    old.delete()


def build_activate(*, build_id: int) -> BuildRun:
    """Make a kept, succeeded build the active one (switching back is an admin action)."""
    with transaction.atomic():
        build = BuildRun.objects.select_for_update().get(pk=build_id)
        if build.status != BuildRun.Status.SUCCEEDED:
            raise BuildError(f"Build #{build_id} is {build.status}; only a succeeded build can be made active.")
        if not build.reactivable:
            raise BuildError(f"Build #{build_id} predates a reader's deletion and cannot be made active again.")
        if not UserRecommendation.objects.filter(build_id=build_id).exists() and not PopularItem.objects.filter(
            build_id=build_id
        ).exists():
            raise BuildError(f"Build #{build_id} has no stored results left; run a new build.")
        BuildRun.objects.active().exclude(pk=build_id).update(is_active=False)
        build.is_active = True
        build.activated_at = timezone.now()
        build.save(update_fields=["is_active", "activated_at"])
    return build
