"""Installs the app's periodic tasks in django-celery-beat after every ``migrate``, when beat is installed.

A ``post_migrate`` hook, not a migration: a migration's dependencies are fixed when it is first
applied, while a project may add or remove django-celery-beat at any time.
"""
from __future__ import annotations

import json

from django.apps import apps as global_apps
from django.db import connections, router
from django.utils import timezone

from .conf import app_settings

NIGHTLY_BUILD = "recommendations: nightly full build"
PENDING_REFRESHES = "recommendations: refresh pending users"
IMPRESSIONS_DAILY = "recommendations: impressions daily rollup and purge"
# Old task names that beat rows may still hold (also rows an editor added); the old names stay registered.
RENAMES = {
    "recommendations.full_build": "recommendations.full_build_fan_out",
    "recommendations.refresh_pending_users": "recommendations.pending_refreshes_run",
}


def periodic_tasks_install(*, apps=global_apps, using: str = "default", **kwargs) -> None:
    """Create the periodic tasks (nightly build, pending refreshes, impressions rollup) if they are missing and rename old task names; edits are kept.

    ``apps`` is the migrated state that ``migrate`` passes (``flush`` passes none): without
    django-celery-beat in ``INSTALLED_APPS``, or before its tables exist, there is nothing to do.
    """
    try:
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    except LookupError:
        return
    if not router.allow_migrate_model(using, PeriodicTask):
        return
    tables = connections[using].introspection.table_names()
    if any(model._meta.db_table not in tables for model in (PeriodicTask, PeriodicTasks, CrontabSchedule, IntervalSchedule)):
        return
    tasks = PeriodicTask.objects.using(using)
    changed = sum(tasks.filter(task=old).update(task=new) for old, new in RENAMES.items())
    if not tasks.filter(name=NIGHTLY_BUILD).exists():
        crontab, _ = CrontabSchedule.objects.using(using).get_or_create(timezone="UTC", **app_settings.BUILD_SCHEDULE)
        tasks.create(name=NIGHTLY_BUILD, task="recommendations.full_build_fan_out", crontab=crontab,
                     kwargs=json.dumps({"triggered_by": "schedule"}))
        changed += 1
    if not tasks.filter(name=PENDING_REFRESHES).exists():
        every_minute, _ = IntervalSchedule.objects.using(using).get_or_create(every=60, period="seconds")
        tasks.create(name=PENDING_REFRESHES, task="recommendations.pending_refreshes_run", interval=every_minute)
        changed += 1
    if not tasks.filter(name=IMPRESSIONS_DAILY).exists():
        crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
            timezone="UTC", minute="30", hour="1", day_of_week="*", day_of_month="*", month_of_year="*")
        tasks.create(name=IMPRESSIONS_DAILY, task="recommendations.impressions_daily_run", crontab=crontab)
        changed += 1
    if changed:  # what PeriodicTask's save signal does (historical models send none): a running beat reloads
        PeriodicTasks.objects.using(using).update_or_create(ident=1, defaults={"last_update": timezone.now()})
