"""Provides ``interaction_columns_read``: the one way interactions are read, as columns.

Each configured interaction model is read with one query and no model instances: through a
vendor's packed fast path (``packed_postgresql``, ``packed_sqlite``) where it applies, else
through the cursor, the portable path. Every path returns the same raw columns, which are then
turned into ``InteractionColumns`` with one id conversion per distinct id.
"""
from __future__ import annotations

import datetime

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, models
from django.db.models.functions import Cast

from ..interactions import OPTIONAL_COLUMNS, InteractionColumns, InteractionQuery
from . import packed_postgresql, packed_sqlite
from .fields import RawColumns, concrete_field, distinct_map


class Epoch(models.Func):
    """Unix seconds of a PostgreSQL timestamp as a float (``EXTRACT`` alone gives a numeric: a Decimal per row)."""

    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
    output_field = models.FloatField()


def _packed_read(query: InteractionQuery) -> RawColumns | None:
    """The vendor's packed reader's columns, or None where there is none or it does not apply."""
    vendor = connections[query.queryset.db].vendor
    args = (query.queryset, list(query.names), query.ct_expr, query.ts_field, [key for key, _ in query.extra])
    if vendor == "postgresql":
        return packed_postgresql.columns_by_aggregate(*args)
    if vendor == "sqlite":
        return packed_sqlite.columns_by_concat(*args)
    return None


def cursor_read(query: InteractionQuery) -> RawColumns:
    """Read one interaction model through the cursor: the portable path (on PostgreSQL, times as epoch seconds)."""
    qs, names = query.queryset, list(query.names)
    epoch = False
    if connections[qs.db].vendor == "postgresql":
        # psycopg builds a datetime (and a UUID) per row: ask the server for seconds and for UUID text instead.
        for position in (0, 1):
            field = concrete_field(qs.model, names[position])
            if isinstance(getattr(field, "target_field", field), models.UUIDField):
                qs = qs.annotate(**{f"_bre_text_{position}": Cast(names[position], models.TextField())})
                names[position] = f"_bre_text_{position}"
        if query.ts_field:
            qs = qs.annotate(_bre_epoch=Epoch(query.ts_field))
            names[-1], epoch = "_bre_epoch", True
    sql, params = qs.values_list(*names).query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(rows)
    cols = list(zip(*rows)) if rows else [[] for _ in names]
    rest = iter(cols[2:])
    ct = np.asarray(next(rest), dtype=np.int64) if query.ct_expr else None
    values = {key: _floats(list(next(rest))) for key, _ in query.extra}
    if not query.ts_field:
        timestamp = np.full(n, np.nan)
    else:
        stamps = list(next(rest))
        timestamp = _floats(stamps) if epoch else timestamps(stamps)
    return list(cols[0]), list(cols[1]), ct, values, timestamp


def interaction_columns_read(query: InteractionQuery) -> InteractionColumns:
    """Read one configured interaction model as columns: the packed fast path where it applies, else the cursor."""
    raw = _packed_read(query)
    if raw is None:
        raw = cursor_read(query)
    users, object_ids, ct, values, timestamp = raw
    n = len(users)
    user_pk = get_user_model()._meta.pk
    item_pk = query.item_pk
    floats = {key: values.get(key, np.full(n, np.nan)) for key in OPTIONAL_COLUMNS}
    if query.constant_weight is not None:
        floats["weight"] = np.where(np.isnan(floats["weight"]), query.constant_weight, floats["weight"])
    # Raw values skip Django's converters (e.g. SQLite stores UUIDs as hex): canonicalise ids.
    return InteractionColumns(
        user_id=distinct_map(users, user_pk.to_python),
        content_type_id=np.full(n, query.fixed_ct, dtype=np.int64) if ct is None else ct.astype(np.int64),
        object_id=distinct_map(object_ids, (lambda raw: str(item_pk.to_python(raw))) if item_pk is not None else str),
        kind=np.full(n, query.kind, dtype=object).astype(str),
        timestamp=timestamp, **floats,
    )


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def timestamps(values: list) -> np.ndarray:
    """Convert database timestamps (datetimes, or SQLite's ISO strings) to unix seconds."""
    if not values:
        return np.zeros(0)
    if isinstance(values[0], str):
        stamps = np.array([v.replace(" ", "T")[:26].rstrip("Z") if v else "NaT" for v in values],
                          dtype="datetime64[us]")
        return stamps.astype("int64") / 1e6
    if settings.USE_TZ:  # the raw cursor gives SQLite's stored UTC as naive datetimes: not local times
        values = [v.replace(tzinfo=datetime.timezone.utc) if v is not None and v.tzinfo is None else v for v in values]
    return np.array([v.timestamp() if v is not None else np.nan for v in values], dtype=np.float64)
