"""Tests of the worker process limits (bre_site/worker_limits.py): niceness, BLAS threads, memory.

Each check runs in a child process: niceness can only be raised, never taken back, in this one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, os, resource
import django
django.setup()
import numpy as np
from celery.signals import worker_process_init
from threadpoolctl import threadpool_info
import bre_site  # the Celery app connects the limits to its signals
before = os.getpriority(os.PRIO_PROCESS, 0)
worker_process_init.send(sender=None)
try:
    np.empty(3 * 1024 ** 3 // 8)  # address space only: the pages are never touched
    too_big = "allocated"
except MemoryError:
    too_big = "MemoryError"
print(json.dumps({
    "before": before,
    "nice": os.getpriority(os.PRIO_PROCESS, 0),
    "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
    "blas_threads": sorted({lib["num_threads"] for lib in threadpool_info()}),
    "omp_env": os.environ.get("OMP_NUM_THREADS"),
    "too_big": too_big,
}))
"""


def _probe(**env: str) -> dict:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestWorkerLimits:
    def test_a_worker_process_is_niced_and_its_threads_and_memory_capped(self):
        state = _probe(WORKER_NICE="13", WORKER_BLAS_THREADS="1", WORKER_MEMORY_LIMIT_MB="2048")
        assert state["nice"] == max(13, state["before"])
        assert state["blas_threads"] == [1] and state["omp_env"] == "1"
        assert state["rlimit_as"] == 2048 * 1024 * 1024
        assert state["too_big"] == "MemoryError"

    def test_defaults_nice_and_one_thread_and_no_memory_cap(self):
        state = _probe()
        assert state["nice"] == max(10, state["before"])
        assert state["blas_threads"] == [1]
        assert state["too_big"] == "allocated"


class FakeAutogroup:
    """/proc/self/autogroup as the kernel shows it: writing a number sets the niceness it reports."""

    def __init__(self, nice: int = 0, *, writable: bool = True) -> None:
        self.nice, self.writable, self.writes = nice, writable, []

    def read_text(self) -> str:
        return f"/autogroup-42 nice {self.nice}\n"

    def write_text(self, text: str) -> None:
        if not self.writable:
            raise PermissionError("not permitted")
        self.writes.append(text)
        self.nice = int(text)


class TestAutogroup:
    """Niceness alone does not reach across sessions under autogroup scheduling: the session's group is niced too."""

    def test_a_worker_leading_its_session_nices_its_autogroup(self, monkeypatch):
        from bre_site.worker_limits import autogroup_nice_apply

        monkeypatch.setattr(os, "getsid", lambda pid: os.getpid())
        group = FakeAutogroup(0)
        assert autogroup_nice_apply(10, group) == 10 and group.writes == ["10"]
        assert autogroup_nice_apply(5, group) == 10 and group.writes == ["10"]  # only ever raised

    def test_a_shared_session_is_left_alone(self, monkeypatch):
        from bre_site.worker_limits import autogroup_nice_apply

        monkeypatch.setattr(os, "getsid", lambda pid: os.getpid() + 1)
        group = FakeAutogroup(0)
        assert autogroup_nice_apply(10, group) is None and group.writes == []

    def test_no_autogroups_or_no_permission_is_a_no_op(self, monkeypatch, tmp_path):
        from bre_site.worker_limits import autogroup_nice_apply

        monkeypatch.setattr(os, "getsid", lambda pid: os.getpid())
        assert autogroup_nice_apply(10, tmp_path / "missing") is None
        assert autogroup_nice_apply(10, FakeAutogroup(0, writable=False)) is None

    def test_a_worker_in_a_session_of_its_own_gets_its_autogroup_niced(self):
        """The real kernel file where there is one; elsewhere the same call reports that nothing applied."""
        probe = ("import os, django, json; django.setup(); from bre_site.worker_limits import worker_limits_apply; "
                 "print(json.dumps(worker_limits_apply()))")
        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "WORKER_NICE": "12"}
        result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True,
                                text=True, timeout=120, start_new_session=True)
        assert result.returncode == 0, result.stderr
        applied = json.loads(result.stdout.strip().splitlines()[-1])
        if Path("/proc/self/autogroup").exists():
            assert applied["autogroup_nice"] == 12
        else:
            assert applied["autogroup_nice"] is None
        assert applied["nice"] >= 12
        # The probe sharing this test's session leaves the session's group (this test run's) alone.
        shared = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True,
                                text=True, timeout=120)
        assert json.loads(shared.stdout.strip().splitlines()[-1])["autogroup_nice"] is None
