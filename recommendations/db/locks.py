"""Provides ``keyed_write_lock``: the lock a writer takes so that twins of one task never interleave their writes.

Why: a task delivered twice at once must not interleave its check (or delete) and insert with
its twin's (on PostgreSQL's READ COMMITTED both would find nothing, then both insert). On
PostgreSQL the twins meet on a transaction-level advisory lock keyed by (row, ``key``), so writers
with different keys run in parallel, and the parent row is held ``FOR KEY SHARE``: writers share
it, while a ``FOR UPDATE`` of that row (the build's switch) waits for the writes in flight.
What happens if it breaks: elsewhere (SQLite, other databases) the parent row is locked
``FOR UPDATE``, the portable path, which serialises the writers of one parent (SQLite serialises
every write anyway); the result is the same, only slower on PostgreSQL.
"""
from __future__ import annotations

from typing import Any

from django.db import connections, router


def keyed_write_lock(model, pk: Any, field: str, *, key: str, namespace: str) -> Any:
    """Lock what a write keyed ``key`` under row ``pk`` of ``model`` needs, in the current transaction.

    Return the row's ``field`` (read under the lock), or None if the row is gone. Call inside
    ``transaction.atomic()``.
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model.objects.select_for_update().filter(pk=pk).values_list(field, flat=True).first()
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", [namespace, f"{pk}:{key}"])
        cursor.execute(f"SELECT {qn(model._meta.get_field(field).column)} FROM {qn(model._meta.db_table)} "
                       f"WHERE {qn(model._meta.pk.column)} = %s FOR KEY SHARE", [pk])
        row = cursor.fetchone()
    return row[0] if row else None
