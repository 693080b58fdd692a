"""Provides the Django settings of the pipeline benchmark: the test settings on a throwaway database and Redis."""
from __future__ import annotations

import json
import os

import dj_database_url

from tests.settings import *  # noqa: F401,F403

# benchmarks/pipeline.py sets these for itself and for the Celery workers it starts.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("BRE_PIPELINE_DATABASE_URL", "sqlite:////tmp/bre_bench_pipeline.sqlite3"),
        conn_max_age=600,
        conn_health_checks=True,  # others restart PostgreSQL in their reliability tests
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The site's SQLite options: WAL, and a timeout that rides out the other worker's writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 60, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEBUG = False  # DEBUG keeps every SQL query in memory.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ.get("BRE_PIPELINE_BROKER_URL", "redis://127.0.0.1:6379/5")
CELERY_RESULT_BACKEND = os.environ.get("BRE_PIPELINE_RESULT_BACKEND", "redis://127.0.0.1:6379/6")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

RECOMMENDATIONS = {
    "ITEM_MODELS": ["testapp.Item"],
    "INTERACTIONS": [
        # MovieLens: explicit ratings; synthetic: implicit likes.
        {"model": "testapp.Score", "user_field": "user", "item_field": "item", "kind": "rating",
         "stars_field": "stars", "timestamp_field": "created_at"},
        {"model": "testapp.Like", "user_field": "user", "item_field": "item", "kind": "read",
         "timestamp_field": "created_at"},
    ],
    "TEXT_FIELDS": {"testapp.Item": ["name", "description"]},
    "ALGORITHM": os.environ.get("BRE_PIPELINE_ALGORITHM", "auto"),
    # e.g. '{"tune": false}': the untuned build that a tuned one is compared with
    "ALGORITHM_PARAMS": json.loads(os.environ.get("BRE_PIPELINE_ALGORITHM_PARAMS", "{}")),
    "BUILD_CHUNK_SIZE": int(os.environ.get("BRE_PIPELINE_CHUNK_SIZE", "1000")),
    "LOCK_TIMEOUT": 7200,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
