"""Provides the stored response bodies of readers' default picks: read, store and invalidate.

``GET /api/recommendations/`` without parameters is the request every client makes. Computing
it takes the stored rows, the reader's history (to drop what they have seen since), the editors'
rules, the items themselves and a serializer: most of a request's CPU. This module
keeps the finished response body per reader (``UserPayload``), so that the request costs
authentication plus one indexed lookup.

**When a body is computed.** Lazily, on the first default request after an invalidation (the
slow path runs once and its bytes are stored), not by builds or refreshes. A full build would
otherwise render every reader's picks, most of whom will not come before the next build, and an
editor's rule would force all of them to be rendered again; the first request after a change
pays the slow path once instead.

**When a body is served.** Only while all of these still hold, checked by the same query that
reads it:

* its ``build_id`` is the active build: any switch (a new build, the admin's "make active", a
  switch back) changes it, whatever code path made it; saving a build as active also bumps the
  generation, because a build id can become active again (a body computed across a switch and
  back would otherwise match);
* its ``generation`` is the current ``PayloadGeneration``: bumped, in the writing transaction,
  by every change that can alter anyone's picks: an item saved or deleted (published flag,
  title, ...), an editor's rule (pin, boost, ban) saved or deleted, the content neighbours of an
  item recomputed (``item_content_refresh``), and ``user_payloads_invalidate()``;
* its ``config`` is the fingerprint of the serving settings (items, filters, interactions,
  adapter, diversity, renderer) and of the request's language (the explanations are
  translated), so a changed setting or adapter is never served stale bodies;
* its ``version`` was not changed since the body's computation began: every interaction of the
  reader (read, rating, "not interested", their deletion) and their own refresh
  (``user_refresh``) replace it with a new random token, in the writing transaction, and clear
  the body. The body is stored with a compare-and-set on the version read *before* the slow path
  ran, so a change that commits while a body is being computed is never hidden by it.

A deleted reader's row goes with them (``on_delete=CASCADE``).

Changes that bypass model signals (``QuerySet.update()`` on items or rules, raw SQL, related
objects shown by a custom ``adapter.item_payload()``, a deployment that changes the output) must
call ``user_payloads_invalidate()`` (or ``manage.py recommendations payloads-clear``).
Bumping the generation locks its single row until the writing transaction ends, so concurrent
item and rule writes queue behind each other: right for editors' changes, which are rare, and
the price of never serving a body computed before a change that has committed.
``RECOMMENDATIONS["STORED_PAYLOADS"] = False`` turns the store off (every request is computed).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import DatabaseError, router, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from .conf import app_settings
from .db.payload_lookup import payload_row_read
from .models import BuildRun, PayloadGeneration, UserPayload
from .rules import rules_cache_clear

logger = logging.getLogger(__name__)

GENERATION_PK = 1
# Bump when the stored body format changes without a settings change (e.g. the output serializer).
FORMAT_VERSION = 3


@dataclass(frozen=True)
class PayloadSnapshot:
    """What one lookup read: the live build and generation, and the reader's stored row (if any)."""

    build_id: int | None
    generation: int | None
    version: str | None
    stored_build_id: int | None
    stored_generation: int | None
    stored_config: str | None
    body: bytes | None

    def fresh_body(self, config: str) -> bytes | None:
        """Return the stored body if it may be served now, else None."""
        if (
            self.body is not None
            and self.build_id is not None
            and self.generation is not None
            and self.stored_build_id == self.build_id
            and self.stored_generation == self.generation
            and self.stored_config == config
        ):
            return self.body
        return None


def _new_version() -> str:
    return uuid.uuid4().hex


def user_payload_snapshot(*, user_id: Any) -> PayloadSnapshot:
    """Read, with one query, the active build, the generation and ``user_id``'s stored body."""
    row = payload_row_read(user_id=user_id, generation_pk=GENERATION_PK)
    body = row[6]
    return PayloadSnapshot(
        build_id=row[0], generation=row[1], version=row[2], stored_build_id=row[3], stored_generation=row[4],
        stored_config=row[5], body=bytes(body) if body is not None else None,
    )


def fresh_body_subquery(*, user: Any, config: str) -> Subquery:
    """Return ``user``'s stored body where it may be served now (as ``fresh_body()`` decides), else NULL.

    For annotating a query that already finds the reader (``user`` is an ``OuterRef`` to their
    id): the token lookup of ``GET /api/recommendations/`` reads the body with the same round
    trip (``recommendations.api.authentication``). A NULL means "not known fresh": the caller
    then takes ``user_payload_get_or_build()``, which reads again and renders if needed.
    """
    active = BuildRun.objects.active().values("id")[:1]
    generation = PayloadGeneration.objects.filter(pk=GENERATION_PK).values("value")
    fresh = UserPayload.objects.filter(
        user=user, build_id=Subquery(active), generation=Subquery(generation), config=config, body__isnull=False,
    )
    return Subquery(fresh.values("body")[:1])


