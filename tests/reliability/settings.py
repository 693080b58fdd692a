"""Settings of the processes that fault tests start (Celery workers, gunicorn): the test settings, tuned by env.

The test process and its subprocesses must agree on the recommendations options, so both
take them from ``tests.reliability.support.fault_recommendations()`` and these variables:

* ``BRE_FAULT_QUEUE``: the private Celery queue of one test run (keeps parallel runs apart).
* ``BRE_FAULT_CHUNK_SIZE``, ``BRE_FAULT_LOCK_TIMEOUT``: ``BUILD_CHUNK_SIZE`` and ``LOCK_TIMEOUT``.
* ``CELERY_VISIBILITY_TIMEOUT``: seconds before Redis gives an unacknowledged task to another worker.
"""
import os

from tests.reliability.support import fault_recommendations
from tests.settings import *  # noqa: F401,F403
from tests.settings import CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_URL

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BRE_FAULT_QUEUE", "celery")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The filesystem transport polls its folder once a second by default: one task a second.
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.05}
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        "unacked_restore_interval": 1,
    }
RECOMMENDATIONS = fault_recommendations(
    chunk_size=int(os.environ.get("BRE_FAULT_CHUNK_SIZE", "20")),
    lock_timeout=int(os.environ.get("BRE_FAULT_LOCK_TIMEOUT", "1800")),
)
