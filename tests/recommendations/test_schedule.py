"""The periodic tasks in django-celery-beat: installed by a post_migrate hook, never by a migration's dependency."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from recommendations import schedule

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {("recommendations: nightly full build", "recommendations.full_build_fan_out"),
            ("recommendations: refresh pending users", "recommendations.pending_refreshes_run"),
            ("recommendations: impressions daily rollup and purge", "recommendations.impressions_daily_run")}


def test_no_recommendations_migration_depends_on_another_optional_app():
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = {key: migration for key, migration in loader.disk_migrations.items() if key[0] == "recommendations"}
    assert len(ours) >= 8
    for key, migration in ours.items():
        apps_needed = {app for app, _ in migration.dependencies}
        # contenttypes and the user model are required; nothing optional such as django_celery_beat.
        assert apps_needed <= {"recommendations", "contenttypes", "auth", "__setting__"}, (key, migration.dependencies)


def _migrate(db: Path, settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRE_MIGRATE_DB": str(db), "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "django", "migrate", "--no-input", "-v", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _beat_rows(db: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return set(conn.execute("SELECT name, task FROM django_celery_beat_periodictask"))


WITHOUT = "tests.recommendations.migration_settings.without_beat"
WITH = "tests.recommendations.migration_settings.with_beat"


def test_beat_added_after_the_first_migrate(tmp_path):
    db = tmp_path / "db.sqlite3"
    first = _migrate(db, WITHOUT)
    assert first.returncode == 0, first.stderr
    second = _migrate(db, WITH)
    assert second.returncode == 0, second.stderr
    assert "InconsistentMigrationHistory" not in second.stderr
    assert _beat_rows(db) == EXPECTED
    again = _migrate(db, WITH)  # idempotent: no second copy of the rows
    assert again.returncode == 0, again.stderr
    assert _beat_rows(db) == EXPECTED


def test_beat_removed_after_the_first_migrate(tmp_path):
    db = tmp_path / "db.sqlite3"
    first = _migrate(db, WITH)
    assert first.returncode == 0, first.stderr
    assert _beat_rows(db) == EXPECTED
    second = _migrate(db, WITHOUT)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    third = _migrate(db, WITH)  # and back again
    assert third.returncode == 0, third.stderr
    assert _beat_rows(db) == EXPECTED


def test_an_install_with_the_old_conditional_history_upgrades(tmp_path):
    """A database migrated by the old 0002/0008 (beat applied first, old task names) migrates cleanly."""
    db = tmp_path / "db.sqlite3"
    assert _migrate(db, WITH).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE django_celery_beat_periodictask SET task = 'recommendations.full_build' "
                     "WHERE name = 'recommendations: nightly full build'")
    result = _migrate(db, WITH)
    assert result.returncode == 0, result.stderr
    assert _beat_rows(db) == EXPECTED


class TestPostMigrateHook:
    def test_renames_old_task_names_keeps_edits_and_reinstalls_missing_rows(self, transactional_db):
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

        every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
        PeriodicTask.objects.create(name="an editor's extra build", task="recommendations.full_build", interval=every_hour)
        PeriodicTask.objects.filter(name=schedule.PENDING_REFRESHES).delete()
        nightly = PeriodicTask.objects.get(name=schedule.NIGHTLY_BUILD)
        nightly.crontab = CrontabSchedule.objects.create(minute="0", hour="5", timezone="UTC")
        nightly.enabled = False
        nightly.save()

        call_command("migrate", verbosity=0)

        rows = dict(PeriodicTask.objects.filter(name__in=[schedule.NIGHTLY_BUILD, schedule.PENDING_REFRESHES,
                                                          "an editor's extra build"]).values_list("name", "task"))
        assert rows == {schedule.NIGHTLY_BUILD: "recommendations.full_build_fan_out",
                        schedule.PENDING_REFRESHES: "recommendations.pending_refreshes_run",
                        "an editor's extra build": "recommendations.full_build_fan_out"}
        nightly.refresh_from_db()
        assert (nightly.crontab.hour, nightly.enabled) == ("5", False)  # the editor's changes stay
        assert PeriodicTask.objects.filter(name=schedule.NIGHTLY_BUILD).count() == 1

    def test_does_nothing_without_beat_in_the_migrated_state(self, db):
        from django.apps.registry import Apps

        schedule.periodic_tasks_install(apps=Apps(installed_apps=[]), using="default")  # no LookupError escapes