def config_fingerprint(*parts: str) -> str:
    """Return the fingerprint of the settings a body depends on, plus ``parts`` (e.g. the renderer)."""
    return _fingerprint(parts)


@functools.lru_cache(maxsize=32)
def _fingerprint(parts: tuple[str, ...]) -> str:
    names = ("ITEM_MODELS", "ITEM_FILTERS", "INTERACTIONS", "ADAPTER", "EXCLUDE_SEEN", "MMR_LAMBDA",
             "DIVERSITY_CAPS", "DIVERSITY_PENALTY")
    data = {name: getattr(app_settings, name) for name in names}
    text = json.dumps([FORMAT_VERSION, data, parts], sort_keys=True, default=repr)
    return hashlib.sha1(text.encode()).hexdigest()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("RECOMMENDATIONS", "REST_FRAMEWORK"):
        _fingerprint.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="recommendations.payloads.settings")


def user_payload_get_or_build(*, user_id: Any, config: str, render: Callable[[], bytes]) -> bytes:
    """Return ``user_id``'s stored body if it is fresh; otherwise ``render()`` it, store it and return it.

    ``render`` must compute the body from the database as it is now (the slow path). It is
    called after the reader's version, the build and the generation were read, so the body is
    stored only if none of them changed meanwhile.
    """
    snapshot = user_payload_snapshot(user_id=user_id)
    body = snapshot.fresh_body(config)
    if body is not None:
        return body
    if snapshot.version is None or snapshot.generation is None:
        snapshot = _rows_ensure(user_id=user_id, snapshot=snapshot)
    # The editors' rules are cached for a few seconds per process: read them afresh for a body that may live long.
    rules_cache_clear()
    body = render()
    user_payload_store(user_id=user_id, snapshot=snapshot, config=config, body=body)
    return body


def _rows_ensure(*, user_id: Any, snapshot: PayloadSnapshot) -> PayloadSnapshot:
    """Create the reader's row and the generation row if missing, then read them again."""
    try:
        with transaction.atomic(using=router.db_for_write(UserPayload)):
            if snapshot.generation is None:
                PayloadGeneration.objects.get_or_create(pk=GENERATION_PK, defaults={"value": 1})
            if snapshot.version is None:
                UserPayload.objects.bulk_create([UserPayload(user_id=user_id, version=_new_version())],
                                                ignore_conflicts=True)
    except DatabaseError:
        logger.warning("Could not create the stored picks row of user %s", user_id, exc_info=True)
        return snapshot
    return user_payload_snapshot(user_id=user_id)


def user_payload_store(*, user_id: Any, snapshot: PayloadSnapshot, config: str, body: bytes) -> bool:
    """Store ``body`` unless the reader was invalidated since ``snapshot`` was read; return whether it was."""
    if snapshot.version is None or snapshot.build_id is None or snapshot.generation is None:
        return False
    if not app_settings.STORED_PAYLOADS:
        return False
    try:
        with transaction.atomic(using=router.db_for_write(UserPayload)):
            stored = UserPayload.objects.filter(user_id=user_id, version=snapshot.version).update(
                build_id=snapshot.build_id, generation=snapshot.generation, config=config, body=body,
                stored_at=timezone.now(),
            )
    except DatabaseError:  # e.g. a read-only database: serve without storing
        logger.warning("Could not store the picks of user %s", user_id, exc_info=True)
        return False
    return bool(stored)


def user_payload_invalidate(*, user_id: Any) -> None:
    """Forget ``user_id``'s stored body; call it in the transaction that changes their picks or history.

    An upsert, not an update: a body being computed for a reader who has no committed row yet
    (under ``ATOMIC_REQUESTS``) then waits on this row's lock instead of missing the change.
    """
    UserPayload.objects.bulk_create(
        [UserPayload(user_id=user_id, version=_new_version(), body=None)],
        update_conflicts=True, unique_fields=["user"], update_fields=["version", "body"],
    )


def user_payloads_invalidate() -> None:
    """Forget every stored body (bump the generation); call it in the transaction of the change."""
    if not PayloadGeneration.objects.filter(pk=GENERATION_PK).update(value=F("value") + 1):
        _, created = PayloadGeneration.objects.get_or_create(pk=GENERATION_PK, defaults={"value": 1})
        if not created:
            PayloadGeneration.objects.filter(pk=GENERATION_PK).update(value=F("value") + 1)
