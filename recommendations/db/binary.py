"""Provides ``binary_results``: a Django cursor's results in PostgreSQL's binary format, where psycopg 3 allows.

Why: a ``bytea`` value (a stored response body) then comes as its bytes, not as hex text that
PostgreSQL must encode and psycopg decode, twice its size. Other values load as the same Python types.
What happens if it breaks: it sets ``format`` on psycopg 3's server-side binding cursor behind
Django's wrapper (``cursor.cursor``). Anything else (psycopg 2, a client-side bound cursor,
SQLite) is left as it is, the portable path, and the value comes as the driver's default.
"""
from __future__ import annotations

from typing import Any

try:
    from psycopg import ClientCursor as _ClientCursor
    from psycopg import Cursor as _Cursor
    from psycopg.pq import Format

    _BINARY = Format.BINARY
except ImportError:  # psycopg2, or no PostgreSQL driver
    _ClientCursor = _Cursor = None


def binary_results(cursor: Any) -> None:
    """Ask for binary results on a Django cursor where psycopg 3 binds on the server; else do nothing."""
    raw = getattr(cursor, "cursor", None)
    if _Cursor is not None and isinstance(raw, _Cursor) and not isinstance(raw, _ClientCursor):
        raw.format = _BINARY
