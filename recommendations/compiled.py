"""Provides ``CompiledQuery``: a queryset's SQL compiled once, its rows turned into instances as the ORM does.

Building a query (cloning the queryset, resolving lookups, compiling joins and columns) can cost
more CPU than running it: about 1 ms for DRF's token lookup with its user, against 0.1 ms for
the round trip. For the few queries a hot request path runs with a different value each time,
``CompiledQuery`` keeps the ORM's SQL and row layout and only substitutes the value: the same
SQL through Django's cursor (so it is logged and counted like any query), the same converters,
``Model.from_db()`` and ``select_related`` population as ``QuerySet.__iter__``.

``binary_results()`` asks psycopg 3 for a cursor's results in PostgreSQL's binary format, for
queries that read large ``bytea`` values (stored response bodies).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

try:
    from psycopg import ClientCursor as _ClientCursor
    from psycopg import Cursor as _Cursor
    from psycopg.pq import Format

    _BINARY = Format.BINARY
except ImportError:  # psycopg2, or no PostgreSQL driver
    _ClientCursor = _Cursor = None

# Stands for the value while the query is compiled: no real lookup value holds NUL characters.
PLACEHOLDER = "\x00value\x00"


def binary_results(cursor: Any) -> None:
    """Ask for binary results on a Django cursor, where psycopg 3 binds on the server; else do nothing.

    A ``bytea`` value then comes as its bytes, not as hex text that PostgreSQL must encode and
    psycopg decode (twice its size; about 0.05-0.1 ms of each side's CPU at 7 KB). Other values
    load as the same Python types. Client-side cursors cannot ask for binary results.
    """
    raw = getattr(cursor, "cursor", None)
    if _Cursor is not None and isinstance(raw, _Cursor) and not isinstance(raw, _ClientCursor):
        raw.format = _BINARY


class CompiledQuery:
    """``make_queryset(PLACEHOLDER)`` compiled for one database alias; ``first(value)`` runs it with ``value``.

    ``usable`` is False when the ORM would assemble rows differently (composite keys): callers
    then run the queryset itself. ``binary=True`` asks for binary results (``binary_results()``).
    """

    def __init__(self, make_queryset: Callable[[str], QuerySet], alias: str, *, binary: bool = False):
        queryset = make_queryset(PLACEHOLDER).using(alias)
        self.alias = alias
        self.binary = binary
        self.compiler = queryset.query.get_compiler(using=alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.value_index = [i for i, p in enumerate(self.params) if p == PLACEHOLDER]
        select, klass_info = self.compiler.select, self.compiler.klass_info
        columns = [col[0] for col in select]
        self.usable = len(self.value_index) == 1 and not self.compiler.has_composite_fields(columns)
        self.converters = self.compiler.get_converters(columns)
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.span = slice(start, end)
        self.init_list = [col[0].target.attname for col in select[self.span]]
        self.populators = get_related_populators(klass_info, select, alias)
        self.annotations = dict(self.compiler.annotation_col_map)

    def first(self, value: Any) -> Any | None:
        """Return the first instance for ``value`` (annotations set as attributes), or None."""
        params = list(self.params)
        params[self.value_index[0]] = value
        with connections[self.alias].cursor() as cursor:
            if self.binary:
                binary_results(cursor)
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if self.converters:
            # The compiler keeps the compiling thread's connection: converters only read its settings.
            row = next(self.compiler.apply_converters([row], self.converters))
        obj = self.model.from_db(self.alias, self.init_list, row[self.span])
        for populator in self.populators:
            populator.populate(row, obj)
        for name, position in self.annotations.items():
            setattr(obj, name, row[position])
        return obj
