"""Provides the plain-data shapes of interactions: one event, many events as columns, and the query that reads them.

An optional interaction column (stars, dwell, progress, weight) is declared once, in
``OPTIONAL_COLUMNS``: the readers, the checks and the concatenation all iterate over it. Adding
one means adding its entry there and its field on ``InteractionRow`` and ``InteractionColumns``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import models

ItemKey = tuple[int, str]

# Optional number column -> the interaction config key that names its model field.
OPTIONAL_COLUMNS: dict[str, str] = {
    "stars": "stars_field",
    "dwell_seconds": "dwell_field",
    "progress": "progress_field",
    "weight": "weight_field",
}
FLOAT_COLUMNS = (*OPTIONAL_COLUMNS, "timestamp")


@dataclass(frozen=True)
class InteractionRow:
    """One event of one user with one item."""

    user_id: Any
    item_key: ItemKey
    kind: str
    stars: float | None = None
    dwell_seconds: float | None = None
    progress: float | None = None
    timestamp: float | None = None
    weight: float | None = None


@dataclass
class InteractionColumns:
    """Many interactions as equal-length columns; numbers are float64 with NaN for a missing value."""

    user_id: list
    content_type_id: np.ndarray
    object_id: list
    kind: np.ndarray
    stars: np.ndarray
    dwell_seconds: np.ndarray
    progress: np.ndarray
    timestamp: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)

    @classmethod
    def empty(cls) -> InteractionColumns:
        return cls([], np.zeros(0, dtype=np.int64), [], np.zeros(0, dtype=str),
                   **{name: np.zeros(0) for name in FLOAT_COLUMNS})

    @classmethod
    def concat(cls, parts: list[InteractionColumns]) -> InteractionColumns:
        if not parts:
            return cls.empty()
        return cls(
            user_id=[u for p in parts for u in p.user_id],
            content_type_id=np.concatenate([p.content_type_id for p in parts]),
            object_id=[o for p in parts for o in p.object_id],
            kind=np.concatenate([p.kind for p in parts]),
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in FLOAT_COLUMNS},
        )

    @classmethod
    def from_rows(cls, rows: list[InteractionRow]) -> InteractionColumns:
        """Columns from rows (an adapter that overrides ``interaction_rows``)."""
        if not rows:
            return cls.empty()

        def floats(name: str) -> np.ndarray:
            return np.asarray([np.nan if getattr(r, name) is None else getattr(r, name) for r in rows],
                              dtype=np.float64)

        return cls(
            user_id=[r.user_id for r in rows],
            content_type_id=np.asarray([r.item_key[0] for r in rows], dtype=np.int64),
            object_id=[r.item_key[1] for r in rows],
            kind=np.asarray([r.kind for r in rows], dtype=object).astype(str),
            **{name: floats(name) for name in FLOAT_COLUMNS},
        )

    def rows(self):
        """Yield the columns as ``InteractionRow`` objects, None where a number is missing."""
        floats = {name: getattr(self, name).tolist() for name in FLOAT_COLUMNS}
        for i, (user_id, ct_id, object_id, kind) in enumerate(
            zip(self.user_id, self.content_type_id.tolist(), self.object_id, self.kind.tolist())
        ):
            values = {name: (None if column[i] != column[i] else column[i]) for name, column in floats.items()}
            yield InteractionRow(user_id=user_id, item_key=(ct_id, object_id), kind=kind, **values)


@dataclass(frozen=True)
class InteractionQuery:
    """What one configured interaction model reads: its queryset and the names of the columns, in order.

    ``names`` is ``[user column, item id column, (content type column), *optional fields, (timestamp field)]``;
    ``fixed_ct`` is the item model's content type when the item field is a plain foreign key.
    """

    config: dict[str, Any]
    queryset: models.QuerySet
    names: tuple[str, ...]
    ct_expr: str | None
    fixed_ct: int | None
    extra: tuple[tuple[str, str], ...]  # (optional column, model field)
    ts_field: str | None
    item_pk: Any  # the item model's primary key field (None with a generic relation)

    @property
    def kind(self) -> str:
        return self.config.get("kind", "weight")

    @property
    def constant_weight(self) -> float | None:
        weight = self.config.get("weight")
        return None if weight is None else float(weight)


def optional_fields(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(column, model field)`` pairs an interaction config names, in ``OPTIONAL_COLUMNS`` order."""
    return [(column, config[key]) for column, key in OPTIONAL_COLUMNS.items() if config.get(key)]

