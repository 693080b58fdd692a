"""Provides ``retry_when_locked``: a build's write runs again when SQLite reports the database locked.

Why: several workers write one build at once. SQLite with Django's default options (deferred
transactions, a five-second busy timeout) answers "database is locked" to a transaction that read before
it wrote while another holds the write lock, and to any write that waits longer than the timeout;
the transaction is rolled back, so running it again is safe (check ``recommendations.W003`` names
the options that avoid most of it).
What happens if it breaks: it recognises the error by SQLite's message text. Elsewhere, inside an
outer transaction (which must roll back first), or after ``LOCKED_RETRIES`` attempts, the error
is raised as it is, the portable behaviour, and the task fails the build as any other error would.
"""
from __future__ import annotations

import functools
import logging
import random
import time

from django.db import OperationalError, connections, router

from ..models import BuildRun

logger = logging.getLogger(__name__)

LOCKED_RETRIES = 10  # the backoff below adds up to about 13 s, on top of the database's own busy timeout


def retry_when_locked(func):
    """Run ``func`` again, with backoff, when SQLite reports the database locked outside any transaction."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        connection = connections[router.db_for_write(BuildRun)]
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if (connection.vendor != "sqlite" or "locked" not in str(exc) or connection.in_atomic_block
                        or attempt == LOCKED_RETRIES):
                    raise
                delay = min(0.1 * 2**attempt, 2.0) * random.uniform(0.5, 1.0)
                logger.info("%s: the database is locked; trying again in %.2f s.", func.__name__, delay)
                time.sleep(delay)
    return run
