"""Provides the build pipeline and the incremental updates of the recommendations app.

A full build goes through five stages, each timed on its ``BuildRun``:

1. **load**: the adapter reads every interaction and item text; the feedback model turns
   them into one confidence matrix (``user_items``) plus a matrix of negative signals.
2. **fit**: the configured algorithm (``auto`` by default) is fitted and popularity is counted.
   The fitted model and the index maps are saved as ``BuildArtifact`` rows so that other workers
   can score. The *parts* (``BUILD_PARTS``: neighbour lists, with content similarity (TF-IDF)
   per item model, and the star predictor) are fitted in the prepare step, or, from the
   ``full_build_fan_out`` task, as ``build_part`` tasks beside the user chunks.
3. **score**: users are split into chunks of ``BUILD_CHUNK_SIZE``; each chunk is scored and
   written by its own task (``build_score_chunk``), so a build fans out over every worker.
4. **write**: neighbours, popular lists and per-user picks are bulk-inserted under the new
   build's id. Nothing is visible yet: serving reads only the active build.
5. **switch**: one transaction marks the new build active and the old one inactive (only
   once every part is stored; otherwise the build fails).

A crash anywhere before the switch leaves the previous build active. Builds are guarded by
a lease (``BuildLock``) so only one full build runs at a time; a lease from a dead worker
expires after ``LOCK_TIMEOUT`` seconds. Tasks are idempotent: scoring a chunk (or fitting a
part) first deletes what an earlier delivery of the same chunk (or part) wrote.

Trade-off: per-user picks of the whole population are precomputed (cheap to serve, costly
to build), and a reader's own picks are refreshed incrementally from the active model when
they rate or read (``user_refresh``), so a full build is only needed for new neighbours.
"""
from __future__ import annotations

import functools
import io
import json
import random
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, OperationalError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from . import payloads
from .adapters import InteractionColumns, get_adapter
from .algorithms import get_estimator, load_model
from .algorithms.base import topk_dense_rows
from .algorithms.matrices import IndexMap
from .conf import app_settings
from .models import (
    BuildArtifact,
    BuildLock,
    BuildRun,
    ItemRule,
    PopularItem,
    SimilarItem,
    UserRecommendation,
    UserRefresh,
)

logger = logging.getLogger(__name__)

FULL_BUILD_LOCK = "full-build"
Progress = Callable[[str, int, int], None] | None


class BuildAlreadyRunning(Exception):
    """Raised when a full build is asked for while another one holds the lock."""


class BuildError(Exception):
    """Raised when a build cannot run (no data, a broken artifact…)."""


# --- writes on SQLite ---------------------------------------------------------------------------------

LOCKED_RETRIES = 10  # about 13 s of backoff in all, on top of the database's own busy timeout


def _retry_when_locked(func):
    """Run a write again when SQLite reports the database locked, unless an outer transaction must roll back first.

    Several workers write one build at once. SQLite with Django's default options (deferred
    transactions, a 5 s busy timeout) answers "database is locked" to a transaction that read
    before it wrote while another holds the write lock, and to any write that waits longer than
    the timeout; the transaction is rolled back, so running it again is safe.
    """
    @functools.wraps(func)
    def run(*args, **kwargs):
        connection = connections[router.db_for_write(BuildRun)]
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if (connection.vendor != "sqlite" or "locked" not in str(exc) or connection.in_atomic_block
                        or attempt == LOCKED_RETRIES):
                    raise
                delay = min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0)
                logger.info("%s: the database is locked; trying again in %.2f s.", func.__name__, delay)
                time.sleep(delay)
    return run


# --- the lock -------------------------------------------------------------------------------------


def _owner(build_id: int) -> str:
    # One owner per delivery: two copies of the same task (two processes or threads) never share it.
    return f"build:{build_id}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@_retry_when_locked
def build_lock_acquire(*, build_id: int) -> bool:
    """Take the full-build lease for ``build_id``; return False while another live lease exists.

    A live lease is never shared, not even with another delivery of the same build: a task
    delivered twice at once runs once. A lease past its expiry belongs to a dead worker; it is
    taken over, and the build that held it (if another one) is marked failed.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=app_settings.LOCK_TIMEOUT)
    owner = f"{_owner(build_id)}:{uuid.uuid4().hex[:8]}"  # unique even for a retry in the same thread
    with transaction.atomic():
        lock = BuildLock.objects.select_for_update().filter(name=FULL_BUILD_LOCK).first()
        if lock is None:
            try:
                with transaction.atomic():
                    BuildLock.objects.create(name=FULL_BUILD_LOCK, owner=owner, acquired_at=now, expires_at=expires)
                return True
            except IntegrityError:
                return False
        if lock.expires_at > now:
            return False
        logger.warning("Taking over a stale build lock held by %s since %s", lock.owner, lock.acquired_at)
        stale_build = lock.owner.split("@")[0].removeprefix("build:")
        if stale_build.isdigit() and int(stale_build) != build_id:
            BuildRun.objects.filter(pk=int(stale_build), status=BuildRun.Status.RUNNING).update(
                status=BuildRun.Status.FAILED, finished_at=now,
                error="Its worker stopped before it finished (the build lock expired).",
            )
        lock.owner, lock.acquired_at, lock.expires_at = owner, now, expires
        lock.save()
        return True


@_retry_when_locked
def build_lock_extend(*, build_id: int) -> None:
    """Push the lease's expiry forward (a heartbeat between stages)."""
    BuildLock.objects.filter(name=FULL_BUILD_LOCK, owner__startswith=f"build:{build_id}@").update(
        expires_at=timezone.now() + timedelta(seconds=app_settings.LOCK_TIMEOUT)
    )


@_retry_when_locked
def build_lock_release(*, build_id: int) -> None:
    BuildLock.objects.filter(name=FULL_BUILD_LOCK, owner__startswith=f"build:{build_id}@").delete()


def build_lock_break(*, force: bool = False) -> str:
    """Release the full-build lease (its worker died) and fail the build that held it.

    Without ``force`` only an expired lease is released; a live one may belong to a build
    that is still working. Return what was done, or "" when the lock was free.
    """
    with transaction.atomic():
        lock = BuildLock.objects.select_for_update().filter(name=FULL_BUILD_LOCK).first()
        if lock is None:
            return ""
        if lock.expires_at > timezone.now() and not force:
            raise BuildError(
                f"The lock is held by {lock.owner} until {lock.expires_at:%H:%M:%S} UTC and may still be in use; "
                "use --force if its worker is dead."
            )
        holder = lock.owner.split("@")[0].removeprefix("build:")
        lock.delete()
    if holder.isdigit():
        BuildRun.objects.filter(pk=int(holder), status__in=[BuildRun.Status.RUNNING, BuildRun.Status.QUEUED]).update(
            status=BuildRun.Status.FAILED, finished_at=timezone.now(), error="Its lock was released by an operator."
        )
        _build_rows_delete(int(holder))
    return f"Released the lock of build #{holder}; that build is marked failed."


def build_lock_holder() -> BuildLock | None:
    """Return the live lease, if a build holds one."""
    return BuildLock.objects.filter(name=FULL_BUILD_LOCK, expires_at__gt=timezone.now()).first()


# --- starting builds ---------------------------------------------------------------------------------


