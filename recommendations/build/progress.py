"""Provides a build's bookkeeping: its stage timings and counts, and the lock its chunk and part writers take."""
from __future__ import annotations

import time
from contextlib import contextmanager

from django.db import connections, router, transaction

from ..db.locks import keyed_write_lock
from ..db.sqlite_locked import retry_when_locked
from ..models import BuildRun, UserRecommendation
from .lease import build_lock_extend


class StageTimer:
    """Adds each stage's seconds to ``build.timings`` and saves them, so progress is visible while it runs."""

    def __init__(self, build: BuildRun):
        self.build = build

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        # Only a stage that finished is saved: a failed build records its error instead.
        elapsed = time.perf_counter() - start
        self.build.timings[name] = round(self.build.timings.get(name, 0.0) + elapsed, 4)
        self.build.save(update_fields=["timings"])  # for `recommendations build --wait` and the admin
        build_lock_extend(build_id=self.build.pk)


def build_write_lock(build_id: int, key: str) -> bool:
    """Lock what a chunk's or part's write needs, in its transaction; False if the build is no longer running.

    ``key`` is the chunk's ``start:stop`` or ``part:<name>``: twins of one chunk wait for each
    other, while different chunks and parts of one build write in parallel where the database
    allows (``recommendations.db.locks``). ``build_finalize`` locks the build row for update,
    so it waits for the writes in flight and later twins see the build finished.
    """
    status = keyed_write_lock(BuildRun, build_id, "status", key=key, namespace="recommendations.chunk")
    return status == BuildRun.Status.RUNNING


@retry_when_locked
def build_add(build_id: int, timings: dict[str, float], counts: dict[str, int] | None = None) -> None:
    """Add a chunk's or part's stage seconds to its build (summed over tasks: worker-seconds) and set its counts."""
    connection = connections[router.db_for_write(BuildRun)]
    with transaction.atomic():
        # NO KEY UPDATE does not wait for the chunk writes that hold the row FOR KEY SHARE.
        build = (BuildRun.objects.select_for_update(no_key=connection.features.has_select_for_no_key_update)
                 .only("timings", "counts").get(pk=build_id))
        for key, value in timings.items():
            build.timings[key] = round(build.timings.get(key, 0.0) + value, 4)
        build.counts.update(counts or {})
        build.save(update_fields=["timings", "counts"])


def picks_stored(build_id: int, user_id) -> bool:
    """Return whether build ``build_id`` holds picks of the user: one probe of the lookup index.

    A chunk delivered again looks for its first user's rows instead of deleting its users' rows
    before writing: without statistics on the growing table PostgreSQL planned that delete as a
    scan of all the build's rows so far, so the chunks' writes grew with the square of the build.
    """
    return UserRecommendation.objects.filter(build_id=build_id, user_id=user_id).exists()
