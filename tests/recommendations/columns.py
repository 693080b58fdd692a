"""Provides ``assert_columns_match_rows``: the column reader against an independent reference, the ORM row by row."""
from __future__ import annotations

import math

import pytest

from recommendations.interactions import InteractionRow


def reference_rows(adapter) -> list[InteractionRow]:
    """Every interaction read through the ORM (model converters, one tuple per row): the reference."""
    rows = []
    for config in adapter.interaction_configs():
        query = adapter.interaction_query(config)
        for values in query.queryset.values_list(*query.names).iterator(chunk_size=5000):
            rest = iter(values[2:])
            ct_id = next(rest) if query.ct_expr else query.fixed_ct
            row = {key: next(rest) for key, _ in query.extra}
            stamp = next(rest) if query.ts_field else None
            if query.constant_weight is not None and row.get("weight") is None:
                row["weight"] = query.constant_weight
            rows.append(InteractionRow(user_id=values[0], item_key=(ct_id, str(values[1])), kind=query.kind,
                                       timestamp=stamp.timestamp() if stamp is not None else None, **row))
    return rows


def _columns_and_rows(adapter) -> tuple[list, list]:
    """Every interaction as read by the column reader and by the reference, in one order, NaN as None."""
    def clean(value):
        return None if isinstance(value, float) and math.isnan(value) else value

    cols = adapter.interaction_columns()
    fields = ("stars", "dwell_seconds", "progress", "weight")
    from_columns = [
        (u, ct, o, k, *(clean(getattr(cols, f)[i]) for f in fields), t)
        for i, (u, ct, o, k, t) in enumerate(zip(cols.user_id, cols.content_type_id.tolist(), cols.object_id,
                                                 cols.kind.tolist(), cols.timestamp.tolist()))
    ]
    from_rows = [(r.user_id, r.item_key[0], r.item_key[1], r.kind,
                  *(None if getattr(r, f) is None else float(getattr(r, f)) for f in fields), r.timestamp)
                 for r in reference_rows(adapter)]
    return sorted(from_columns, key=repr), sorted(from_rows, key=repr)


def assert_columns_match_rows(adapter) -> int:
    """The fast column reader agrees with the reference on every field; return the number of interactions."""
    from_columns, from_rows = _columns_and_rows(adapter)
    assert len(from_columns) == len(from_rows)
    for got, want in zip(from_columns, from_rows):
        assert got[:-1] == want[:-1]
        assert got[-1] == pytest.approx(want[-1], abs=1e-6)
    return len(from_rows)
