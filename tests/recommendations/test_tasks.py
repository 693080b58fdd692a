"""Tests of recommendations/tasks.py in eager mode (CELERY_TASK_ALWAYS_EAGER, as host projects test)."""
from __future__ import annotations

import time
from types import SimpleNamespace

from recommendations import services, tasks
from recommendations.build import load
from recommendations.models import BuildRun, SimilarItem, UserRecommendation


def _active_picks():
    return sorted(
        UserRecommendation.objects.filter(build__is_active=True).values_list("user_id", "object_id", "rank")
    )


def _active_neighbours():
    return sorted(
        SimilarItem.objects.filter(build__is_active=True).values_list("kind", "object_id", "target_object_id", "rank")
    )


class TestFullBuildTask:
    def test_eager_task_gives_the_same_results_as_a_sync_build(self, world, monkeypatch):
        # A running clock from half past the hour: the builds' decay clock (the next whole hour) is then one.
        offset = time.time() // 3600 * 3600 + 1800 - time.time()
        monkeypatch.setattr(load, "time", SimpleNamespace(time=lambda: time.time() + offset))
        services.full_build_run()
        sync_picks, sync_neighbours = _active_picks(), _active_neighbours()
        build_id = tasks.full_build_fan_out.delay(triggered_by="test").get()
        build = BuildRun.objects.get(pk=build_id)
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
        # The task fitted the neighbour lists and the rating model as their own tasks (build_part).
        assert {"part_neighbours", "part_rating_model"} <= set(build.timings)
        assert _active_picks() == sync_picks
        assert _active_neighbours() == sync_neighbours

    def test_running_the_task_twice_keeps_the_same_active_results(self, world):
        first = tasks.full_build_fan_out.delay().get()
        picks = _active_picks()
        # The same build id delivered again: it already succeeded, so nothing changes.
        assert tasks.full_build_fan_out.delay(first).get() == first
        assert BuildRun.objects.get(is_active=True).pk == first
        assert _active_picks() == picks

    def test_chunk_and_finalize_tasks_are_idempotent(self, world):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk)
        for start, stop in chunks:
            tasks.build_score_chunk.delay(build.pk, start, stop).get()
            tasks.build_score_chunk.delay(build.pk, start, stop).get()
        tasks.build_finalize.delay(build.pk).get()
        tasks.build_finalize.delay(build.pk).get()
        assert BuildRun.objects.get(is_active=True).pk == build.pk
        counts = UserRecommendation.objects.filter(build=build).values_list("user_id", "rank")
        assert len(counts) == len(set(counts))  # no duplicated pick


    def test_part_tasks_are_idempotent(self, world):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk, parts_inline=False)
        for part in services.BUILD_PARTS:
            tasks.build_part.delay(build.pk, part).get()
            tasks.build_part.delay(build.pk, part).get()
        for start, stop in chunks:
            tasks.build_score_chunk.delay(build.pk, start, stop).get()
        tasks.build_finalize.delay(build.pk).get()
        assert BuildRun.objects.get(is_active=True).pk == build.pk
        rows = SimilarItem.objects.filter(build=build).values_list("kind", "object_id", "rank")
        assert len(rows) == len(set(rows)) == BuildRun.objects.get(pk=build.pk).counts["neighbours"] > 0


class TestRefreshTasks:
    def test_user_refresh_twice_gives_same_rows(self, world):
        services.full_build_run()
        user = world["users"]["cooking0"]
        tasks.user_refresh.delay(str(user.pk)).get()
        once = sorted(UserRecommendation.objects.filter(build__is_active=True, user=user).values_list("object_id", "rank"))
        tasks.user_refresh.delay(str(user.pk)).get()
        twice = sorted(UserRecommendation.objects.filter(build__is_active=True, user=user).values_list("object_id", "rank"))
        assert once == twice and once


class TestPruning:
    def test_the_finalize_task_switches_then_prunes_in_a_task_of_its_own(self, world, monkeypatch):
        from recommendations.conf import app_settings

        builds = [services.full_build_run() for _ in range(app_settings.KEEP_BUILDS)]
        queued = []
        monkeypatch.setattr(tasks.builds_prune, "apply_async", lambda **options: queued.append(options))
        newest = tasks.full_build_fan_out.delay().get()
        assert BuildRun.objects.get(is_active=True).pk == newest
        # Switched, not pruned yet: the oldest build's rows wait for the queued prune task.
        assert queued == [{}] and UserRecommendation.objects.filter(build_id=builds[0].pk).exists()
        monkeypatch.undo()
        tasks.builds_prune.delay().get()
        assert not UserRecommendation.objects.filter(build_id=builds[0].pk).exists()
        assert BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED).count() == app_settings.KEEP_BUILDS


class TestTaskNames:
    """STYLE §5: a task has the name of the service it calls; beat rows name tasks that exist."""

    def test_every_task_is_named_after_the_service_it_calls(self):
        from celery import Task

        names = {obj.name for obj in vars(tasks).values() if isinstance(obj, Task) and obj.name.startswith("recommendations.")}
        current = {name for name in names if name not in ("recommendations.full_build", "recommendations.refresh_pending_users")}
        assert len(current) == 9
        for name in current:
            assert callable(getattr(services, name.split(".", 1)[1], None)), name

    def test_the_installed_beat_rows_name_registered_tasks(self, db):
        from django_celery_beat.models import PeriodicTask

        from bre_site.celery import app

        app.loader.import_default_modules()
        rows = dict(PeriodicTask.objects.filter(name__startswith="recommendations:").values_list("name", "task"))
        assert rows == {"recommendations: nightly full build": "recommendations.full_build_fan_out",
                        "recommendations: refresh pending users": "recommendations.pending_refreshes_run",
                        "recommendations: impressions daily rollup and purge": "recommendations.impressions_daily_run"}
        assert set(rows.values()) <= set(app.tasks)


def test_items_take_the_same_positions_whatever_order_the_database_returns_them_in(world):
    from recommendations.build.load import item_texts_load, key_order

    first, _, _ = item_texts_load()
    # an update moves the row on PostgreSQL, so a plain query returns the items in another order
    item = next(iter(world["items"].values()))
    type(item).objects.filter(pk=item.pk).update(name=item.name + " ")
    second, _, _ = item_texts_load()
    keys = list(first.keys())
    assert keys == list(second.keys()) == sorted(keys, key=lambda key: (key[0], key_order(key[1])))
