"""Provides Django's PostgreSQL backend with a health check that asks the kernel before the server.

With ``CONN_HEALTH_CHECKS``, Django checks a reused connection at the start of each request by
running ``SELECT 1`` on it. That is a round trip per request: on the serving benchmark's 2
cores, a wait for the PostgreSQL process to be scheduled, as long as the stored-picks query
itself (``benchmarks/results/serving.md``). Yet a server that ends a connection (a restart, an
administrator's ``pg_terminate_backend``, ``idle_session_timeout``) says so on the socket: it
sends a FATAL message and closes it. An idle, healthy connection has nothing to read.

So ``is_usable()`` first polls the socket without waiting. Nothing to read: the connection is
taken as healthy with no round trip. Anything to read (a closing server, or a notice we did not
wait for) or a driver that cannot tell: Django's ``SELECT 1`` decides, as before.

The trade-off: a peer that vanishes without a word (a network cut, a host powered off) is not
seen by the poll, and the request's first query fails instead of the check. ``SELECT 1`` gives
no real protection there either: the link can fail just after it, and a cut link makes it hang
until TCP gives up. The reliability test that restarts PostgreSQL under load
(``tests/reliability/test_postgres_restart.py``) covers the case the check exists for.

Set ``ENGINE = "bre_site.postgresql"`` (the settings do it for ``DATABASE_URL=postgres://...``).
"""
from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL ``DatabaseWrapper``; ``is_usable()`` polls the socket before it asks the server."""

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError, AttributeError):  # no socket to poll: ask the server
            return super().is_usable()
        return True if not readable else super().is_usable()
