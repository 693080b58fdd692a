"""Provides the recording of impressions: an in-process buffer written in batches off the request path.

``impression_record()`` only appends a tuple to a list under a lock; a daemon thread writes what is
waiting every ``IMPRESSION_FLUSH_SECONDS`` (or as soon as ``IMPRESSION_FLUSH_SIZE`` are
waiting) in one transaction (``COPY`` text on PostgreSQL, else ``executemany``), and an ``atexit``
hook writes the rest when the process ends (a gunicorn worker exits through ``sys.exit``, which
runs it). A batch whose write fails is kept for the next attempt; rows carry their own unique id,
so a batch written twice is stored once.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, close_old_connections, connections, router
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..conf import app_settings
from ..db.bulk import copy_line, copy_text, rows_insert
from .attribution import event, events_resolve, recommendation_id_new
from .models import Impression

logger = logging.getLogger(__name__)

# False: no background thread (tests flush explicitly, in their own transaction); the exit hook still writes.
BACKGROUND_FLUSH = True
# At most this many impressions wait in one process; beyond it (the database down for long) the oldest go.
MAX_PENDING = 200_000

_lock = threading.Lock()
_wake = threading.Event()
# Rows are tuples of atoms in COLUMNS order (the id as hex, the items as JSON text), then on PostgreSQL their COPY
# line: the cyclic collector stops tracking them (docs/decisions.md, "Impression writes in small, plain batches").
_pending: list[tuple] = []
_events: list[dict[str, Any]] = []
_state: dict[str, Any] = {"thread": None, "pid": None, "dropped": 0, "copy": None}


def item_keys(items: Iterable[Any]) -> list[str]:
    """Return ``"content_type_id:object_id"`` of each item (model instances, or ``(ct_id, object_id)`` pairs)."""
    keys = []
    for item in items:
        if isinstance(item, (tuple, list)):
            keys.append(f"{item[0]}:{item[1]}")
        else:
            keys.append(f"{ContentType.objects.get_for_model(item).pk}:{item.pk}")
    return keys


def item_propensities(items: Iterable[Any]) -> list[float | None] | None:
    """Return, per item, the logged probability of its exploration slot's draw (``rec_explanation``), or None if none."""
    found = [next((e.get("propensity") for e in getattr(item, "rec_explanation", None) or ()
                   if isinstance(e, dict) and e.get("explore")), None) for item in items]
    return found if any(p is not None for p in found) else None


def session_hash(session_key: str | None) -> str:
    """Return a keyed hash of a session key (the key itself would let anyone holding the table sign in)."""
    if not session_key:
        return ""
    return salted_hmac("recommendations.impressions.session", session_key, algorithm="sha256").hexdigest()[:40]


def is_bot(user_agent: str | None) -> bool:
    """Return whether ``user_agent`` matches ``BOT_USER_AGENTS``."""
    pattern = app_settings.BOT_USER_AGENTS
    return bool(pattern and user_agent and re.search(pattern, user_agent, re.IGNORECASE))


def impression_record(*, surface: str, items: Iterable[Any], user=None, session_key: str | None = None,
                      algorithm: str = "", build_id: int | None = None, experiment: str = "", arm: str = "",
                      recommendation_id: uuid.UUID | None = None, created_at: datetime | None = None,
                      propensities: list[float | None] | None = None) -> uuid.UUID:
    """Queue the record of a list shown to a reader and return its ``recommendation_id``.

    ``items`` are the items in position order (model instances or ``(content_type_id, object_id)``);
    ``user`` is the reader (anonymous or None: ``session_key`` identifies them, hashed); ``experiment``
    and ``arm`` name the experiment arm that made the list, blank when none; ``propensities`` (aligned
    with ``items``) the probability of each randomised exploration pick, None elsewhere. The row is written
    later by the buffer (``impressions_flush()``), so the caller never waits for the database.
    """
    rid = recommendation_id or recommendation_id_new()
    if not app_settings.IMPRESSIONS:
        return rid
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    row = (rid.hex, user_id, "" if user_id is not None else session_hash(session_key), surface[:64],
           (algorithm or "")[:64], build_id, (experiment or "")[:64], (arm or "")[:64],
           json.dumps(item_keys(items)), created_at or timezone.now(),
           json.dumps(propensities) if propensities else None)
    if _copy_lines():
        # A few µs here instead of a burst in the flush thread that holds up this worker's requests
        # (docs/decisions.md, "Impression writes in small, plain batches").
        row += (copy_line(row),)
    _enqueue([row])
    return rid