def full_build_start(*, triggered_by: str = "api") -> BuildRun:
    """Create a queued build and queue its task after commit.

    Raises ``BuildAlreadyRunning`` when another build holds the lock. When the broker cannot be
    reached (within about a second) the build is marked failed, with the reason as its ``error``.
    """
    from .tasks import full_build_fan_out as full_build_fan_out_task, publish_options

    holder = build_lock_holder()
    if holder is not None:
        raise BuildAlreadyRunning(
            f"A full build is already running ({holder.owner.split('@')[0]}, since "
            f"{holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish."
        )
    build = BuildRun.objects.create(triggered_by=triggered_by, algorithm=_algorithm()[0])

    def queue() -> None:
        try:
            full_build_fan_out_task.apply_async(args=[build.pk], **publish_options())
        except Exception as exc:  # The broker is down: a build left "queued" would never run.
            logger.warning("Could not queue build #%s (%r).", build.pk, exc)
            build.status = BuildRun.Status.FAILED
            build.error = f"The build could not be queued: the broker is unreachable ({exc})."
            build_fail(build_id=build.pk, error=build.error)

    transaction.on_commit(queue)
    return build


def full_build_fan_out(*, build_id: int | None = None, triggered_by: str = "schedule") -> int | None:
    """Prepare build ``build_id`` (a new one when None), then fan its parts and user chunks out over the workers.

    Runs in a worker (the ``full_build_fan_out`` task): the parts and the chunks go as one Celery
    chord whose callback is ``build_finalize``. Without a ``build_id`` (the schedule) it skips
    while another build runs. Return the build's id, or None when skipped.
    """
    from celery import chord

    from . import tasks

    if build_id is None:
        if build_lock_holder() is not None:
            logger.info("Skipping a scheduled build: another build is running.")
            return None
        build_id = BuildRun.objects.create(triggered_by=triggered_by, algorithm=_algorithm()[0]).pk
    chunks = build_prepare(build_id=build_id, parts_inline=False)
    if chunks is None:
        return build_id
    options = tasks.send_options()
    # The parts go first: each is longer than a chunk, and a worker that takes one early overlaps it
    # with the other workers' chunks instead of finishing last.
    header = [tasks.build_part.si(build_id, part).set(**options) for part in BUILD_PARTS]
    header += [tasks.build_score_chunk.si(build_id, start, stop).set(**options) for start, stop in chunks]
    chord(header)(tasks.build_finalize.si(build_id).set(**options))
    return build_id


def full_build_run(*, build_id: int | None = None, triggered_by: str = "command", progress: Progress = None) -> BuildRun:
    """Run a whole build in this process (no fan-out) and return it, active."""
    if build_id is None:
        build = BuildRun.objects.create(triggered_by=triggered_by, algorithm=_algorithm()[0])
        build_id = build.pk
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


# --- algorithm configuration ----------------------------------------------------------------------


def _algorithm() -> tuple[str, dict[str, Any]]:
    name, params = app_settings.ALGORITHM, dict(app_settings.ALGORITHM_PARAMS)
    if app_settings.ALGORITHM_PARAMS_FILE:
        data = json.loads(Path(app_settings.ALGORITHM_PARAMS_FILE).read_text())
        name, params = data.get("algorithm", name), dict(data.get("params", {}))
    return name, params


def _feedback_config():
    from .algorithms.feedback import FeedbackConfig

    return FeedbackConfig(**app_settings.FEEDBACK)


# --- loading ----------------------------------------------------------------------------------------


@dataclass
class LoadedData:
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


def _events_matrix(cols: InteractionColumns, user_map: IndexMap, item_map: IndexMap,
                   item_words: np.ndarray, *, grow_users: bool, now: float):
    """Turn interaction columns into (positive, negative) confidence matrices with the feedback model.

    Return the two matrices and the positions ``(users, items)`` of every kept event (-1 where
    the item or user is unknown) so callers can reuse them.
    """
    from .algorithms.feedback import FeedbackEvents, confidence_matrix

    items = np.full(len(cols), -1, dtype=np.int64)
    cts = np.asarray(cols.content_type_id, dtype=np.int64)
    for ct in np.unique(cts).tolist():
        rows = np.flatnonzero(cts == ct)
        object_ids = cols.object_id if len(rows) == len(cols) else [cols.object_id[i] for i in rows.tolist()]
        items[rows] = _positions(object_ids, lambda object_id, ct=ct: item_map.get((ct, object_id), -1))
    # dict.fromkeys keeps first appearance: users get the positions the row-by-row loop gave them.
    users = _positions(cols.user_id, user_map.add if grow_users else (lambda u: user_map.get(u, -1)))
    keep = (items >= 0) & (users >= 0)
    # A plain weighted interaction counts as a read (its weight is not used by the feedback model).
    kind = np.where(cols.kind == "weight", "read", cols.kind)
    events = FeedbackEvents(
        user=users[keep], item=items[keep], kind=kind[keep], stars=cols.stars[keep],
        dwell_seconds=cols.dwell_seconds[keep], progress=cols.progress[keep],
        timestamp=np.where(np.isnan(cols.timestamp), now, cols.timestamp)[keep], item_words=item_words,
    )
    positive, negative = confidence_matrix(events, len(user_map), len(item_map), _feedback_config(), now=now)
    return positive.tocsr().astype(np.float32), negative.tocsr().astype(np.float32), users, items


def _positions(keys: list, lookup: Callable[[Any], int]) -> np.ndarray:
    """``[lookup(k) for k in keys]`` as int64, calling ``lookup`` once per distinct key, in first-appearance order.

    A full build maps a million interactions onto a few thousand users and items: one Python
    call per row cost about 3 s of the serial load on MovieLens-1M.
    """
    table = {key: lookup(key) for key in dict.fromkeys(keys)}
    return np.fromiter(map(table.__getitem__, keys), dtype=np.int64, count=len(keys))


def build_load(*, now: float | None = None) -> LoadedData:
    """Read every item text and interaction through the adapter and build the matrices."""
    adapter = get_adapter()
    now = time.time() if now is None else now
    item_map = IndexMap()
    texts: dict[int, list[tuple[str, str]]] = {}
    words: list[float] = []
    for model in adapter.item_models():
        ct_id = ContentType.objects.get_for_model(model).pk
        pairs = list(adapter.item_texts(model)) if adapter.text_fields(model) else [
            (str(pk), "") for pk in adapter.item_queryset(model).values_list("pk", flat=True).iterator()
        ]
        texts[ct_id] = pairs
        for object_id, text in pairs:
            item_map.add((ct_id, object_id))
            words.append(float(len(text.split())) if text else np.nan)
    item_words = np.asarray(words, dtype=np.float64)
    user_map = IndexMap()
    cols = adapter.interaction_columns()
    positive, negative, users, items = _events_matrix(cols, user_map, item_map, item_words, grow_users=True, now=now)
    keep = (users >= 0) & (items >= 0)
    return LoadedData(positive, negative, user_map, item_map, item_words, texts, int(keep.sum()),
                      cols=cols, event_users=users, event_items=items)


# --- artifacts -----------------------------------------------------------------------------------------


