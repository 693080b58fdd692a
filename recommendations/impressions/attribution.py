"""Provides attribution: clicks, reads, ratings and "Not interested" marks tied to the lists that led to them.

Events are queued with the impressions (``recording``) and resolved when the buffer is written,
after the impressions of the same batch: a list served by another process may still wait in
that process's buffer, so an event that finds no impression yet is tried again at the next
flushes for a short grace period, then dropped.

* A click names its list (``recommendation_id``) and the position clicked. It is tied only to
  an impression of the same reader (or, for an anonymous reader, of the same session).
* A read, read-through, rating or "Not interested" mark of an item is tied to the reader's
  latest impression that showed the item no more than ``ATTRIBUTION_WINDOW_SECONDS`` before,
  preferring a list the reader clicked the item in.
"""
from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import app_settings
from .models import Attribution, Impression

Kind = Attribution.Kind


def recommendation_id_new() -> uuid.UUID:
    """Return a new recommendation id: random but time-ordered (UUID version 7, RFC 9562).

    Ids in order of creation go in at the right edge of the impressions' unique index instead of a random
    page of it, which took a third of a row's write (docs/decisions.md). 74 random bits keep ids unguessable.
    """
    if hasattr(uuid, "uuid7"):  # Python 3.14
        return uuid.uuid7()
    milliseconds = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big") >> 6
    return uuid.UUID(int=(milliseconds & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62) << 64
                     | 0b10 << 62 | rand & (1 << 62) - 1)


def recommendation_id_parse(value: Any) -> uuid.UUID:
    """Return ``value`` as a recommendation id, or raise ``ValidationError`` with a message saying why not."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        shown = str(value)[:80]
        raise ValidationError(f"{shown!r} is not a valid recommendation id (a UUID such as "
                              f"'6f1c2e0a-4b7d-4c1e-9a57-0d6c1f1e2b3c').", code="invalid") from None


def position_parse(value: Any) -> int:
    """Return ``value`` as a 1-based list position, or raise ``ValidationError``."""
    try:
        position = int(str(value))
    except (ValueError, TypeError):
        raise ValidationError(f"{str(value)[:40]!r} is not a position (a whole number from 1).", code="invalid") from None
    if not 1 <= position <= 10_000:
        raise ValidationError(f"Position {position} is out of range (1-10000).", code="invalid")
    return position


def impression_owned(impression: Impression, *, user_id=None, session_hash: str = "") -> bool:
    """Return whether ``impression`` was shown to this reader (or, anonymous, to this session)."""
    if impression.user_id is not None:
        return user_id is not None and str(impression.user_id) == str(user_id)
    return bool(session_hash) and user_id is None and impression.session_hash == session_hash


def event(*, kind: str, user_id=None, session_hash: str = "", recommendation_id: uuid.UUID | None = None,
          position: int | None = None, item: str | None = None, value: float | None = None,
          at: datetime | None = None) -> dict[str, Any]:
    """Return an attribution event as the buffer keeps it (``item`` is ``"content_type_id:object_id"``)."""
    return {"kind": kind, "user_id": user_id, "session_hash": session_hash, "rid": recommendation_id,
            "position": position, "item": item, "value": value, "at": at or timezone.now()}


def events_resolve(events: list[dict[str, Any]], *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Write the attributions of ``events``; return the events to try again (no impression yet, still young)."""
    now = now or timezone.now()
    grace = timedelta(seconds=max(5.0, 3 * float(app_settings.IMPRESSION_FLUSH_SECONDS or 0)))
    clicks = [e for e in events if e["rid"] is not None]
    later = [e for e in events if e["rid"] is None]
    rows, retry = _clicks_resolve(clicks)
    window_rows, window_retry = _window_resolve(later)
    rows += window_rows
    retry += window_retry
    if rows:
        with transaction.atomic():
            Attribution.objects.bulk_create(rows, ignore_conflicts=True)
    return [e for e in retry if now - e["at"] < grace]


def _split(key: str) -> tuple[int, str]:
    ct, oid = key.split(":", 1)
    return int(ct), oid


def _clicks_resolve(clicks: list[dict[str, Any]]) -> tuple[list[Attribution], list[dict[str, Any]]]:
    found = {imp.recommendation_id: imp for imp in Impression.objects.filter(
        recommendation_id__in={e["rid"] for e in clicks})} if clicks else {}
    rows, retry = [], []
    for e in clicks:
        impression = found.get(e["rid"])
        if impression is None:
            retry.append(e)
            continue
        if not impression_owned(impression, user_id=e["user_id"], session_hash=e["session_hash"]):
            continue  # another reader's list: never theirs to attribute to
        # The item opened, when known, says the position better than a link's parameter.
        position = impression.position_of(e["item"]) if e["item"] else e["position"]
        if not position or position > len(impression.items):
            continue
        ct, oid = _split(impression.items[position - 1])
        rows.append(Attribution(impression=impression, content_type_id=ct, object_id=oid, position=position,
                                kind=Kind.CLICK, value=e["value"], created_at=e["at"]))
    return rows, retry


def _window_resolve(events: list[dict[str, Any]]) -> tuple[list[Attribution], list[dict[str, Any]]]:
    window = timedelta(seconds=float(app_settings.ATTRIBUTION_WINDOW_SECONDS))
    by_user: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["user_id"] is not None and e["item"]:
            by_user[e["user_id"]].append(e)
    rows, retry = [], []
    for user_id, user_events in by_user.items():
        start = min(e["at"] for e in user_events) - window
        end = max(e["at"] for e in user_events)
        impressions = list(Impression.objects.filter(user_id=user_id, created_at__gte=start, created_at__lte=end)
                           .order_by("-created_at", "-id"))
        clicked = _clicked(impressions, {e["item"] for e in user_events})
        for e in user_events:
            impression = _best(impressions, clicked, e, window)
            if impression is None:
                retry.append(e)
                continue
            ct, oid = _split(e["item"])
            rows.append(Attribution(impression=impression, content_type_id=ct, object_id=oid,
                                    position=impression.position_of(e["item"]), kind=e["kind"], value=e["value"],
                                    created_at=e["at"]))
    return rows, retry


def _clicked(impressions: list[Impression], items: set[str]) -> set[tuple[int, str]]:
    """Return (impression id, item key) of the clicks on ``items`` in ``impressions``."""
    if not impressions or not items:
        return set()
    keys = Q()
    for key in items:
        ct, oid = _split(key)
        keys |= Q(content_type_id=ct, object_id=oid)
    clicks = Attribution.objects.filter(keys, impression__in=impressions, kind=Kind.CLICK)
    return {(imp_id, f"{ct}:{oid}") for imp_id, ct, oid in clicks.values_list("impression_id", "content_type_id", "object_id")}


def _best(impressions: list[Impression], clicked: set, e: dict[str, Any], window: timedelta) -> Impression | None:
    shown = [imp for imp in impressions if e["at"] - window <= imp.created_at <= e["at"] and e["item"] in imp.items]
    for imp in shown:
        if (imp.pk, e["item"]) in clicked:
            return imp
    return shown[0] if shown else None


def item_key_of(content_type: ContentType | int, object_id: Any) -> str:
    """Return the ``"content_type_id:object_id"`` key of an item."""
    return f"{getattr(content_type, 'pk', content_type)}:{object_id}"
