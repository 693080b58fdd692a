"""Provides ``assert_columns_match_rows``: the full build's column reader against the adapter's row reader."""
from __future__ import annotations

import math

import pytest


def _columns_and_rows(adapter) -> tuple[list, list]:
    """Every interaction as read by the column reader and by the row reader, in one order, NaN as None."""
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
                 for r in adapter.interaction_rows()]
    return sorted(from_columns, key=repr), sorted(from_rows, key=repr)


def assert_columns_match_rows(adapter) -> int:
    """The fast column reader agrees with the row reader on every field; return the number of interactions."""
    from_columns, from_rows = _columns_and_rows(adapter)
    assert len(from_columns) == len(from_rows)
    for got, want in zip(from_columns, from_rows):
        assert got[:-1] == want[:-1]
        assert got[-1] == pytest.approx(want[-1], abs=1e-6)
    return len(from_rows)
