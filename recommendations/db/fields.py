"""Provides the helpers the interaction column readers share: field lookup, id types and distinct conversion."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from django.core.exceptions import FieldDoesNotExist
from django.db import models

# (users, object_ids, content types or None, {optional column: floats}, timestamps)
RawColumns = tuple[Any, Any, "np.ndarray | None", dict[str, np.ndarray], np.ndarray]


def concrete_field(model: type[models.Model], attname: str):
    """Return the field whose column is ``attname`` (``user_id`` -> the ``user`` foreign key), or None."""
    try:
        return model._meta.get_field(attname)  # Django maps both names and attnames
    except FieldDoesNotExist:
        return None


def id_send_type(field) -> str | None:
    """Return how an id column is packed: ``int8``, ``uuid``, or None (e.g. text: not fixed-width)."""
    field = getattr(field, "target_field", field)
    if isinstance(field, models.UUIDField):
        return "uuid"
    if isinstance(field, models.IntegerField):  # AutoField and BigAutoField too
        return "int8"
    return None


def packed_columns(columns: list[np.ndarray], n: int, ct_expr: str | None, extra: list[str],
                   ts_field: str | None) -> RawColumns:
    """Return a packed reader's result from its columns in query order."""
    rest = iter(columns[2:])
    ct = next(rest) if ct_expr else None
    values = {key: next(rest) for key in extra}
    timestamp = next(rest) if ts_field else np.full(n, np.nan)
    return columns[0], columns[1], ct, values, timestamp


def distinct_map(values, convert: Callable[[Any], Any]) -> list:
    """Return ``[convert(v) for v in values]``, calling ``convert`` once per distinct value.

    UUIDs arrive as 16 raw bytes (PostgreSQL) or 32 hex digits (SQLite); fixed-width bytes are
    deduplicated with a dict, because ``np.unique`` would sort them first.
    """
    if not len(values):
        return []
    if not isinstance(values, np.ndarray) or values.dtype.kind == "O":
        keys = list(values)
        table = {raw: convert(raw) for raw in dict.fromkeys(keys)}
        return list(map(table.__getitem__, keys))
    if values.dtype.kind in "SV":
        keys = values.tolist()
        if values.dtype.kind == "V":
            table = {raw: convert(uuid.UUID(bytes=raw)) for raw in dict.fromkeys(keys)}
        else:
            table = {raw: convert(raw.decode("ascii")) for raw in dict.fromkeys(keys)}
        return list(map(table.__getitem__, keys))
    distinct, inverse = np.unique(values, return_inverse=True)
    lookup = np.empty(len(distinct), dtype=object)
    lookup[:] = [convert(raw) for raw in distinct.tolist()]
    return lookup[inverse.ravel()].tolist()
