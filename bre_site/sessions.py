"""Provides the site's session engine: Django's database sessions, with the lookup's SQL compiled once per process.

Every signed-in request reads its session. Django builds that query afresh each time, which costs
more CPU than running it; this store runs the same lookup by key, compiled once
(``recommendations.db.compiled``), and checks the expiry date itself. Everything else (saving,
cycling keys, logout's delete) is Django's, and each request still reads the database, so a
session ended in one process is ended in all of them.
"""
from __future__ import annotations

import functools

from django.contrib.sessions.backends import db
from django.db import router
from django.utils import timezone

from recommendations.db.compiled import CompiledQuery


@functools.lru_cache(maxsize=8)
def _lookup(model: type, alias: str) -> CompiledQuery:
    return CompiledQuery(lambda key: model.objects.filter(session_key=key), alias)


class SessionStore(db.SessionStore):
    """``django.contrib.sessions.backends.db.SessionStore`` with a compiled lookup."""

    def _get_session_from_db(self):
        lookup = _lookup(self.model, router.db_for_read(self.model))
        if not lookup.usable:
            return super()._get_session_from_db()
        session = lookup.first(self.session_key)
        if session is None or session.expire_date <= timezone.now():
            self._session_key = None
            return None
        return session