def _copy_lines() -> bool:
    """Return whether rows carry their ``COPY`` line: the impressions' database is PostgreSQL (once per process)."""
    copy = _state.get("copy")
    if copy is None:
        copy = _state["copy"] = connections[router.db_for_write(Impression)].vendor == "postgresql"
    return copy


def impression_record_for_request(request, *, surface: str, items: Iterable[Any], algorithm: str = "",
                                  build_id: int | None = None, experiment: str = "", arm: str = "",
                                  recommendation_id: uuid.UUID | None = None,
                                  propensities: list[float | None] | None = None) -> uuid.UUID:
    """Queue the record of a list shown in response to ``request`` (its reader or session); bots are not recorded.

    Return the list's ``recommendation_id`` in every case, so a bot's response looks the same.
    """
    if is_bot(request.META.get("HTTP_USER_AGENT")):
        return recommendation_id or recommendation_id_new()
    session = getattr(request, "session", None)
    return impression_record(surface=surface, items=items, user=getattr(request, "user", None),
                             session_key=getattr(session, "session_key", None), algorithm=algorithm,
                             build_id=build_id, experiment=experiment, arm=arm, recommendation_id=recommendation_id,
                             propensities=propensities)


def attribution_record(*, kind: str, user=None, session_key: str | None = None, item: Any = None,
                       recommendation_id: uuid.UUID | None = None, position: int | None = None,
                       value: float | None = None, at: datetime | None = None) -> None:
    """Queue an event to attribute to the list that led to it; written with the next flush.

    ``kind`` is an ``Attribution.Kind``. A click names its list (``recommendation_id``) and
    ``position`` (or ``item``); reads, ratings and "Not interested" marks name the ``item``
    (a model instance, ``(content_type_id, object_id)`` or ``"content_type_id:object_id"``)
    and are tied to the reader's latest list that showed it within ``ATTRIBUTION_WINDOW_SECONDS``.
    """
    if not app_settings.IMPRESSIONS:
        return
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    key = item if isinstance(item, str) or item is None else item_keys([item])[0]
    queued = event(kind=kind, user_id=user_id, session_hash="" if user_id is not None else session_hash(session_key),
                   recommendation_id=recommendation_id, position=position, item=key, value=value, at=at)
    with _lock:
        _events.append(queued)
        del _events[:-MAX_PENDING]
    if BACKGROUND_FLUSH and (app_settings.IMPRESSION_FLUSH_SECONDS or 0) > 0:
        _ensure_thread()


def attribution_record_for_request(request, *, kind: str, item: Any = None,
                                   recommendation_id: uuid.UUID | None = None, position: int | None = None,
                                   value: float | None = None) -> None:
    """Queue an event of ``request``'s reader (or session), as ``attribution_record()``; bots are not recorded."""
    if is_bot(request.META.get("HTTP_USER_AGENT")):
        return
    session = getattr(request, "session", None)
    attribution_record(kind=kind, user=getattr(request, "user", None), session_key=getattr(session, "session_key", None),
                       item=item, recommendation_id=recommendation_id, position=position, value=value)


def _enqueue(rows: list[tuple], *, front: bool = False) -> None:
    with _lock:
        if front:
            _pending[:0] = rows
        else:
            _pending.extend(rows)
        overflow = len(_pending) - MAX_PENDING
        if overflow > 0:
            del _pending[:overflow]
            _state["dropped"] += overflow
            logger.error("Impression buffer full: dropped the %d oldest impressions", overflow)
        size = len(_pending)
    interval = app_settings.IMPRESSION_FLUSH_SECONDS
    if BACKGROUND_FLUSH and interval and interval > 0:
        _ensure_thread()
        if size >= app_settings.IMPRESSION_FLUSH_SIZE:
            _wake.set()


def impressions_flush() -> int:
    """Write every waiting impression now; return how many were written (a failed batch waits for the next call)."""
    with _lock:
        batch, events = _pending[:], _events[:]
        _pending.clear()
        _events.clear()
    written = 0
    if batch:
        try:
            _write(batch)
            written = len(batch)
        except DatabaseError as exc:
            # An outage is expected and retried: one line, not a traceback per flush.
            logger.warning("Could not write %d impressions; they wait for the next flush: %s", len(batch), exc)
            _enqueue(batch, front=True)
    if events:
        try:
            retry = events_resolve(events)
        except DatabaseError as exc:
            logger.warning("Could not attribute %d events; they wait for the next flush: %s", len(events), exc)
            retry = events
        with _lock:
            _events[:0] = retry
    return written


