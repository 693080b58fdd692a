"""Provides ``columns_by_aggregate``: one interaction model read on PostgreSQL as packed binary records.

Why: the server turns every row into one fixed-width record (ids as int8 or uuid, numbers and
times as float8 with NaN for NULL, each by its binary send function) and concatenates them with
``string_agg``; one binary ``COPY`` brings the result, which ``np.frombuffer`` cuts without a
Python object per value. Reading the same rows through the cursor builds a tuple, a datetime and
a UUID per row, which dominated a full build's load (docs/decisions.md has the figures).
What happens if it breaks: it reaches into psycopg 3 (``cursor.cursor.copy``) and PostgreSQL's
send functions. Where they are missing (psycopg 2) or a value would not survive the trip (an id
that is neither integer nor UUID, a non-numeric number column, a NULL id), it returns None and
``recommendations.db.columns`` reads through the cursor instead: slower, same result.
"""
from __future__ import annotations

import numpy as np
from django.db import connections, models

from .fields import RawColumns, concrete_field, id_send_type, packed_columns

# The PostgreSQL send function of each fixed-width column type, and its bytes.
SEND = {"int8": ("int8send", np.dtype(">i8")), "float8": ("float8send", np.dtype(">f8")),
        "uuid": ("uuid_send", np.dtype("V16"))}
CASTS = {"uuid": "uuid", "int8": "bigint", "float8": "double precision"}
# Per string_agg value (PostgreSQL refuses one over 1 GB); more rows are parted into more values.
AGGREGATE_MAX_BYTES = 256 * 2**20


class FloatOrNaN(models.Func):
    """A number as double precision, NaN where NULL: every record has the same width."""

    template = "COALESCE(CAST(%(expressions)s AS double precision), 'NaN'::double precision)"
    output_field = models.FloatField()


class EpochOrNaN(models.Func):
    """Unix seconds as double precision (``date_part`` avoids ``EXTRACT``'s numeric), NaN where NULL."""

    template = "COALESCE(date_part('epoch', %(expressions)s), 'NaN'::double precision)"
    output_field = models.FloatField()


def _record_layout(model, names: list[str], ct_expr: str | None, ts_field: str | None,
                   extra: list[str]) -> tuple[dict, list[str]] | None:
    """Return the annotations of one record and their packed types, or None when a column cannot be packed."""
    types = [id_send_type(concrete_field(model, name)) for name in names[:2]]
    if None in types:
        return None
    expressions = {"_bre_c0": models.F(names[0]), "_bre_c1": models.F(names[1])}
    pos = 2
    if ct_expr:
        expressions["_bre_ct"] = models.F(names[pos])
        types.append("int8")
        pos += 1
    for key in extra:
        if not isinstance(concrete_field(model, names[pos]), (models.IntegerField, models.FloatField,
                                                              models.DecimalField)):
            return None
        expressions[f"_bre_{key}"] = FloatOrNaN(names[pos])
        types.append("float8")
        pos += 1
    if ts_field:
        expressions["_bre_ts"] = EpochOrNaN(ts_field)
        types.append("float8")
    return expressions, types


def _aggregates(packed: str, parts: int, user_hash: str) -> str:
    """SQL: one ``string_agg`` of the records, or ``parts`` of them parted by a hash of the user id."""
    if parts == 1:
        return f"string_agg({packed}, ''::bytea)"
    return ", ".join(f"string_agg({packed}, ''::bytea) FILTER (WHERE ({user_hash} & 2147483647) % {parts} = {part})"
                     for part in range(parts))


def columns_by_aggregate(qs: models.QuerySet, names: list[str], ct_expr: str | None, ts_field: str | None,
                         extra: list[str]) -> RawColumns | None:
    """Read one interaction model as packed binary records; None where this does not apply."""
    layout = _record_layout(qs.model, names, ct_expr, ts_field, extra)
    if layout is None:
        return None
    expressions, types = layout
    record = np.dtype([(alias, SEND[kind][1]) for alias, kind in zip(expressions, types)])
    connection = connections[qs.db]
    qn = connection.ops.quote_name
    inner, params = qs.annotate(**expressions).values_list(*expressions).query.sql_with_params()
    packed = " || ".join(f"{SEND[kind][0]}(CAST(t.{qn(alias)} AS {CASTS[kind]}))"
                         for alias, kind in zip(expressions, types))
    with connection.cursor() as cursor:
        if not hasattr(cursor.cursor, "copy"):
            return None
        cursor.execute(f"SELECT count(*) FROM ({inner}) t", params)
        n = cursor.fetchone()[0]
        parts = max(1, -(-n * record.itemsize // AGGREGATE_MAX_BYTES))
        user_hash = f"{'uuid_hash' if types[0] == 'uuid' else 'hashint8'}(t.{qn('_bre_c0')})"
        sql = f"COPY (SELECT {_aggregates(packed, parts, user_hash)} FROM ({inner}) t) TO STDOUT (FORMAT BINARY)"
        with cursor.cursor.copy(sql, params) as copy:
            copy.set_types(["bytea"] * parts)
            (values,) = list(copy.rows())
    blob = b"".join(value for value in values if value is not None)
    if len(blob) != n * record.itemsize:
        return None  # a NULL id left its row out
    rows = np.frombuffer(blob, dtype=record)
    columns = [rows[alias] if kind == "uuid" else rows[alias].astype(rows[alias].dtype.newbyteorder("="))
               for alias, kind in zip(expressions, types)]
    return packed_columns(columns, n, ct_expr, extra, ts_field)
