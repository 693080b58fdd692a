"""Provides IndexMap and building the user_items matrix from (user, item, weight) rows."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

__all__ = ["IndexMap", "build_user_items"]


class IndexMap:
    """Bidirectional map between hashable keys and positions 0..n-1.

    Keys can be anything hashable: string ids, ints, ``(content_type_id, object_id)`` tuples.

    Parameters
    ----------
    keys : iterable of hashable, optional
        Initial keys, in position order; duplicates are added once.
    """

    def __init__(self, keys: Iterable[Hashable] = ()) -> None:
        self._keys: list[Hashable] = []
        self._positions: dict[Hashable, int] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Hashable) -> int:
        """Return the position of ``key``, adding it at the end if new."""
        position = self._positions.get(key)
        if position is None:
            position = len(self._keys)
            self._positions[key] = position
            self._keys.append(key)
        return position

    def position(self, key: Hashable) -> int:
        """Return the position of ``key``; KeyError if unknown."""
        return self._positions[key]

    def get(self, key: Hashable, default: int | None = None) -> int | None:
        """Return the position of ``key`` or ``default``."""
        return self._positions.get(key, default)

    def key(self, position: int) -> Hashable:
        """Return the key at ``position``."""
        return self._keys[int(position)]

    def keys(self) -> list[Hashable]:
        """Return all keys in position order (a copy)."""
        return list(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._positions

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._keys)

    def __repr__(self) -> str:
        return f"IndexMap(n={len(self)})"


def build_user_items(
    rows: Iterable[tuple[Hashable, Hashable, float]],
    user_map: IndexMap | None = None,
    item_map: IndexMap | None = None,
) -> tuple[sp.csr_matrix, IndexMap, IndexMap]:
    """Build the ``user_items`` matrix from ``(user_key, item_key, weight)`` rows.

    Unknown keys are appended to the maps. Duplicate ``(user, item)`` pairs are summed.

    Parameters
    ----------
    rows : iterable of (user_key, item_key, weight)
    user_map, item_map : IndexMap, optional
        Existing maps to extend (e.g. so every catalogue item has a column).

    Returns
    -------
    user_items : csr_matrix, shape (len(user_map), len(item_map)), float32
    user_map : IndexMap
    item_map : IndexMap
    """
    user_map = IndexMap() if user_map is None else user_map
    item_map = IndexMap() if item_map is None else item_map
    user_positions: list[int] = []
    item_positions: list[int] = []
    weights: list[float] = []
    for user_key, item_key, weight in rows:
        user_positions.append(user_map.add(user_key))
        item_positions.append(item_map.add(item_key))
        weights.append(float(weight))
    user_items = sp.csr_matrix(
        (
            np.asarray(weights, dtype=np.float32),
            (np.asarray(user_positions, dtype=np.int64), np.asarray(item_positions, dtype=np.int64)),
        ),
        shape=(len(user_map), len(item_map)),
        dtype=np.float32,
    )
    user_items.sum_duplicates()
    user_items.sort_indices()
    return user_items, user_map, item_map
