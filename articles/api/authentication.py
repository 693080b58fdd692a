"""Provides the API's token authentication: DRF's ``TokenAuthentication`` with its query compiled once.

DRF looks a token up with ``Token.objects.select_related("user").get(key=key)`` on every
request. Building that query (cloning the queryset, resolving the lookup, compiling the join
and its 20-odd columns) costs more CPU than everything else a small API request does: about
1 ms of the 1.7 ms of ``GET /api/ping/`` in process (benchmarks/results/serving.md). This class
runs the same SQL, compiled by the ORM once per process and database alias, and builds the
token and its user from the row the way the ORM does (``Model.from_db`` with the backend's
converters), so everything else is DRF's: the header parsing, the ``401`` bodies ("Invalid
token.", "User inactive or deleted."), ``WWW-Authenticate: Token``. Nothing is cached between
requests but the SQL text: a deleted token or a deactivated user is refused at once.
"""
from __future__ import annotations

import functools
from typing import Any

from django.db import connections, router
from django.db.models.query import get_related_populators
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

_KEY = "\x00key\x00"  # stands for the key while the query is compiled (no real key holds NUL)


class _CompiledLookup:
    """``model.objects.select_related("user").filter(key=...)`` compiled once for one database alias."""

    def __init__(self, model: type, alias: str):
        queryset = model.objects.using(alias).select_related("user").filter(key=_KEY)
        self.alias = alias
        self.compiler = queryset.query.get_compiler(using=alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.key_index = next(i for i, p in enumerate(self.params) if p == _KEY)
        # The row layout and the objects to build, as ModelIterable reads them.
        klass_info = self.compiler.klass_info
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.span = slice(start, end)
        self.init_list = [col[0].target.attname for col in self.compiler.select[self.span]]
        self.populators = get_related_populators(klass_info, self.compiler.select, alias)
        columns = [col[0] for col in self.compiler.select]
        self.converters = self.compiler.get_converters(columns)
        # Rows of composite keys need the ORM's own assembly: such models keep DRF's lookup.
        self.usable = not self.compiler.has_composite_fields(columns)

    def get(self, key: str) -> Any | None:
        """Return the token with ``key`` and its user loaded, or None."""
        params = list(self.params)
        params[self.key_index] = key
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchmany(2)
        if not rows:
            return None
        row = rows[0]
        if self.converters:
            row = next(iter(self.compiler.apply_converters([row], self.converters)))
        token = self.model.from_db(self.alias, self.init_list, row[self.span])
        for populator in self.populators:
            populator.populate(row, token)
        return token


@functools.lru_cache(maxsize=8)
def _lookup(model: type, alias: str) -> _CompiledLookup:
    return _CompiledLookup(model, alias)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, exactly as DRF's, with the lookup's SQL compiled once per process."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        lookup = _lookup(model, router.db_for_read(model))
        if not lookup.usable:
            return super().authenticate_credentials(key)
        token = lookup.get(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
