"""Provides the Celery app of the BRE site; tasks are found with autodiscover_tasks()."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bre_site.settings")

app = Celery("bre_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Builds run niced, with capped BLAS threads and (optionally) memory: see bre_site/worker_limits.py.
from bre_site.worker_limits import connect as _limits_connect  # noqa: E402

_limits_connect(app)
