"""Point the installed beat rows at the tasks' new names (``<entity>_<action>``, as their services).

``recommendations.full_build`` became ``recommendations.full_build_fan_out`` and
``recommendations.refresh_pending_users`` became ``recommendations.pending_refreshes_run``. Every
beat row with an old name is renamed, also one an editor added in admin; the old names stay
registered as tasks for messages queued before the upgrade.
"""
from django.conf import settings
from django.db import migrations
from django.utils import timezone

HAS_BEAT = "django_celery_beat" in settings.INSTALLED_APPS
RENAMES = {
    "recommendations.full_build": "recommendations.full_build_fan_out",
    "recommendations.refresh_pending_users": "recommendations.pending_refreshes_run",
}


def _rename(apps, renames: dict[str, str]) -> None:
    if not HAS_BEAT:
        return
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    renamed = sum(PeriodicTask.objects.filter(task=old).update(task=new) for old, new in renames.items())
    if renamed:  # what PeriodicTask's save signal does: a running beat reloads its schedule
        apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
            ident=1, defaults={"last_update": timezone.now()})


def forwards(apps, schema_editor):
    _rename(apps, RENAMES)


def backwards(apps, schema_editor):
    _rename(apps, {new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0007_explanation_as_text")] + (
        [("django_celery_beat", "0019_alter_periodictasks_options")] if HAS_BEAT else []
    )

    operations = [migrations.RunPython(forwards, backwards)]
