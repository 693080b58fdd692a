"""Provides ``columns_by_concat``: one interaction model read on SQLite as one text value per column.

Why: one pass of ``group_concat`` turns each column into one string (integers and numbers
comma-separated, UUIDs as their 32 stored hex digits back to back, NULL numbers as ``nan``),
which numpy parses without a Python object per value; times are computed by SQLite as integer
microseconds since the epoch, so no ``datetime`` is built per row and stored UTC times are never
taken for local ones. The cursor path costs a tuple and conversions per row (docs/decisions.md).
What happens if it breaks: it relies on SQLite's ``printf``, ``julianday`` and the length limit
read from the raw ``sqlite3`` connection. Whatever would not survive the trip (UUIDs that are not
32 digits, floats whose 17 digits do not read back equal, a NULL id, text in a number column, an id
that is neither integer nor UUID, no ``USE_TZ``, values longer than SQLite allows) makes it
return None, and ``recommendations.db.columns`` reads through the cursor instead.
"""
from __future__ import annotations

import sqlite3
import warnings

import numpy as np
from django.conf import settings
from django.db import connections, models

from .fields import RawColumns, concrete_field, id_send_type, packed_columns

# A packed value takes at most 33 bytes plus its comma: 32 hex digits, or a 17-digit float.
BYTES_PER_VALUE = 34


def _column_kinds(model, names: list[str], ct_expr: str | None, ts_field: str | None,
                  extra: list[str]) -> list[str | None]:
    """Return how each column is packed (``int``, ``hex32``, ``float``, ``time``), None where it cannot be."""
    kinds = [{"int8": "int", "uuid": "hex32"}.get(id_send_type(concrete_field(model, name))) for name in names[:2]]
    if ct_expr:
        kinds.append("int")
    for name in names[len(kinds):len(kinds) + len(extra)]:
        field = concrete_field(model, name)
        kinds.append("int" if isinstance(field, models.IntegerField)
                     else "float" if isinstance(field, models.FloatField) else None)
    if ts_field:
        field = concrete_field(model, ts_field)
        kinds.append("time" if isinstance(field, models.DateTimeField) and settings.USE_TZ else None)
    return kinds


def _column_sql(column: str, kind: str, is_id: bool) -> tuple[str, str | None]:
    """SQL: the ``group_concat`` of one column, and the check that counts values that would not survive."""
    if kind == "hex32":
        return f"group_concat({column}, '')", f"length({column}) <> 32"
    if kind == "time":
        return f"group_concat(coalesce({sqlite_microseconds(column)}, 'nan'), ',')", None
    if kind == "float":
        # 17 significant digits read back as the same double; printf would print NULL as 0.0.
        return (f"group_concat(CASE WHEN {column} IS NULL THEN 'nan' ELSE printf('%%!.17g', {column}) END, ',')",
                f"CAST(printf('%%!.17g', {column}) AS REAL) <> {column}")
    if is_id:  # an integer id: a NULL is left out, and the count tells
        return f"group_concat({column}, ',')", None
    return f"group_concat(coalesce({column}, 'nan'), ',')", None  # an integer number: NULL as NaN


def _parse(kinds: list[str], texts: list[str | None], n: int, n_ids: int) -> list[np.ndarray] | None:
    """Parse the packed texts into arrays of ``n`` values; None where one does not parse."""
    columns = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and stops) where text does not parse
        try:
            for position, (kind, text) in enumerate(zip(kinds, texts)):
                text = text or ""
                if kind == "hex32":
                    column = np.frombuffer(text.encode("ascii"), dtype="S32")
                elif position < n_ids:
                    column = np.fromstring(text, dtype=np.int64, sep=",") if text else np.zeros(0, dtype=np.int64)
                else:
                    column = np.fromstring(text, dtype=np.float64, sep=",") if text else np.zeros(0)
                if len(column) != n:
                    return None
                columns.append(column)
        except (DeprecationWarning, ValueError):
            return None
    return columns


def columns_by_concat(qs: models.QuerySet, names: list[str], ct_expr: str | None, ts_field: str | None,
                      extra: list[str]) -> RawColumns | None:
    """Read one interaction model as one packed text value per column; None where this does not apply."""
    kinds = _column_kinds(qs.model, names, ct_expr, ts_field, extra)
    if None in kinds:
        return None
    n_ids = 2 + bool(ct_expr)
    aliases = [f"_bre_c{position}" for position in range(len(kinds))]
    expressions = {alias: models.F(name) for alias, name in zip(aliases, names[:len(kinds) - bool(ts_field)])}
    if ts_field:
        expressions[aliases[-1]] = models.F(ts_field)
    connection = connections[qs.db]
    qn = connection.ops.quote_name
    inner, params = qs.annotate(**expressions).values_list(*expressions).query.sql_with_params()
    sql = [_column_sql(f"t.{qn(alias)}", kind, position < n_ids)
           for position, (alias, kind) in enumerate(zip(aliases, kinds))]
    checks = [check for _, check in sql if check]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({inner}) t", params)
        n = cursor.fetchone()[0]
        raw = connection.connection
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) if hasattr(raw, "getlimit") else 10**9
        if n * BYTES_PER_VALUE > limit:
            return None
        bad = f"total({' OR '.join(checks)})" if checks else "0"
        cursor.execute(f"SELECT {bad}, {', '.join(value for value, _ in sql)} FROM ({inner}) t", params)
        bad, *texts = cursor.fetchone()
    if bad:
        return None
    columns = _parse(kinds, texts, n, n_ids)
    if columns is None:
        return None
    if ts_field:
        columns[-1] = columns[-1] / 1e6  # microseconds -> seconds
    return packed_columns(columns, n, ct_expr, extra, ts_field)


def sqlite_microseconds(column: str) -> str:
    """SQL: integer microseconds since the epoch of a SQLite datetime text (``USE_TZ``: stored in UTC).

    Exact for what Django stores (``YYYY-MM-DD HH:MM:SS[.ffffff]``): SQLite counts whole seconds
    (``julianday`` of the first 19 characters, rounded) and the digits after the point are read
    as they are. Any other form SQLite understands (a ``T``, a ``Z``, an offset) is exact to the
    millisecond, which is what SQLite keeps.
    """
    def seconds(text: str) -> str:
        return f"(CAST(round(julianday({text}) * 86400) AS INTEGER) - 210866760000)"  # 2440587.5 days: 1970-01-01

    return (f"CASE WHEN length({column}) = 19 THEN {seconds(column)} * 1000000 "
            f"WHEN length({column}) = 26 AND substr({column}, 20, 1) = '.' "
            f"THEN {seconds(f'substr({column}, 1, 19)')} * 1000000 + CAST(substr({column}, 21) AS INTEGER) "
            f"ELSE (CAST(round(julianday({column}) * 86400000) AS INTEGER) - 210866760000000) * 1000 END")
