"""Provides ``blob_insert`` and ``blob_read``: one large ``bytea`` value in and out, by binary ``COPY`` on PostgreSQL.

Why: a bytes parameter of a client-side bound query (Django's default with psycopg 3) is inlined
in the SQL as hex text, twice its size, for PostgreSQL to parse; reading one back comes as hex
text too. A binary ``COPY`` moves the bytes as they are (docs/decisions.md has the figures).
What happens if it breaks: the fast path needs psycopg 3's ``cursor.copy`` through Django's cursor
wrapper; without it the row is written with ``Model.objects.create`` and read with the ORM, the
portable path, which stores and returns the same bytes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router, transaction


def blob_insert(model, values: dict[str, Any], pg_types: Sequence[str]) -> None:
    """Insert one row of ``model`` with ``values`` (field name -> value) in order; ``pg_types`` names their types."""
    connection = connections[router.db_for_write(model)]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy"):
            qn = connection.ops.quote_name
            columns = ", ".join(qn(model._meta.get_field(name).column) for name in values)
            with cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(pg_types))
                copy.write_row(list(values.values()))
            return
    model.objects.using(connection.alias).create(**{
        model._meta.get_field(name).attname: bytes(value) if isinstance(value, memoryview) else value
        for name, value in values.items()
    })


def blob_read(queryset) -> bytes | None:
    """Return the ``bytea`` value of the first row of ``queryset`` (a one-column ``values_list``), or None."""
    connection = connections[queryset.db]
    if connection.vendor == "postgresql":
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            if hasattr(cursor.cursor, "copy"):
                with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
                    copy.set_types(["bytea"])
                    rows = list(copy.rows())
                return bytes(rows[0][0]) if rows else None
    row = queryset.first()
    return None if row is None else bytes(row[0])
