"""Fixtures of the fault tests: a private Celery queue, processes stopped at teardown, recorded figures."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from tests.reliability.support import LOG_DIR, ManagedProcess


@pytest.fixture
def fault_queue() -> str:
    """A queue name of this test only, so that other runs on the same broker never take its tasks."""
    return f"bre-faults-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def processes():
    """Collect started processes; stop every one before the test database is flushed."""
    started: list[ManagedProcess] = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def record():
    """Append a scenario's measured figures to var/reliability/results.jsonl (the source of RELIABILITY.md)."""
    from django.db import connection

    def write(scenario: str, figures: dict) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        line = {"scenario": scenario, "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "database": connection.vendor, "broker": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
                **figures}
        with open(LOG_DIR / "results.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line))

    return write
