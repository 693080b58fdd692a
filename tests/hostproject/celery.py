"""The host project's Celery app: it imports nothing from the recommendations app, autodiscovery finds its tasks."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hostproject.settings")

app = Celery("hostproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