@_retry_when_locked
def _artifact_save(build: BuildRun, name: str, writer: Callable[[io.BytesIO], None]) -> None:
    """Store (or replace) the artifact ``name`` of ``build``: the bytes that ``writer`` writes.

    On PostgreSQL with psycopg 3 the row goes in with a binary ``COPY``: a bytes parameter of a
    client-side bound query (Django's default) is inlined in the SQL as hex text, twice its size,
    for PostgreSQL to parse (30 MB: 1.2 s against 0.3 s). The column is stored uncompressed
    (migration 0006): these bytes are mostly floats, which PostgreSQL's compression tried and gave up on.
    """
    buffer = io.BytesIO()
    writer(buffer)
    connection = connections[router.db_for_write(BuildArtifact)]
    with transaction.atomic(using=connection.alias):
        BuildArtifact.objects.filter(build_id=build.pk, name=name).delete()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy"):
                qn = connection.ops.quote_name
                columns = ", ".join(qn(BuildArtifact._meta.get_field(f).column) for f in ("build", "name", "data", "created_at"))
                with cursor.cursor.copy(f"COPY {qn(BuildArtifact._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "text", "bytea", "timestamptz"])
                    copy.write_row([build.pk, name, buffer.getbuffer(), timezone.now()])
                return
        BuildArtifact.objects.create(build_id=build.pk, name=name, data=buffer.getvalue())


def _artifact_bytes(build_id: int, name: str) -> bytes:
    """The bytes of artifact ``name`` of build ``build_id``; on PostgreSQL (psycopg 3) by binary ``COPY``.

    A client-side bound query returns a bytea as hex text, twice its size, that PostgreSQL
    encodes and psycopg decodes: 0.34 s against 0.09 s for an 18 MB model, paid by every
    worker process that loads a build.
    """
    connection = connections[router.db_for_read(BuildArtifact)]
    queryset = BuildArtifact.objects.using(connection.alias).filter(build_id=build_id, name=name).values_list("data")
    if connection.vendor == "postgresql":
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            if hasattr(cursor.cursor, "copy"):
                with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
                    copy.set_types(["bytea"])
                    rows = list(copy.rows())
                if not rows:
                    raise BuildError(f"Build #{build_id} has no artifact {name!r}; run a full build.")
                return bytes(rows[0][0])
    try:
        return bytes(queryset.get()[0])
    except BuildArtifact.DoesNotExist:
        raise BuildError(f"Build #{build_id} has no artifact {name!r}; run a full build.") from None


def _save_state(build: BuildRun, data: LoadedData, model) -> None:
    _artifact_save(build, "model", model.save)
    _artifact_save(
        build,
        "maps",
        lambda f: np.savez(
            f,
            item_ct=np.asarray([k[0] for k in data.item_map], dtype=np.int64),
            item_id=np.asarray([k[1] for k in data.item_map], dtype=str),
            user_id=np.asarray([str(u) for u in data.user_map], dtype=str),
            item_words=data.item_words,
        ),
    )
    for name, matrix in (("user_items", data.user_items), ("negatives", data.negatives)):
        _artifact_save(build, name, lambda f, m=matrix: sp.save_npz(f, m.tocsr(), compressed=False))


@dataclass
class BuildState:
    """What a worker needs to score users of a build; cached per process by build id."""

    model: Any
    item_map: IndexMap
    user_keys: list[str]
    item_words: np.ndarray
    user_items: sp.csr_matrix
    negatives: sp.csr_matrix
    _dense: np.ndarray | None = None
    titles: dict = field(default_factory=dict)  # (ct_id, object_id) -> title, filled by the build's chunks
    _groups: list[np.ndarray] | None = None

    def item_groups(self) -> list[np.ndarray]:
        """Column positions of each item model (content type), in position order."""
        if self._groups is None:
            cts = np.asarray([key[0] for key in self.item_map], dtype=np.int64)
            self._groups = [np.flatnonzero(cts == ct) for ct in np.unique(cts)]
        return self._groups

    def dense_similarity(self, max_bytes: int = 256 * 2**20) -> np.ndarray | None:
        """The model's item-item weights as a dense array, when that fits in ``max_bytes``."""
        similarity = _item_item(self.model)
        if similarity is None or similarity.shape[0] * similarity.shape[1] * 4 > max_bytes:
            return None
        if self._dense is None:
            self._dense = similarity.toarray().astype(np.float32, copy=False)
        return self._dense


_STATE_CACHE: OrderedDict[int, BuildState] = OrderedDict()


def build_state(build_id: int) -> BuildState:
    """Load (once per process) the fitted model, maps and matrices of a build."""
    state = _STATE_CACHE.get(build_id)
    if state is not None:
        _STATE_CACHE.move_to_end(build_id)
        return state
    model = load_model(io.BytesIO(_artifact_bytes(build_id, "model")))
    with np.load(io.BytesIO(_artifact_bytes(build_id, "maps")), allow_pickle=False) as maps:
        item_map = IndexMap(zip(maps["item_ct"].tolist(), maps["item_id"].tolist()))
        user_keys = maps["user_id"].tolist()
        item_words = maps["item_words"]
    user_items = sp.load_npz(io.BytesIO(_artifact_bytes(build_id, "user_items"))).tocsr()
    negatives = sp.load_npz(io.BytesIO(_artifact_bytes(build_id, "negatives"))).tocsr()
    state = BuildState(model, item_map, user_keys, item_words, user_items, negatives)
    _STATE_CACHE[build_id] = state
    while len(_STATE_CACHE) > 2:
        _STATE_CACHE.popitem(last=False)
    return state


# --- stage helpers --------------------------------------------------------------------------------------


class _Timer:
    def __init__(self, build: BuildRun):
        self.build = build

    def stage(self, name: str):
        timer = self

        class _Stage:
            def __enter__(self_inner):
                self_inner.start = time.perf_counter()
                return self_inner

            def __exit__(self_inner, *exc):
                elapsed = time.perf_counter() - self_inner.start
                timer.build.timings[name] = round(timer.build.timings.get(name, 0.0) + elapsed, 4)
                if exc[0] is None:  # visible progress for `recommendations build --wait` and the admin
                    timer.build.save(update_fields=["timings"])
                    build_lock_extend(build_id=timer.build.pk)
                return False

        return _Stage()


SIMILAR_COLUMNS = ("build", "kind", "content_type", "object_id", "target_content_type", "target_object_id",
                   "rank", "score")
PICK_COLUMNS = ("build", "user", "content_type", "object_id", "rank", "score", "explanation", "source")
POPULAR_COLUMNS = ("build", "window", "content_type", "object_id", "rank", "score")


@_retry_when_locked
def _bulk_insert(model, columns: tuple[str, ...], rows: list[tuple]) -> int:
    """Insert many rows fast: PostgreSQL's COPY, or one ``executemany`` elsewhere.

    Values must already be what the database stores (ids, numbers, JSON text); this skips
    model instances, which cost more than the insert itself at a few hundred thousand rows.
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in columns]
    table = qn(model._meta.db_table)
    names = ", ".join(qn(f.column) for f in fields)
    # One transaction: SQLite in autocommit mode would otherwise commit (and sync) every row.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy"):  # psycopg 3, not psycopg2
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            for start in range(0, len(rows), 50_000):
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows[start : start + 50_000])
    return len(rows)


def _db_user_ids(user_pks: Iterable[Any]) -> dict[Any, Any]:
    """Map user primary keys to the values the database stores (e.g. hex text for UUIDs on SQLite)."""
    connection = connections[router.db_for_write(UserRecommendation)]
    field = get_user_model()._meta.pk
    return {pk: field.get_db_prep_save(pk, connection) for pk in user_pks}


def _similar_rows(build_id: int, kind: str, item_map: IndexMap, positions: Iterable[int],
                  indices: np.ndarray, scores: np.ndarray) -> list[tuple]:
    """Return ``SIMILAR_COLUMNS`` tuples for the neighbours of each source position."""
    rows = []
    for source, idx_row, score_row in zip(positions, indices.tolist(), scores.tolist()):
        ct_id, object_id = item_map.key(source)
        rank = 0
        for target, score in zip(idx_row, score_row):
            if target < 0 or not math.isfinite(score) or score <= 0 or target == source:
                continue
            t_ct, t_id = item_map.key(target)
            rank += 1
            rows.append((build_id, kind, ct_id, object_id, t_ct, t_id, rank, float(score)))
    return rows


def _topk_sparse(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of every row of a sparse matrix, as padded dense arrays, best first.

    ``algorithms.base.topk_sparse_rows`` selects; this only lays its rows out (ties: lower column first).
    """
    from .algorithms.base import topk_sparse_rows

    top = topk_sparse_rows(matrix, k)
    n = top.shape[0]
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    counts = np.diff(top.indptr)
    rows = np.repeat(np.arange(n), counts)
    order = np.lexsort((top.indices, -top.data, rows))  # rows stay grouped: positions are within-row ranks
    rank = np.arange(top.nnz) - np.repeat(top.indptr[:-1], counts)
    indices[rows, rank] = top.indices[order]
    scores[rows, rank] = top.data[order]
    return indices, scores


def _content_rows(build_id: int, item_map: IndexMap, texts: dict[int, list[tuple[str, str]]]) -> list[tuple]:
    """Fit TF-IDF per item model and return the top ``N_SIMILAR`` content neighbours of every item."""
    from .algorithms.content import ContentSimilarity

    rows: list[tuple] = []
    for ct_id, pairs in texts.items():
        if len(pairs) < 2 or not any(text for _, text in pairs):
            continue
        content = ContentSimilarity(top_k=app_settings.N_SIMILAR).fit([text for _, text in pairs])
        positions = [item_map.position((ct_id, object_id)) for object_id, _ in pairs]
        local_idx, local_scores = _topk_sparse(content.similarity_, app_settings.N_SIMILAR)
        global_idx = np.where(local_idx >= 0, np.asarray(positions, dtype=np.int64)[np.maximum(local_idx, 0)], -1)
        rows += _similar_rows(build_id, SimilarItem.Kind.CONTENT, item_map, positions, global_idx, local_scores)
    return rows


def _collaborative_rows(build_id: int, item_map: IndexMap, user_items: sp.csr_matrix, model) -> list[tuple]:
    """Return the top ``N_SIMILAR`` collaborative neighbours of every item with interactions.

    Neighbours stay within the item's own model (an article's "Readers also read" lists articles).
    """
    n = app_settings.N_SIMILAR
    item_cts = np.asarray([k[0] for k in item_map], dtype=np.int64)
    active = np.flatnonzero(np.diff(user_items.tocsc().indptr) > 0)
    similarity = _item_item(model)
    if similarity is not None:
        similarity = sp.csr_matrix(similarity)
        similarity.setdiag(0)
        similarity.eliminate_zeros()
    rows: list[tuple] = []
    for start in range(0, len(active), 1024):
        block = active[start : start + 1024]
        if similarity is not None:
            dense = similarity[block].toarray()
        else:
            dense = np.full((len(block), user_items.shape[1]), -np.inf, dtype=np.float32)
            for i, item in enumerate(block):
                idx, sc = model.similar_items(int(item), n=n * 4)
                dense[i, idx] = sc
        same_model = item_cts[None, :] == item_cts[block][:, None]
        dense = np.where(same_model, dense, -np.inf)
        dense[np.arange(len(block)), block] = -np.inf
        idx, sc = topk_dense_rows(dense, n)
        rows += _similar_rows(build_id, SimilarItem.Kind.COLLABORATIVE, item_map, block, idx, sc)
    return rows


def _popular_rows(build: BuildRun, data: LoadedData, recent_counts: np.ndarray) -> list[tuple]:
    rows: list[tuple] = []
    item_cts = np.asarray([k[0] for k in data.item_map], dtype=np.int64)
    all_counts = np.asarray((data.user_items > 0).sum(axis=0)).ravel().astype(np.float64)
    for window, counts in (("all", all_counts), ("recent", recent_counts)):
        for ct_id in np.unique(item_cts):
            positions = np.flatnonzero((item_cts == ct_id) & (counts > 0))
            order = positions[np.argsort(-counts[positions], kind="stable")][: app_settings.N_POPULAR]
            for rank, position in enumerate(order, 1):
                rows.append((build.pk, window, int(ct_id), data.item_map.key(position)[1], rank,
                             float(counts[position])))
    return rows


def _recent_counts(data: LoadedData) -> np.ndarray:
    """Count distinct readers per item over the last ``POPULAR_WINDOW_DAYS`` days (rejections excluded)."""
    since = time.time() - app_settings.POPULAR_WINDOW_DAYS * 86400
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


def _ratings(data: LoadedData) -> dict[str, np.ndarray]:
    """The explicit ratings the star predictor learns from: user and item positions, stars."""
    cols = data.cols
    ok = (cols.kind == "rating") & ~np.isnan(cols.stars) & (data.event_users >= 0) & (data.event_items >= 0)
    return {"users": data.event_users[ok], "items": data.event_items[ok], "stars": cols.stars[ok],
            "shape": np.asarray([len(data.user_map), len(data.item_map)], dtype=np.int64)}


def _rating_model_fit(ratings: dict[str, np.ndarray]):
    """Fit the star predictor on explicit ratings; None when there are fewer than 10."""
    from .algorithms.rating import BiasedMF

    if len(ratings["stars"]) < 10:
        return None
    n_users, n_items = (int(v) for v in ratings["shape"])
    return BiasedMF(**{"random_state": 0, **app_settings.RATING_MODEL}).fit(
        ratings["users"], ratings["items"], ratings["stars"], n_users, n_items
    )


# --- the parts fitted beside the user chunks --------------------------------------------------------------

# Neither the per-user picks nor each other need these, so a worker fits them while others score chunks.
BUILD_PARTS = ("neighbours", "rating_model")
PART_COUNTS = {"neighbours": "neighbours", "rating_model": "ratings"}  # the BuildRun.counts key each part sets


def _part_inputs_save(build: BuildRun, data: LoadedData) -> None:
    """Store what the parts need beyond the scoring state: the item texts and the explicit ratings."""
    texts = {str(ct_id): pairs for ct_id, pairs in data.texts.items()}
    _artifact_save(build, "item_texts", lambda f: f.write(json.dumps(texts).encode()))
    ratings = _ratings(data)
    # Narrower types when exact (stars 1-5, positions < 2^31): a third of the bytes, read back unchanged.
    stars = ratings["stars"].astype(np.float32)
    if np.array_equal(stars, ratings["stars"]) and max(int(v) for v in ratings["shape"]) < 2**31:
        ratings.update(users=ratings["users"].astype(np.int32), items=ratings["items"].astype(np.int32), stars=stars)
    _artifact_save(build, "ratings", lambda f: np.savez(f, **ratings))


@_retry_when_locked
def build_part(*, build_id: int, part: str) -> int:
    """Fit and store one of ``BUILD_PARTS`` of a prepared build; return how many rows (or ratings) it stored.

    Safe to run twice, also at once: like a chunk, a part replaces its earlier rows under a lock.
    """
    if part not in BUILD_PARTS:
        raise ValueError(f"Unknown build part {part!r}: use one of {', '.join(BUILD_PARTS)}.")
    build = BuildRun.objects.only("status").get(pk=build_id)
    if build.status != BuildRun.Status.RUNNING:
        return 0
    t0 = time.perf_counter()
    if part == "neighbours":
        state = build_state(build_id)
        texts = {int(ct): [tuple(pair) for pair in pairs]
                 for ct, pairs in json.loads(_artifact_bytes(build_id, "item_texts")).items()}
        result = _part_neighbours_fit(build_id, state.item_map, state.user_items, state.model, texts)
    else:
        with np.load(io.BytesIO(_artifact_bytes(build_id, "ratings")), allow_pickle=False) as f:
            ratings = {"users": f["users"].astype(np.int64), "items": f["items"].astype(np.int64),
                       "stars": f["stars"].astype(np.float64), "shape": f["shape"]}
        result = _part_rating_model_fit(ratings)
    t1 = time.perf_counter()
    with transaction.atomic():
        if not _build_write_lock(build_id, f"part:{part}"):
            return 0
        count = _part_store(build_id, part, result)
    _build_add(build_id, {"fit": t1 - t0, "write": time.perf_counter() - t1, f"part_{part}": time.perf_counter() - t0},
               {PART_COUNTS[part]: count})
    build_lock_extend(build_id=build_id)
    return count


def _part_neighbours_fit(build_id: int, item_map: IndexMap, user_items: sp.csr_matrix, model,
                         texts: dict[int, list[tuple[str, str]]]) -> list[tuple]:
    # Neighbour selection is compute (TF-IDF fit, top-k): timed as fit, not as a database write.
    return _collaborative_rows(build_id, item_map, user_items, model) + _content_rows(build_id, item_map, texts)


def _part_rating_model_fit(ratings: dict[str, np.ndarray]) -> tuple[Any, int]:
    return _rating_model_fit(ratings), len(ratings["stars"])


def _part_store(build_id: int, part: str, result) -> int:
    """Replace what an earlier delivery of the part stored; call inside the part's locked transaction."""
    if part == "neighbours":
        SimilarItem.objects.filter(build_id=build_id).delete()
        return _bulk_insert(SimilarItem, SIMILAR_COLUMNS, result)
    model, n_ratings = result
    BuildArtifact.objects.filter(build_id=build_id, name="rating_model").delete()
    if model is not None:
        _artifact_save(BuildRun(pk=build_id), "rating_model", model.save)
    return n_ratings


# --- the pipeline -----------------------------------------------------------------------------------------


def build_prepare(*, build_id: int, progress: Progress = None, parts_inline: bool = True) -> list[tuple[int, int]] | None:
    """Load and fit build ``build_id`` and store what its chunks need to score users.

    With ``parts_inline`` the ``BUILD_PARTS`` (neighbour lists, rating model) are fitted and
    stored here too; without it the caller runs each with ``build_part`` (the ``full_build_fan_out``
    task queues them beside the user chunks, so that with several workers they overlap).
    Return the user chunks to score, or ``None`` when the build cannot run (the lock is held
    by another build, or the build already finished).
    """
    build = BuildRun.objects.get(pk=build_id)
    if build.status in (BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED):
        logger.info("Build #%s already %s; nothing to do.", build_id, build.status)
        return None
    if not build_lock_acquire(build_id=build_id):
        holder = build_lock_holder()
        if holder is not None and holder.owner.startswith(f"build:{build_id}@"):
            logger.info("Build #%s is already running elsewhere (%s); this delivery does nothing.", build_id, holder.owner)
            return None
        build.status = BuildRun.Status.FAILED
        build.error = f"Another full build holds the lock ({holder.owner if holder else 'unknown'})."
        build.finished_at = timezone.now()
        build.save(update_fields=["status", "error", "finished_at"])
        logger.warning("Build #%s refused: %s", build_id, build.error)
        return None
    try:
        # A redelivered task starts this build over: drop what an earlier attempt wrote.
        _build_rows_delete(build_id)
        name, params = _algorithm()
        if "max_items" in _param_names(name) and "max_items" not in params:
            params["max_items"] = app_settings.EASE_MAX_ITEMS
        build.status, build.started_at = BuildRun.Status.RUNNING, timezone.now()
        build.algorithm, build.params, build.timings, build.counts = name, params, {}, {}
        build.data_until = timezone.now()
        build.save()
        timer = _Timer(build)
        with timer.stage("load"):
            data = build_load()
            recent = _recent_counts(data)
        if progress:
            progress("load", 1, 1)
        if data.user_items.nnz == 0:
            raise BuildError("There are no interactions to learn from yet.")
        with timer.stage("fit"):
            model = get_estimator(name, **params).fit(data.user_items)
            _prune_similarity(model)
            popular = _popular_rows(build, data, recent)
            if parts_inline:
                parts = {"neighbours": _part_neighbours_fit(build_id, data.item_map, data.user_items, model, data.texts),
                         "rating_model": _part_rating_model_fit(_ratings(data))}
        if progress:
            progress("fit", 1, 1)
        with timer.stage("write"):
            _save_state(build, data, model)
            _bulk_insert(PopularItem, POPULAR_COLUMNS, popular)
            if parts_inline:
                counts = {PART_COUNTS[part]: _part_store(build_id, part, result) for part, result in parts.items()}
            else:
                _part_inputs_save(build, data)
        build.counts = {
            "users": len(data.user_map), "items": len(data.item_map), "interactions": data.n_events,
            "nonzeros": int(data.user_items.nnz), **(counts if parts_inline else {}),
        }
        build.save(update_fields=["timings", "counts"])
        build_lock_extend(build_id=build_id)
        return _chunk_spans(len(data.user_map), app_settings.BUILD_CHUNK_SIZE)
    except Exception as exc:
        build_fail(build_id=build_id, error=exc)
        raise


def _chunk_spans(n_users: int, size: int) -> list[tuple[int, int]]:
    """Cut ``n_users`` into ``ceil(n_users / size)`` chunks of equal size (within one user).

    Equal chunks, not ``size`` users each and a short last one: with few chunks per worker, a
    short chunk left the other worker idle (7 chunks of ML-1M's 6,040 users, on 2 workers).
    """
    n_chunks = -(-n_users // size)
    bounds = [round(k * n_users / n_chunks) for k in range(n_chunks + 1)] if n_chunks else [0]
    return list(zip(bounds[:-1], bounds[1:]))


def _item_item(model) -> sp.csr_matrix | None:
    """The model's item-item weights, if it has any: ``similarity_`` (pure item-item models) or the
    item-item part of a blend (``item_similarity_``, e.g. ``auto`` with an iALS term)."""
    similarity = getattr(model, "similarity_", None)
    if similarity is None:
        similarity = getattr(model, "item_similarity_", None)
    return similarity


def _prune_similarity(model) -> None:
    """Keep the ``MODEL_TOP_K`` strongest entries per row of an item-item model.

    Dense blends (EASE^R) would otherwise store n_items^2 weights; serving and refreshes
    only need each history item's strongest targets.
    """
    from .algorithms.base import topk_sparse_rows

    similarity = getattr(model, "similarity_", None)
    if similarity is None:
        return
    k = app_settings.MODEL_TOP_K
    similarity = sp.csr_matrix(similarity, dtype=np.float32)
    if similarity.nnz > k * similarity.shape[0]:
        model.similarity_ = topk_sparse_rows(similarity, k)


def _param_names(name: str) -> list[str]:
    from .algorithms import ALGORITHMS

    cls = ALGORITHMS.get(name)
    return list(cls._param_names()) if cls is not None else []


def _explanations(state: BuildState, row: sp.csr_matrix, targets: np.ndarray) -> list[list[int]]:
    """Return for each target the positions of the 1-3 history items that contributed most to its score."""
    similarity = _item_item(state.model)
    history, weights = row.indices, row.data
    if len(history) == 0:
        return [[] for _ in targets]
    if similarity is not None:
        dense = state.dense_similarity()
        if dense is not None:
            contributions = dense[np.ix_(history, targets)] * weights[:, None]
        else:
            # Slice the user's few history rows first; their columns are then cheap to pick.
            contributions = similarity[history][:, targets].toarray() * weights[:, None]
        # One stable sort per user (all targets at once) instead of one per target.
        best = np.argsort(-contributions, axis=0, kind="stable")[:3]
        positive = (np.take_along_axis(contributions, best, axis=0) > 0).T.tolist()
        positions = history[best].T.tolist()
        return [[p for p, ok in zip(ps, oks) if ok] for ps, oks in zip(positions, positive)]
    out: list[list[int]] = []
    for target in targets:
        idx, contrib = state.model.explain(row, int(target), n=3)
        out.append([int(i) for i, c in zip(idx, contrib) if c > 0])
    return out


def _explanations_block(state: BuildState, rows: sp.csr_matrix, targets: list[np.ndarray],
                        max_entries: int = 1 << 19) -> list[list[list[int]]] | None:
    """``[_explanations(state, rows[i], targets[i]) for i ...]`` for many users at once; None without a dense item-item matrix.

    One user at a time, the explanation was a dozen numpy calls on a (history x targets) block,
    a third of the scoring stage for MovieLens-1M. Here each history entry of a group of users
    gets its user's targets as one (entries x targets) array; each of the three rounds takes
    every (user, target)'s largest contribution with a segmented maximum (``reduceat``) and its
    first history entry among equals with a segmented minimum of positions (the order of
    ``_explanations``' stable sort), then rules that entry out. ``max_entries`` bounds the array.
    """
    if _item_item(state.model) is None:
        return None
    dense = state.dense_similarity()
    if dense is None:
        return None
    rows = rows.tocsr()
    n = rows.shape[0]
    out: list[list[list[int]]] = [[[] for _ in t] for t in targets]
    width = max((len(t) for t in targets), default=0)
    lengths = np.diff(rows.indptr)
    if width == 0:
        return out
    padded = np.zeros((n, width), dtype=np.intp)
    for i, t in enumerate(targets):
        padded[i, : len(t)] = t
    users = np.flatnonzero((lengths > 0) & np.asarray([len(t) > 0 for t in targets]))
    start = 0
    while start < users.size:
        # A group of users whose history entries times the width fit in max_entries (at least one user).
        budget = np.cumsum(lengths[users[start:]]) * width
        stop = start + max(1, int(np.searchsorted(budget, max_entries, side="right")))
        group = users[start:stop]
        start = stop
        seg_lengths = lengths[group]
        entries = np.concatenate([np.arange(rows.indptr[u], rows.indptr[u + 1]) for u in group])
        history = rows.indices[entries]
        owner = np.repeat(np.arange(group.size), seg_lengths)
        contributions = dense[history[:, None], padded[group][owner]] * rows.data[entries][:, None]
        starts = np.r_[0, np.cumsum(seg_lengths)[:-1]]
        order = np.arange(len(entries))[:, None]
        picked, picked_values = [], []
        for _ in range(3):
            best = np.maximum.reduceat(contributions, starts, axis=0)
            first = np.minimum.reduceat(np.where(contributions == best[owner], order, len(entries)), starts, axis=0)
            first = np.minimum(first, len(entries) - 1)
            picked.append(history[first])
            picked_values.append(best)
            np.put_along_axis(contributions, first, -np.inf, axis=0)
        picked_arr, values_arr = np.stack(picked, axis=2), np.stack(picked_values, axis=2)
        for g, u in enumerate(group.tolist()):
            n_targets, n_hist = len(targets[u]), int(seg_lengths[g])
            ps, vs = picked_arr[g, :n_targets, : min(3, n_hist)].tolist(), values_arr[g, :n_targets, : min(3, n_hist)].tolist()
            out[u] = [[p for p, v in zip(p_row, v_row) if v > 0] for p_row, v_row in zip(ps, vs)]
    return out


def _explained(state: BuildState, position: int, titles: dict) -> dict:
    ct_id, object_id = state.item_map.key(position)
    return {"content_type": ct_id, "object_id": object_id, "title": titles.get((ct_id, object_id), "")}


def _score_rows(state: BuildState, rows: sp.csr_matrix, negatives: sp.csr_matrix, n: int,
                users: np.ndarray | None = None):
    """Score users' rows, hide what they have seen or rejected, return padded top-``n`` arrays.

    ``users`` are the rows' positions in the build's ``user_items`` when they are those training
    rows: a factor model then uses the user factors it learned instead of solving for them again.
    """
    scores = state.model.score(rows, users=users).astype(np.float32, copy=False)
    # Mask seen and rejected items in place: no dense (users x items) mask.
    seen_rows, seen_cols = (abs(rows) + abs(negatives)).nonzero()
    scores[seen_rows, seen_cols] = -np.inf
    # Top-n per item model, so that every surface ("articles for you", "books for you") is full.
    parts_idx, parts_scores = [], []
    for columns in state.item_groups():
        idx, sc = topk_dense_rows(scores[:, columns], min(n, len(columns)))
        parts_idx.append(np.where(idx >= 0, columns[np.maximum(idx, 0)], -1))
        parts_scores.append(sc)
    indices, top = np.hstack(parts_idx), np.hstack(parts_scores)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(top, order, axis=1)


def _user_pk(key: str):
    return get_user_model()._meta.pk.to_python(key)


def _recommendation_rows(build_id: int, state: BuildState, user_pks: list, rows: sp.csr_matrix,
                         negatives: sp.csr_matrix, source: str, users: np.ndarray | None = None) -> list[tuple]:
    """Return ``PICK_COLUMNS`` tuples: the top ``N_RECOMMENDATIONS`` of each user and item model, explained."""
    n = app_settings.N_RECOMMENDATIONS
    indices, scores = _score_rows(state, rows, negatives, n, users=users)
    rows = rows.tocsr()
    keys = [state.item_map.key(int(p)) for p in np.unique(rows.indices)]
    if source == "build":
        # A build's chunks share titles: fetch each item once per worker process, not once per chunk.
        missing = [key for key in keys if key not in state.titles]
        state.titles.update(get_adapter().item_titles(missing) if missing else {})
        titles = state.titles
    else:
        titles = get_adapter().item_titles(keys)  # a refresh shows the current titles
    fragments: dict[int, str] = {}  # position -> its JSON, encoded once per chunk

    def fragment(position: int) -> str:
        text = fragments.get(position)
        if text is None:
            text = fragments[position] = json.dumps(_explained(state, position, titles))
        return text

    db_ids = _db_user_ids(user_pks)
    valid_all = (indices >= 0) & np.isfinite(scores) & (scores > 0)
    all_targets = [indices[i][valid_all[i]] for i in range(len(user_pks))]
    block = _explanations_block(state, rows, all_targets)
    out: list[tuple] = []
    for i in range(len(user_pks)):
        targets, target_scores = all_targets[i], scores[i][valid_all[i]]
        if len(targets) == 0:
            continue
        explanations = block[i] if block is not None else _explanations(state, rows[i], targets)
        user_db = db_ids[user_pks[i]]
        for rank, (target, score, why) in enumerate(zip(targets.tolist(), target_scores.tolist(), explanations), 1):
            ct_id, object_id = state.item_map.key(target)
            # Same text as json.dumps(list of dicts): fragments joined with json's default ", ".
            out.append((build_id, user_db, ct_id, object_id, rank, float(score),
                        "[" + ", ".join(fragment(p) for p in why) + "]", source))
    return out


@_retry_when_locked
def build_score_chunk(*, build_id: int, start: int, stop: int) -> int:
    """Score users ``start:stop`` of a build and write their picks; safe to run twice."""
    build = BuildRun.objects.only("status").get(pk=build_id)
    if build.status != BuildRun.Status.RUNNING:
        return 0
    t0 = time.perf_counter()
    state = build_state(build_id)
    positions = np.arange(start, stop)
    rows = state.user_items[start:stop]
    negatives = state.negatives[start:stop]
    user_pks = [_user_pk(state.user_keys[p]) for p in positions]
    t1 = time.perf_counter()
    # Build chunks score training rows: factor models reuse the user factors learned by the fit.
    recs = _recommendation_rows(build_id, state, user_pks, rows, negatives, source="build", users=positions)
    t2 = time.perf_counter()
    with transaction.atomic():
        if not _build_write_lock(build_id, f"{start}:{stop}"):
            return 0
        t_locked = time.perf_counter()
        if recs and _picks_stored(build_id, recs[0][1]):
            return 0  # an earlier delivery of this chunk stored it (it stores all its rows in one transaction)
        _bulk_insert(UserRecommendation, PICK_COLUMNS, recs)
    t3 = time.perf_counter()
    # write_picks includes write_wait: the time spent waiting for the chunk's write lock.
    _build_add(build_id, {"load_state": t1 - t0, "score": t2 - t1, "write_picks": t3 - t2,
                          "write_wait": t_locked - t2})
    build_lock_extend(build_id=build_id)
    return len(recs)


def _picks_stored(build_id: int, user_id: Any) -> bool:
    """Whether build ``build_id`` holds picks of the user: one probe of the lookup index.

    A chunk delivered again looks for its first user's rows instead of deleting its users' rows
    before writing: PostgreSQL, without statistics on the growing table, ran that delete
    (``build_id = %s AND user_id IN (...)``) as a scan of all the build's rows so far, so the
    chunks' writes grew with the square of the build (10M interactions: about 390 of 1,490
    worker-seconds). An equality on both columns of the index stays one probe.
    """
    return UserRecommendation.objects.filter(build_id=build_id, user_id=user_id).exists()


def _build_write_lock(build_id: int, key: str) -> bool:
    """Lock what a chunk's or part's write needs, in its transaction; False if the build is no longer running.

    A chunk (or part) delivered twice at once must not interleave its check (or delete) and insert
    with its twin's (on PostgreSQL's READ COMMITTED both would find nothing, then both insert). On
    PostgreSQL the twins meet on a transaction-level advisory lock keyed by (build, ``key``: the
    chunk's ``start:stop`` or ``part:<name>``), so different chunks and parts of one build write
    in parallel, and the build row is held ``FOR KEY SHARE``: they share it, while
    ``build_finalize`` (``FOR UPDATE``) waits for the writes in flight and later twins see the
    build finished. Elsewhere the build row is locked ``FOR UPDATE``, which
    serialises a build's chunk writes (SQLite serialises every write anyway). The time spent
    here is recorded as the build's ``write_wait`` timing (see benchmarks/results/pipeline.md).
    """
    connection = connections[router.db_for_write(UserRecommendation)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('recommendations.chunk'), hashtext(%s))",
                           [f"{build_id}:{key}"])
            cursor.execute(f"SELECT status FROM {connection.ops.quote_name(BuildRun._meta.db_table)} "
                           f"WHERE {connection.ops.quote_name(BuildRun._meta.pk.column)} = %s FOR KEY SHARE", [build_id])
            row = cursor.fetchone()
        status = row[0] if row else None
    else:
        status = BuildRun.objects.select_for_update().filter(pk=build_id).values_list("status", flat=True).first()
    return status == BuildRun.Status.RUNNING


@_retry_when_locked
def _build_add(build_id: int, timings: dict[str, float], counts: dict[str, int] | None = None) -> None:
    """Add a chunk's or part's stage seconds to its build (summed over tasks, i.e. worker-seconds) and set its counts."""
    connection = connections[router.db_for_write(BuildRun)]
    with transaction.atomic():
        # NO KEY UPDATE does not wait for the chunk writes that hold the row FOR KEY SHARE.
        build = (BuildRun.objects.select_for_update(no_key=connection.features.has_select_for_no_key_update)
                 .only("timings", "counts").get(pk=build_id))
        for key, value in timings.items():
            build.timings[key] = round(build.timings.get(key, 0.0) + value, 4)
        build.counts.update(counts or {})
        build.save(update_fields=["timings", "counts"])


@_retry_when_locked
def build_finalize(*, build_id: int, prune: bool = True) -> BuildRun:
    """Switch the active build to ``build_id`` in one transaction, then prune old builds (unless ``prune`` is False).

    A build whose parts (``BUILD_PARTS``) were not all stored fails instead: the previous build stays active.
    The ``build_finalize`` task prunes in a task of its own, after the switch: deleting an old
    build's rows took about 1 s of database time on MovieLens-1M, and the new build is served
    without waiting for it.
    """
    t0 = time.perf_counter()
    with transaction.atomic():
        build = BuildRun.objects.select_for_update().get(pk=build_id)
        if build.status != BuildRun.Status.RUNNING:
            return build
        missing = [part for part in BUILD_PARTS if PART_COUNTS[part] not in build.counts]
        if not missing:
            if not build.reactivable:  # a reader was deleted while this build ran
                _orphan_picks_delete(build_id)
            build.counts["recommendations"] = UserRecommendation.objects.filter(build_id=build_id).count()
            BuildRun.objects.filter(is_active=True).exclude(pk=build_id).update(is_active=False)
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
    _requeue_users_changed_since(build)
    logger.info("Build #%s is active: %s", build_id, build.counts)
    return build


def _orphan_picks_delete(build_id: int) -> int:
    """Delete the build's picks of users who no longer exist; return how many rows went.

    The picks table has no database constraint on its user (see ``models.RESULT_ROW_KEYS``), so
    a chunk that scored a reader deleted meanwhile stores their rows; Django's cascade ran before.
    """
    users = get_user_model()._default_manager.all()
    deleted, _ = UserRecommendation.objects.filter(build_id=build_id).exclude(user__in=users).delete()
    if deleted:
        logger.info("Build #%s: dropped %s picks of deleted readers.", build_id, deleted)
    return deleted


@_retry_when_locked
def build_fail(*, build_id: int, error: BaseException | str) -> None:
    """Mark a build failed, drop its rows and release its lock; the active build is untouched."""
    BuildRun.objects.filter(pk=build_id).exclude(status=BuildRun.Status.SUCCEEDED).update(
        status=BuildRun.Status.FAILED, error=str(error)[:5000], finished_at=timezone.now(), is_active=False
    )
    _build_rows_delete(build_id)
    build_lock_release(build_id=build_id)


@_retry_when_locked
def _build_rows_delete(build_id: int) -> None:
    for model in (UserRecommendation, SimilarItem, PopularItem, BuildArtifact):
        model.objects.filter(build_id=build_id).delete()
    _STATE_CACHE.pop(build_id, None)


def builds_prune() -> None:
    """Delete the results of builds no longer kept: beyond the newest ``KEEP_BUILDS`` succeeded, or not reactivable."""
    # Builds computed before a reader was deleted still hold that reader's history: drop their results.
    for build_id in BuildRun.objects.filter(is_active=False, reactivable=False).values_list("pk", flat=True):
        _build_rows_delete(build_id)
    keep = list(
        BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED).order_by("-created_at").values_list("pk", flat=True)
    )[: app_settings.KEEP_BUILDS]
    old = BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED, is_active=False).exclude(pk__in=keep)
    for build_id in old.values_list("pk", flat=True):
        _build_rows_delete(build_id)
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
        BuildRun.objects.filter(is_active=True).exclude(pk=build_id).update(is_active=False)
        build.is_active = True
        build.activated_at = timezone.now()
        build.save(update_fields=["is_active", "activated_at"])
    return build


