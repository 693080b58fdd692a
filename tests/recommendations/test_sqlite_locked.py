"""Builds on SQLite with Django's default options: a write that finds the database locked is run again."""
from __future__ import annotations

import sqlite3
import threading

import pytest
from django.db import OperationalError, connection

from recommendations import services
from recommendations.models import BuildRun, UserRecommendation

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's locking")


@pytest.fixture
def default_sqlite_options():
    """This connection with startproject's options (no transaction_mode) and a busy timeout shorter than the lock below."""
    saved = connection.settings_dict["OPTIONS"]
    connection.close()
    connection.settings_dict["OPTIONS"] = {"timeout": 0.1}
    yield
    connection.close()
    connection.settings_dict["OPTIONS"] = saved


def _hold_write_lock(seconds: float) -> threading.Thread:
    """Another process's long write: the write lock of the database file, held for ``seconds``."""
    held = threading.Event()

    def hold():
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        threading.Event().wait(seconds)
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_chunk_and_the_switch_wait_out_another_writer(world, default_sqlite_options):
    build = BuildRun.objects.create(triggered_by="test", algorithm="itemknn")
    chunks = services.build_prepare(build_id=build.pk)
    thread = _hold_write_lock(1.0)
    try:
        stored = sum(services.build_score_chunk(build_id=build.pk, start=start, stop=stop) for start, stop in chunks)
    finally:
        thread.join()
    assert stored == UserRecommendation.objects.filter(build=build).count() > 0
    thread = _hold_write_lock(1.0)
    try:
        build = services.build_finalize(build_id=build.pk)
    finally:
        thread.join()
    assert build.status == BuildRun.Status.SUCCEEDED and build.is_active


@pytest.mark.django_db(transaction=True)
def test_a_write_inside_an_outer_transaction_is_not_retried(world, default_sqlite_options):
    from django.db import transaction

    build = BuildRun.objects.create(triggered_by="test", algorithm="itemknn")
    thread = _hold_write_lock(0.5)
    try:
        with pytest.raises(OperationalError, match="locked"), transaction.atomic():
            services.build_lock_extend(build_id=build.pk)  # the caller's transaction must roll back first
            BuildRun.objects.filter(pk=build.pk).update(triggered_by="x")
    finally:
        thread.join()
