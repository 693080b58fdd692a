"""Install the periodic full build in django-celery-beat (editable in admin afterwards)."""
import json

from django.conf import settings
from django.db import migrations

TASK_NAME = "recommendations: nightly full build"
PENDING_NAME = "recommendations: refresh pending users"
HAS_BEAT = "django_celery_beat" in settings.INSTALLED_APPS


def install(apps, schema_editor):
    if not HAS_BEAT:
        return
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule = getattr(settings, "RECOMMENDATIONS", {}).get(
        "BUILD_SCHEDULE", {"minute": "15", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    )
    crontab, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **schedule)
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={"task": "recommendations.full_build", "crontab": crontab,  # renamed by 0008
                  "kwargs": json.dumps({"triggered_by": "schedule"})},
    )
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=PENDING_NAME, defaults={"task": "recommendations.refresh_pending_users", "interval": every_minute}
    )


def uninstall(apps, schema_editor):
    if HAS_BEAT:
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[TASK_NAME, PENDING_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")] + (
        [("django_celery_beat", "0019_alter_periodictasks_options")] if HAS_BEAT else []
    )

    operations = [migrations.RunPython(install, uninstall)]