def _write(batch: list[tuple]) -> None:
    """Insert ``batch`` in one transaction, leaving out the lists of readers deleted since they were served.

    A batch that was already written (a duplicate id) is written again row by row, skipping what exists;
    the lists of a reader deleted between the check and the insert stay until the nightly purge.
    """
    connection = connections[router.db_for_write(Impression)]
    batch = _readers_present(batch)
    try:
        if copy_text(Impression, COLUMNS, map(_line, batch), using=connection.alias) is None:
            rows_insert(Impression, COLUMNS, [row[:LINE] for row in batch], using=connection.alias)
    except (IntegrityError, connection.Database.IntegrityError):  # COPY raises the driver's own error
        rows = [_impression(row) for row in _readers_present(batch)]
        Impression.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)


def _readers_present(batch: list[tuple]) -> list[tuple]:
    user_ids = {row[USER] for row in batch if row[USER] is not None}
    if not user_ids:
        return batch
    existing = _existing_readers(user_ids)
    return [row for row in batch if row[USER] is None or row[USER] in existing]


def _existing_readers(user_ids: set) -> set:
    """Return which of ``user_ids`` still exist.

    On PostgreSQL one array parameter: the ORM's ``IN`` with a placeholder per reader is a new statement for
    psycopg to parse at every flush, more Python than the write itself (docs/decisions.md, "Impression writes
    in small, plain batches").
    """
    users = get_user_model()._default_manager
    connection = connections[router.db_for_read(users.model)]
    if connection.vendor != "postgresql":
        return set(users.filter(pk__in=user_ids).values_list("pk", flat=True))
    qn, pk = connection.ops.quote_name, users.model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(pk)} FROM {qn(users.model._meta.db_table)} WHERE {qn(pk)} = ANY(%s)",
                       [list(user_ids)])
        return {row[0] for row in cursor.fetchall()}


COLUMNS = ("recommendation_id", "user", "session_hash", "surface", "algorithm", "build_id", "experiment", "arm",
           "items", "created_at", "propensities")
USER = COLUMNS.index("user")
# Where the database takes COPY, a row's COPY line follows its values.
LINE = len(COLUMNS)


def _line(row: tuple) -> str:
    return row[LINE] if len(row) > LINE else copy_line(row)


def _impression(row: tuple) -> Impression:
    values = dict(zip(COLUMNS, row))
    values["user_id"] = values.pop("user")
    values["recommendation_id"] = uuid.UUID(hex=values["recommendation_id"])
    values["items"] = json.loads(values["items"])
    values["propensities"] = json.loads(values["propensities"]) if values["propensities"] else None
    return Impression(**values)


def impression_pending_get(recommendation_id: uuid.UUID) -> Impression | None:
    """Return the impression ``recommendation_id`` if it still waits in this process's buffer (unsaved), else None."""
    with _lock:
        row = next((row for row in reversed(_pending) if row[0] == recommendation_id.hex), None)
    return _impression(row) if row is not None else None


def impressions_pending() -> int:
    """Return how many impressions and attribution events wait in this process's buffer."""
    with _lock:
        return len(_pending) + len(_events)


def impressions_discard() -> int:
    """Drop the waiting impressions without writing them (tests); return how many there were."""
    with _lock:
        count = len(_pending) + len(_events)
        _pending.clear()
        _events.clear()
    return count


def _ensure_thread() -> None:
    thread = _state["thread"]
    if thread is not None and thread.is_alive() and _state["pid"] == os.getpid():
        return
    with _lock:
        thread = _state["thread"]
        if thread is not None and thread.is_alive() and _state["pid"] == os.getpid():
            return
        thread = threading.Thread(target=_flush_forever, name="impressions-flush", daemon=True)
        _state.update(thread=thread, pid=os.getpid())
        thread.start()


def _flush_forever() -> None:
    while True:
        _wake.wait(app_settings.IMPRESSION_FLUSH_SECONDS or 1.0)
        _wake.clear()
        try:
            close_old_connections()
            impressions_flush()
        except Exception:  # the thread must outlive any error, or every later impression would wait until exit
            logger.exception("Impression flush failed")


@atexit.register
def _flush_at_exit() -> None:
    try:
        if impressions_pending():
            impressions_flush()
    except Exception:
        logger.exception("Could not write the waiting impressions at exit")
