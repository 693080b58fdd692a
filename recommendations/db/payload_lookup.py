"""Provides ``payload_row_read``: the active build, the generation and a reader's stored body in one query.

Why: the stored-picks request must cost one indexed lookup, so the three reads share one
statement (a ``LEFT JOIN`` that still returns a row when the reader has none), its SQL built once
per database alias, and the body comes in binary where psycopg 3 allows (``binary``).
What happens if it breaks: the SQL is portable (quoted names, ``%s`` parameters, scalar
subqueries); only ``binary_results`` is PostgreSQL-specific and does nothing elsewhere.
"""
from __future__ import annotations

import functools
from typing import Any

from django.db import connections, router

from ..models import BuildRun, PayloadGeneration, UserPayload
from .binary import binary_results


@functools.lru_cache(maxsize=8)
def lookup_sql(alias: str) -> str:
    """SQL of the lookup for the database ``alias``."""
    def q(name: str) -> str:
        return connections[alias].ops.quote_name(name)

    payload, build, generation = (q(m._meta.db_table) for m in (UserPayload, BuildRun, PayloadGeneration))
    return (
        f"SELECT (SELECT b.{q('id')} FROM {build} b WHERE b.{q('is_active')} = %s LIMIT 1), "
        f"(SELECT g.{q('value')} FROM {generation} g WHERE g.{q('id')} = %s), "
        f"p.{q('version')}, p.{q('build_id')}, p.{q('generation')}, p.{q('config')}, p.{q('body')} "
        f"FROM (SELECT 1 AS one) o LEFT JOIN {payload} p ON p.{q('user_id')} = %s"
    )


def payload_row_read(*, user_id: Any, generation_pk: int) -> tuple:
    """Return ``(active build id, generation, version, build id, generation, config, body)``, None where missing."""
    alias = router.db_for_read(UserPayload)
    connection = connections[alias]
    user_param = UserPayload._meta.pk.target_field.get_db_prep_value(user_id, connection)
    with connection.cursor() as cursor:
        binary_results(cursor)  # the body as its bytes, not as hex text
        cursor.execute(lookup_sql(alias), [True, generation_pk, user_param])
        return cursor.fetchone()