# --- incremental updates ------------------------------------------------------------------------------------


def user_refresh_request(*, user_id: Any) -> None:
    """Ask for ``user_id``'s picks to be refreshed soon; debounced, safe to call on every write.

    The request is recorded in the database first, so that if the broker is down the refresh
    is not lost: ``pending_refreshes_run`` (and the next full build) pick up every pending user.
    """
    from .tasks import publish_options, user_refresh as user_refresh_task

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
        user_refresh_task.apply_async(args=[str(user_id)], countdown=app_settings.REFRESH_DEBOUNCE_SECONDS,
                                      **publish_options())
    except Exception as exc:  # The broker is down: the request stays pending in the database.
        logger.warning("Could not queue the refresh of user %s (%r); it stays pending.", user_id, exc)
        return
    UserRefresh.objects.filter(pk=user_id).update(queued_at=now)


@_retry_when_locked
def user_refresh(*, user_id: Any) -> int:
    """Recompute one user's picks from the active model now; return how many were stored."""
    started = timezone.now()
    build = BuildRun.objects.filter(is_active=True).only("pk").first()
    if build is None:
        return 0
    user_pk = _user_pk(str(user_id))
    if not get_user_model()._default_manager.filter(pk=user_pk).exists():
        return 0  # Deleted since the refresh was queued: picks have no foreign key to refuse them.
    try:
        state = build_state(build.pk)
    except BuildError:
        return 0
    item_map = state.item_map
    user_map = IndexMap([user_pk])
    positive, negative, _, _ = _events_matrix(
        get_adapter().interaction_columns(user_ids=[user_pk]), user_map, item_map, state.item_words,
        grow_users=False, now=time.time(),
    )
    recs: list[tuple] = []
    if positive.nnz:
        recs = _existing_items_only(_recommendation_rows(build.pk, state, [user_pk], positive, negative,
                                                         source="refresh"))
    try:
        UserRefresh.objects.get_or_create(user_id=user_pk)
    except IntegrityError:
        return 0  # The user was deleted during the computation.
    with transaction.atomic():
        # One refresh of a user at a time: a twin delivery waits here, then replaces the same rows.
        if UserRefresh.objects.select_for_update().filter(user_id=user_pk).values_list("pk", flat=True).first() is None:
            return 0  # The user's deletion removed the row meanwhile.
        if not BuildRun.objects.filter(pk=build.pk, is_active=True).exists():
            return 0  # A new build became active meanwhile; it will be refreshed by its own switch.
        UserRecommendation.objects.filter(build_id=build.pk, user_id=user_pk).delete()
        _bulk_insert(UserRecommendation, PICK_COLUMNS, recs)
        UserRefresh.objects.filter(user_id=user_pk).update(refreshed_at=started)
        payloads.user_payload_invalidate(user_id=user_pk)
    return len(recs)


