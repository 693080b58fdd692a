"""Provides the Celery app of the BRE site; tasks are found with autodiscover_tasks()."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bre_site.settings")

app = Celery("bre_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
