"""Provides ``rows_insert``: many plain rows into a model's table, by ``COPY`` on PostgreSQL or ``executemany``.

Why: at a few hundred thousand rows, building model instances for ``bulk_create`` costs more
than the insert itself, and PostgreSQL's ``COPY`` streams the rows instead of a round trip per batch.
What happens if it breaks: the fast path needs psycopg 3's ``cursor.copy`` through Django's
cursor wrapper (``cursor.cursor``); without it (psycopg 2, another database) the rows go through
``executemany`` in batches, which is the portable path and gives the same rows.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from django.db import connections, router, transaction

from .sqlite_locked import retry_when_locked

BATCH_SIZE = 50_000


@retry_when_locked
def rows_insert(model, columns: tuple[str, ...], rows: Iterable[tuple], *, using: str | None = None) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``model``'s table; return how many.

    Values must already be what the database stores (ids, numbers, text); datetimes are adapted
    for the database on the portable path. ``rows`` may be a generator: it is read once.
    """
    connection = connections[using or router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in columns]
    table, names = _quoted(connection, model, fields)
    # One transaction: SQLite in autocommit mode would otherwise commit (and sync) every row.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and hasattr(cursor.cursor, "copy"):
            return copy_rows(cursor.cursor, f"COPY {table} ({names}) FROM STDIN", rows)
        datetimes = [f.get_internal_type() == "DateTimeField" for f in fields]
        return executemany_rows(cursor, f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})",
                                rows, datetimes, connection.ops.adapt_datetimefield_value)


def _quoted(connection, model, fields) -> tuple[str, str]:
    """Return ``model``'s table and the columns of ``fields``, quoted for ``connection``."""
    qn = connection.ops.quote_name
    return qn(model._meta.db_table), ", ".join(qn(f.column) for f in fields)


def copy_rows(raw_cursor, sql: str, rows: Iterable[tuple]) -> int:
    """Stream ``rows`` into a psycopg 3 ``COPY ... FROM STDIN``; return how many."""
    total = 0
    with raw_cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            total += 1
    return total


def copy_text(model, columns: tuple[str, ...], lines: Iterable[str], *, using: str | None = None) -> int | None:
    """Stream ready lines of ``COPY``'s text format (``copy_line()``) into ``model``'s table; return how many.

    Return None, writing nothing, where ``COPY`` is not available (not PostgreSQL, or not psycopg 3):
    the caller then inserts the rows through ``rows_insert``.
    """
    connection = connections[using or router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return None
    table, names = _quoted(connection, model, [model._meta.get_field(name) for name in columns])
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if not hasattr(cursor.cursor, "copy"):
            return None
        lines = list(lines)
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            copy.write("".join(lines))
        return len(lines)


# COPY's text format: these characters are escaped, None is \N, other values are their text.
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Most text has none of them, and looking costs a fifth of escaping.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]").search


def copy_line(row: tuple) -> str:
    """Return ``row`` (None, text, numbers, datetimes) as one line of ``COPY``'s text format."""
    return "\t".join([
        "\\N" if value is None
        else (value.translate(COPY_ESCAPES) if _COPY_SPECIAL(value) else value) if isinstance(value, str)
        else value.isoformat() if isinstance(value, datetime) else str(value) for value in row]) + "\n"


def executemany_rows(cursor, sql: str, rows: Iterable[tuple], datetimes: list[bool], adapt) -> int:
    """Insert ``rows`` with ``executemany`` in batches of ``BATCH_SIZE``; return how many."""
    total, batch = 0, []
    for row in rows:
        batch.append(tuple(adapt(v) if dt else v for v, dt in zip(row, datetimes)) if any(datetimes) else row)
        if len(batch) >= BATCH_SIZE:
            cursor.executemany(sql, batch)
            total, batch = total + len(batch), []
    if batch:
        cursor.executemany(sql, batch)
        total += len(batch)
    return total