def _existing_items_only(recs: list[tuple]) -> list[tuple]:
    """Drop one user's picks whose item was deleted since the build (its model still scores it), re-ranked."""
    wanted: dict[int, set[str]] = {}
    for row in recs:
        wanted.setdefault(row[2], set()).add(row[3])
    found: set[tuple[int, str]] = set()
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is not None:
            pks = [model._meta.pk.to_python(i) for i in ids]
            found.update((ct_id, str(pk)) for pk in model._base_manager.filter(pk__in=pks).values_list("pk", flat=True))
    kept = [row for row in recs if (row[2], row[3]) in found]
    return [(*row[:4], rank, *row[5:]) for rank, row in enumerate(kept, 1)]


def pending_refreshes_run() -> int:
    """Refresh, in this process, every user whose refresh was asked for and not done; return how many."""
    users = pending_refreshes_list()
    for user_id in users:
        user_refresh(user_id=user_id)
    return len(users)


def pending_refreshes_list(*, limit: int = 1000) -> list[Any]:
    """Return users whose refresh was asked for and not done (e.g. the broker was down)."""
    from django.db.models import F

    return list(
        UserRefresh.objects.filter(Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=F("requested_at")))
        .values_list("user_id", flat=True)[:limit]
    )


def _requeue_users_changed_since(build: BuildRun) -> None:
    """After a switch, refresh users who interacted after the build read its data."""
    if build.data_until is None:
        return
    users = UserRefresh.objects.filter(requested_at__gt=build.data_until).values_list("user_id", flat=True)
    for user_id in users:
        user_refresh_request(user_id=user_id)


