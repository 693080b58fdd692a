"""Provides the limits of Celery worker processes, so that builds never starve the web processes.

Applied from Celery's signals (``bre_site/celery.py``): ``worker_init`` in the main worker process,
before it forks its pool, and ``worker_process_init`` in each pool process. Settings:

* ``WORKER_NICE`` (default 10): the niceness of worker processes (only ever raised), so that
  gunicorn's processes win the CPU whenever both want it. On Linux with autogroup scheduling
  (``/proc/sys/kernel/sched_autogroup_enabled``), niceness only weighs processes of one session
  against each other, and every session gets an equal share: a worker started in a session of its
  own (a service, ``setsid``) also gets its session's autogroup niced, when it leads that session
  (so nothing else is slowed); see docs/decisions.md, "Builds yield the CPU: autogroups";
* ``WORKER_BLAS_THREADS`` (default 1): threads of BLAS and OpenMP pools (threadpoolctl, and the
  ``*_NUM_THREADS`` variables for libraries loaded later), one core per worker process;
* ``WORKER_MEMORY_LIMIT_MB`` (default 0, no cap): the address space of each worker process
  (``RLIMIT_AS``); a build over it fails with ``MemoryError`` instead of pushing the web
  processes into swap.
"""
from __future__ import annotations

import logging
import os
import resource
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_thread_limiter: Any = None
AUTOGROUP = Path("/proc/self/autogroup")


def autogroup_nice_apply(nice: int, path: Path = AUTOGROUP) -> int | None:
    """Raise this session's autogroup niceness to ``nice`` when this process leads the session; return it.

    None where it cannot apply: no autogroups (not Linux, or disabled), or a session shared with
    other programs (a shell running the site too), which plain niceness already covers.
    """
    if os.getsid(0) != os.getpid():
        return None
    try:
        current = int(path.read_text().split("nice", 1)[1])
        if nice > current:
            path.write_text(str(nice))
        return int(path.read_text().split("nice", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def worker_limits_apply() -> dict[str, Any]:
    """Apply the worker settings to this process; return what is in force."""
    global _thread_limiter
    nice = int(getattr(settings, "WORKER_NICE", 10))
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    autogroup_nice = autogroup_nice_apply(nice)
    threads = int(getattr(settings, "WORKER_BLAS_THREADS", 1))
    if threads > 0:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
        from threadpoolctl import threadpool_limits

        # Kept referenced: the limits hold for the life of the process.
        _thread_limiter = threadpool_limits(limits=threads)
    memory_mb = int(getattr(settings, "WORKER_MEMORY_LIMIT_MB", 0))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    applied = {"nice": os.getpriority(os.PRIO_PROCESS, 0), "autogroup_nice": autogroup_nice, "blas_threads": threads,
               "memory_limit": resource.getrlimit(resource.RLIMIT_AS)[0]}
    logger.info("Worker process limits: %s", applied)
    return applied


def connect(app) -> None:
    """Apply the limits in every process of ``app``'s workers."""
    from celery.signals import worker_init, worker_process_init

    worker_init.connect(lambda **kwargs: worker_limits_apply(), weak=False, dispatch_uid="bre.worker_limits")
    worker_process_init.connect(lambda **kwargs: worker_limits_apply(), weak=False,
                                dispatch_uid="bre.worker_process_limits")
