"""Provides ``CompiledQuery``: a queryset's SQL compiled once, its rows turned into instances as the ORM does.

Why: building a query (cloning the queryset, resolving lookups, compiling joins and columns) can
cost more CPU than running it. For the few queries a hot request path runs with a different value
each time (the API's token lookup), ``CompiledQuery`` keeps the ORM's SQL and row layout and only
substitutes the value: the same SQL through Django's cursor (logged and counted like any query),
the same converters, ``Model.from_db()`` and ``select_related`` population as ``QuerySet.__iter__``.
What happens if it breaks: it uses the compiler's internals (``get_compiler``, ``klass_info``,
``get_related_populators``). Where the ORM would assemble rows differently (composite keys)
``usable`` is False and callers run the queryset itself, the portable path; a Django upgrade that
changes these internals fails ``tests/recommendations/db/test_compiled.py``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

from .binary import binary_results

# Stands for the value while the query is compiled: no real lookup value holds NUL characters.
PLACEHOLDER = "\x00value\x00"


class CompiledQuery:
    """``make_queryset(PLACEHOLDER)`` compiled for one database alias; ``first(value)`` runs it with ``value``.

    With ``values=n``, ``make_queryset`` takes n placeholders and ``first()`` n values, each put
    wherever its placeholder is (one value may be used several times, e.g. a user in subqueries).

    ``usable`` is False when the ORM would assemble rows differently (composite keys): callers
    then run the queryset itself. ``binary=True`` asks for binary results (``binary_results()``).
    """

    def __init__(self, make_queryset: Callable[..., QuerySet], alias: str, *, binary: bool = False,
                 values: int = 1):
        placeholders = [PLACEHOLDER, *(f"\x00value{n}\x00" for n in range(1, values))]
        queryset = make_queryset(*placeholders).using(alias)
        self.alias = alias
        self.binary = binary
        self.compiler = queryset.query.get_compiler(using=alias)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        # Where each value goes: a value the ORM transformed (e.g. "%value%") is not found, so unusable.
        self.value_index = [[i for i, p in enumerate(self.params) if p == ph] for ph in placeholders]
        select, klass_info = self.compiler.select, self.compiler.klass_info
        columns = [col[0] for col in select]
        self.usable = all(self.value_index) and not self.compiler.has_composite_fields(columns)
        self.converters = self.compiler.get_converters(columns)
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.span = slice(start, end)
        self.init_list = [col[0].target.attname for col in select[self.span]]
        self.populators = get_related_populators(klass_info, select, alias)
        self.annotations = dict(self.compiler.annotation_col_map)

    def first(self, *values: Any) -> Any | None:
        """Return the first instance for ``values`` (annotations set as attributes), or None."""
        params = list(self.params)
        for positions, value in zip(self.value_index, values, strict=True):
            for i in positions:
                params[i] = value
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