def item_content_refresh(*, content_type_id: int, object_id: str) -> int:
    """Recompute the content neighbours of one item in the active build; return how many were stored."""
    from .algorithms.content import ContentSimilarity

    build = BuildRun.objects.filter(is_active=True).only("pk").first()
    if build is None:
        return 0
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    adapter = get_adapter()
    if model is None or not adapter.text_fields(model):
        return 0
    pairs = list(adapter.item_texts(model))
    ids = [object_id_ for object_id_, _ in pairs]
    if str(object_id) not in ids or len(pairs) < 2:
        with transaction.atomic():
            SimilarItem.objects.filter(build_id=build.pk, kind=SimilarItem.Kind.CONTENT,
                                       content_type_id=content_type_id, object_id=str(object_id)).delete()
            payloads.user_payloads_invalidate()
        return 0
    content = ContentSimilarity(top_k=app_settings.N_SIMILAR).fit([text for _, text in pairs])
    source = ids.index(str(object_id))
    idx, scores = content.similar_items(source, n=app_settings.N_SIMILAR)
    rows = [
        SimilarItem(build_id=build.pk, kind=SimilarItem.Kind.CONTENT, content_type_id=content_type_id,
                    object_id=str(object_id), target_content_type_id=content_type_id, target_object_id=ids[t],
                    rank=rank, score=float(s))
        for rank, (t, s) in enumerate(((t, s) for t, s in zip(idx, scores) if s > 0 and t != source), 1)
    ]
    with transaction.atomic():
        SimilarItem.objects.filter(build_id=build.pk, kind=SimilarItem.Kind.CONTENT,
                                   content_type_id=content_type_id, object_id=str(object_id)).delete()
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
    finished = BuildRun.objects.filter(is_active=False).exclude(status__in=[BuildRun.Status.RUNNING, BuildRun.Status.QUEUED])
    for build_id in finished.values_list("pk", flat=True):
        _build_rows_delete(build_id)
    logger.info("Reader %s deleted: older builds can no longer be made active.", user_id)


# --- editor rules -----------------------------------------------------------------------------------------


def item_rule_set(*, obj, action: str, factor: float = 1.5, note: str = "") -> ItemRule:
    """Pin, boost or ban ``obj`` in every recommendation list."""
    if action not in ItemRule.Action.values:
        raise ValueError(f"Unknown action {action!r}: use one of {', '.join(ItemRule.Action.values)}.")
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError("factor must be a positive number.")
    ct = ContentType.objects.get_for_model(obj)
    rule, _ = ItemRule.objects.update_or_create(
        content_type=ct, object_id=str(obj.pk), defaults={"action": action, "factor": factor, "note": note}
    )
    return rule


def item_rule_clear(*, obj) -> None:
    ct = ContentType.objects.get_for_model(obj)
    ItemRule.objects.filter(content_type=ct, object_id=str(obj.pk)).delete()
