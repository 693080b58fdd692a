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
