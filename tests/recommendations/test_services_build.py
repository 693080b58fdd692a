"""Tests of the build pipeline in recommendations/services.py, on the testapp host."""
from __future__ import annotations

import pytest
from django.test import override_settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from recommendations import selectors, services
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.columns import assert_columns_match_rows
from tests.recommendations.testapp.models import Item, Like, Score


def _active_rows(user):
    return list(
        UserRecommendation.objects.filter(build__is_active=True, user=user)
        .order_by("rank").values_list("object_id", "rank", "score")
    )


class TestFullBuildRun:
    def test_build_stores_picks_neighbours_and_popular(self, world):
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
        assert set(build.timings) >= {"load", "fit", "write", "score", "switch"}
        assert build.counts["users"] == 8 and build.counts["items"] == 8
        space0 = world["users"]["space0"]
        picks = selectors.recommended_for(space0, n=3)
        # space0 left out the first space item, "Rockets to Mars": its only collaborative pick.
        assert picks[0].name == "Rockets to Mars" and picks[0].rec_source == "personal"
        # The list is filled up with fallbacks (content, then popular), never left short.
        assert len(picks) == 3 and {p.rec_source for p in picks[1:]} <= {"content", "popular"}
        assert picks[0].rec_because.startswith("Because you read ")
        # Items the user liked, or rated, never come back.
        liked = {l.item.name for l in Like.objects.filter(user=space0)}
        assert not liked & {p.name for p in picks}
        assert "Bread baking at home" not in {p.name for p in picks}

    def test_collaborative_neighbours_stay_in_taste_group(self, world):
        services.full_build_run()
        rockets = world["items"]["Rockets to Mars"]
        neighbours = selectors.similar_to(rockets, kind="collaborative", n=3)
        assert neighbours and all(n.name in {"Orbital mechanics for everyone", "Life on the moon", "Stars and galaxies"}
                                  for n in neighbours)
        scores = [n.rec_score for n in neighbours]
        assert scores == sorted(scores, reverse=True)

    def test_content_neighbours(self, world):
        services.full_build_run()
        pasta = world["items"]["Pasta from scratch"]
        names = [n.name for n in selectors.similar_to(pasta, kind="content", n=3)]
        assert "Italian kitchen basics" in names or "Bread baking at home" in names

    def test_inactive_items_are_not_served(self, world):
        services.full_build_run()
        rockets = world["items"]["Rockets to Mars"]
        Item.objects.filter(pk=rockets.pk).update(is_active=False)
        assert "Rockets to Mars" not in {p.name for p in selectors.recommended_for(world["users"]["space0"], n=5)}

    def test_popular_fallback_for_cold_user(self, world, django_user_model):
        services.full_build_run()
        newcomer = django_user_model.objects.create_user(username="new", password="x")
        picks = selectors.recommended_for(newcomer, n=4)
        assert len(picks) == 4 and all(p.rec_source == "popular" for p in picks)
        assert PopularItem.objects.filter(build__is_active=True, window="all").exists()


class TestAtomicSwitch:
    def test_failed_build_leaves_previous_active(self, world, monkeypatch):
        first = services.full_build_run()
        before = _active_rows(world["users"]["space0"])

        def boom(**kwargs):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(services, "build_score_chunk", boom)
        with pytest.raises(RuntimeError):
            services.full_build_run()
        first.refresh_from_db()
        assert first.is_active
        failed = BuildRun.objects.exclude(pk=first.pk).get()
        assert failed.status == BuildRun.Status.FAILED and not failed.is_active
        assert _active_rows(world["users"]["space0"]) == before

    def test_failure_midway_through_chunks_leaves_no_visible_rows(self, world, monkeypatch):
        first = services.full_build_run()
        calls = {"n": 0}
        real = services.build_score_chunk

        def second_chunk_fails(**kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("worker died")
            return real(**kwargs)

        monkeypatch.setattr(services, "build_score_chunk", second_chunk_fails)
        with pytest.raises(RuntimeError):
            services.full_build_run()
        assert BuildRun.objects.get(is_active=True) == first
        assert not UserRecommendation.objects.exclude(build=first).filter(build__is_active=True).exists()

    def test_activate_switches_back(self, world):
        first = services.full_build_run()
        second = services.full_build_run()
        assert not BuildRun.objects.get(pk=first.pk).is_active
        services.build_activate(build_id=first.pk)
        assert BuildRun.objects.get(is_active=True).pk == first.pk

    def test_old_builds_are_pruned(self, world, settings):
        builds = [services.full_build_run() for _ in range(5)]
        kept = BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED)
        assert kept.count() == 3
        assert not SimilarItem.objects.filter(build_id=builds[0].pk).exists()


class TestReaderDeletedDuringBuild:
    def test_build_finishes_without_the_deleted_readers_picks(self, world, monkeypatch):
        gone = world["users"]["cooking3"]
        gone_pk = gone.pk  # delete() sets it to None
        real = services.build_score_chunk
        calls = {"n": 0}

        def delete_reader_first(**kwargs):
            calls["n"] += 1
            if calls["n"] == 1:  # after prepare: the build's data and model still hold the reader
                gone.delete()
            return real(**kwargs)

        monkeypatch.setattr(services, "build_score_chunk", delete_reader_first)
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active and not build.reactivable
        # Their chunk still scored them; the picks table has no database constraint to refuse the rows.
        assert not UserRecommendation.objects.filter(build=build, user_id=gone_pk).exists()
        assert build.counts["recommendations"] == UserRecommendation.objects.filter(build=build).count() > 0
        assert _active_rows(world["users"]["space0"]) and _active_rows(world["users"]["cooking0"])
        assert SimilarItem.objects.filter(build=build).exists()

    def test_deleting_a_reader_deletes_their_picks(self, world):
        services.full_build_run()
        reader = world["users"]["space0"]
        assert _active_rows(reader)
        reader_pk = reader.pk
        reader.delete()
        assert not UserRecommendation.objects.filter(user_id=reader_pk).exists()


class TestLock:
    def test_second_build_refused_while_locked(self, world):
        build = BuildRun.objects.create()
        assert services.build_lock_acquire(build_id=build.pk)
        with pytest.raises(services.BuildAlreadyRunning, match="already running"):
            services.full_build_start()
        other = BuildRun.objects.create()
        assert services.build_prepare(build_id=other.pk) is None
        other.refresh_from_db()
        assert other.status == BuildRun.Status.FAILED and "holds the lock" in other.error

    def test_stale_lock_expires(self, world):
        from django.utils import timezone

        dead = BuildRun.objects.create()
        assert services.build_lock_acquire(build_id=dead.pk)
        BuildLock.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED
        assert not BuildLock.objects.exists()

    def test_twin_delivery_of_a_running_build_does_nothing(self, world):
        build = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=build.pk)
        assert not services.build_lock_acquire(build_id=build.pk)
        assert services.build_prepare(build_id=build.pk) is None
        build.refresh_from_db()
        assert build.status == BuildRun.Status.RUNNING  # not failed by its twin

    def test_stale_lock_takeover_fails_the_dead_build(self, world):
        from django.utils import timezone

        dead = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=dead.pk)
        BuildLock.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
        services.full_build_run()
        dead.refresh_from_db()
        assert dead.status == BuildRun.Status.FAILED and "lock expired" in dead.error


class TestUnlock:
    def test_live_lock_needs_force(self, world):
        build = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=build.pk)
        with pytest.raises(services.BuildError, match="use --force"):
            services.build_lock_break()
        assert "Released the lock of build" in services.build_lock_break(force=True)
        build.refresh_from_db()
        assert build.status == BuildRun.Status.FAILED and not BuildLock.objects.exists()
        assert services.build_lock_break() == ""
        assert services.full_build_run().status == BuildRun.Status.SUCCEEDED


class TestIdempotence:
    def test_scoring_a_chunk_twice_gives_same_rows(self, world):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk)
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        once = sorted(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        twice = sorted(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        assert once == twice
        services.build_finalize(build_id=build.pk)
        services.build_finalize(build_id=build.pk)
        assert BuildRun.objects.filter(is_active=True).count() == 1

    def test_a_chunk_probes_for_its_rows_instead_of_deleting(self, world):
        """No DELETE per chunk: PostgreSQL ran it as a scan of all the build's rows so far (quadratic builds)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        build = BuildRun.objects.create()
        (start, stop), *_ = services.build_prepare(build_id=build.pk)
        table = UserRecommendation._meta.db_table
        written = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                written.append(services.build_score_chunk(build_id=build.pk, start=start, stop=stop))
            on_picks = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
            assert not [sql for sql in on_picks if sql.lstrip().upper().startswith("DELETE")]
            assert sum("LIMIT 1" in sql for sql in on_picks) == 1
        assert written[0] > 0 and written[1] == 0  # the second delivery found the rows and wrote nothing
        assert UserRecommendation.objects.filter(build=build).count() == written[0]


class TestIncrementalRefresh:
    def test_refresh_changes_picks_after_new_like(self, world):
        services.full_build_run()
        cook = world["users"]["cooking0"]
        before = [p.name for p in selectors.recommended_for(cook, n=3)]
        for name in ("Rockets to Mars", "Orbital mechanics for everyone", "Life on the moon"):
            Like.objects.create(user=cook, item=world["items"][name])
        assert services.user_refresh(user_id=cook.pk) > 0
        after = [p.name for p in selectors.recommended_for(cook, n=3)]
        assert after != before
        assert after[0] in {"Stars and galaxies", "Rockets to Mars"}

    def test_refresh_request_queues_on_commit(self, world, django_capture_on_commit_callbacks, monkeypatch):
        from recommendations import tasks

        services.full_build_run()
        queued = []
        monkeypatch.setattr(tasks.user_refresh, "apply_async", lambda args, **kw: queued.append(args))
        cook = world["users"]["cooking1"]
        with django_capture_on_commit_callbacks(execute=True):
            Like.objects.create(user=cook, item=world["items"]["Rockets to Mars"])
        assert queued == [[str(cook.pk)]]

    def test_refresh_without_broker_stays_pending(self, world, monkeypatch):
        from recommendations import tasks

        services.full_build_run()

        def down(*a, **kw):
            raise ConnectionError("broker down")

        monkeypatch.setattr(tasks.user_refresh, "apply_async", down)
        cook = world["users"]["cooking2"]
        services.user_refresh_request(user_id=cook.pk)
        assert cook.pk in services.pending_refreshes_list()
        assert tasks.pending_refreshes_run() >= 1
        assert cook.pk not in services.pending_refreshes_list()

    def test_item_content_refresh_on_save(self, world):
        services.full_build_run()
        new = Item.objects.create(name="Pasta sauces from scratch", description="Italian pasta cooking at home.")
        ct = ContentType.objects.get_for_model(Item)
        assert services.item_content_refresh(content_type_id=ct.pk, object_id=str(new.pk)) > 0
        names = [n.name for n in selectors.similar_to(new, kind="content", n=3)]
        assert "Pasta from scratch" in names


class TestInteractionColumns:
    @pytest.fixture
    def aggregate_calls(self, monkeypatch):
        """What ``_columns_by_aggregate`` returned: an array tuple (PostgreSQL) or None (fallback)."""
        from recommendations import adapters

        calls, original = [], adapters._columns_by_aggregate
        monkeypatch.setattr(adapters, "_columns_by_aggregate", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
        return calls

    @pytest.fixture
    def concat_calls(self, monkeypatch):
        """What ``_columns_by_concat`` returned: an array tuple (SQLite) or None (fallback)."""
        from recommendations import adapters

        calls, original = [], adapters._columns_by_concat
        monkeypatch.setattr(adapters, "_columns_by_concat", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
        return calls

    def test_packed_records_match_rows(self, world, aggregate_calls, concat_calls):
        """The build reads packed records (binary on PostgreSQL, text on SQLite); they agree with the row reader."""
        from django.db import connection

        from recommendations.adapters import DefaultAdapter

        Score.objects.create(user=world["users"]["cooking1"], item=world["items"]["Bread baking at home"], stars=4)
        assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + Score.objects.count()
        packed = [call is not None for call in aggregate_calls + concat_calls]
        assert packed == ([True, True] if connection.vendor in ("postgresql", "sqlite") else [])

    def test_numbers_and_times_survive_the_packed_trip_exactly(self, world, testapp_settings, aggregate_calls,
                                                               concat_calls):
        """NULL, awkward doubles and times in several stored forms read back as the row reader reads them."""
        import datetime as dt

        from django.db import connection

        from recommendations.adapters import DefaultAdapter

        config = dict(testapp_settings)
        config["INTERACTIONS"] = [
            {"model": "testapp.Like", "user_field": "user", "item_field": "item", "kind": "read",
             "dwell_field": "seconds", "timestamp_field": "created_at"},
            {"model": "testapp.Score", "user_field": "user", "item_field": "item", "kind": "rating",
             "stars_field": "stars", "timestamp_field": "created_at"},
        ]
        doubles = [None, 0.1, 1 / 3, 1e-300, 12345.678901234567, -0.0, 2.0**60, 5e-324]
        likes = list(Like.objects.order_by("pk"))
        for like, value in zip(likes, doubles):
            like.seconds = value
            like.save()
        Like.objects.filter(pk=likes[0].pk).update(
            created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc))
        Like.objects.filter(pk=likes[1].pk).update(created_at=dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc))
        if connection.vendor == "sqlite":  # forms that Django does not write but SQLite reads: to the millisecond
            with connection.cursor() as cursor:
                cursor.execute("UPDATE testapp_like SET created_at = '2024-07-01T12:00:00.5Z' WHERE id = %s", [likes[2].pk])
                cursor.execute("UPDATE testapp_like SET created_at = '2024-07-01 16:00:00+02:00' WHERE id = %s", [likes[3].pk])
        with override_settings(RECOMMENDATIONS=config):
            assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + Score.objects.count()
            stamps = set(DefaultAdapter().interaction_columns().timestamp.tolist())
        assert {1709251198.123456, -0.000001} <= {round(stamp, 6) for stamp in stamps}
        if connection.vendor == "sqlite":
            assert {1719835200.5, 1719842400.0} <= stamps
        packed = [call is not None for call in aggregate_calls + concat_calls]
        assert packed == ([True, True] * 2 if connection.vendor in ("postgresql", "sqlite") else [])

        # SQLite 3.40's printf gives the largest double as ...56e308: the check sends that read to the cursor.
        Like.objects.filter(pk=likes[-1].pk).update(seconds=1.7976931348623157e308)
        with override_settings(RECOMMENDATIONS=config):
            assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + Score.objects.count()

    def test_many_rows_are_parted_into_several_values(self, world, aggregate_calls, monkeypatch):
        """Over ``_AGGREGATE_MAX_BYTES`` the records come as several values (parted by user): still every row once."""
        from django.db import connection

        from recommendations import adapters

        monkeypatch.setattr(adapters, "_AGGREGATE_MAX_BYTES", 100)  # 3 Like records of 32 bytes per value
        assert assert_columns_match_rows(adapters.DefaultAdapter()) == Like.objects.count() + 1
        used = [call is not None for call in aggregate_calls]
        assert used == ([True, True] if connection.vendor == "postgresql" else [])
        if connection.vendor == "postgresql":
            assert len(aggregate_calls[0][0]) == Like.objects.count() > 3  # the Like model's users column

    def test_only_fixed_width_ids_are_packed(self):
        from recommendations.adapters import _id_send_type

        assert _id_send_type(models.BigAutoField(primary_key=True)) == "int8"
        assert _id_send_type(models.PositiveBigIntegerField()) == "int8"
        assert _id_send_type(models.UUIDField()) == "uuid"
        assert _id_send_type(models.CharField(max_length=20)) is None
        assert _id_send_type(Like._meta.get_field("item")) == "uuid"

    def test_columns_match_rows(self, world):
        """The fast column reader (epoch seconds and UUID text on PostgreSQL) agrees with the row reader."""
        import datetime as dt

        from recommendations.adapters import DefaultAdapter

        Like.objects.filter(user=world["users"]["space1"]).update(
            created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc))
        adapter = DefaultAdapter()
        cols = adapter.interaction_columns()
        from_columns = sorted(zip(cols.user_id, cols.content_type_id.tolist(), cols.object_id, cols.kind.tolist(),
                                  cols.timestamp.tolist()), key=repr)
        from_rows = sorted(((r.user_id, r.item_key[0], r.item_key[1], r.kind, r.timestamp)
                            for r in adapter.interaction_rows()), key=repr)
        assert len(from_columns) == len(from_rows) == Like.objects.count() + 1
        for got, want in zip(from_columns, from_rows):
            assert got[:4] == want[:4]
            assert got[4] == pytest.approx(want[4], abs=1e-6)
        assert any(abs(c[4] - 1709251198.123456) < 1e-6 for c in from_columns)

    @pytest.mark.parametrize("reader", ["packed", "cursor"])
    def test_columns_match_rows_in_a_project_time_zone_that_is_not_utc(self, world, settings, monkeypatch, reader):
        """Stored times are UTC (USE_TZ): neither column reader may read them as the project's local time."""
        import datetime as dt

        from recommendations import adapters
        from recommendations.adapters import DefaultAdapter

        if reader == "cursor":
            monkeypatch.setattr(adapters, "_columns_by_aggregate", lambda *args: None)
            monkeypatch.setattr(adapters, "_columns_by_concat", lambda *args: None)
        settings.TIME_ZONE = "America/New_York"  # Django also sets the process's TZ to it
        Like.objects.filter(user=world["users"]["space1"]).update(
            created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc))
        Like.objects.filter(user=world["users"]["space2"]).update(
            created_at=dt.datetime(2024, 7, 1, 12, 0, 0, tzinfo=dt.timezone.utc))
        assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + Score.objects.count()
        stamps = set(DefaultAdapter().interaction_columns().timestamp.tolist())
        assert {1709251198.123456, 1719835200.0} <= stamps


@pytest.mark.django_db(transaction=True)
class TestChunkDeliveredTwiceAtOnce:
    """acks_late may hand one chunk to two workers at once: the twins must not double the picks."""

    @staticmethod
    def _twice(func, **kwargs) -> list[BaseException]:
        import threading

        from django.db import connections

        barrier, errors = threading.Barrier(2), []

        def run():
            try:
                barrier.wait()
                func(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return errors

    def test_twins_store_each_pick_once(self, world):
        from collections import Counter

        reference = services.full_build_run()
        expected = Counter(UserRecommendation.objects.filter(build=reference).values_list("user_id", "object_id", "rank"))
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk)
        assert len(chunks) > 1
        for start, stop in chunks:
            assert self._twice(services.build_score_chunk, build_id=build.pk, start=start, stop=stop) == []
        assert self._twice(services.build_finalize, build_id=build.pk) == []
        build.refresh_from_db()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
        got = Counter(UserRecommendation.objects.filter(build=build).values_list("user_id", "object_id", "rank"))
        assert got == expected
        # A twin delivered after the switch writes nothing.
        start, stop = chunks[0]
        assert services.build_score_chunk(build_id=build.pk, start=start, stop=stop) == 0

    def test_chunks_are_equal(self):
        assert services._chunk_spans(6040, 1000) == [(0, 863), (863, 1726), (1726, 2589), (2589, 3451),
                                                     (3451, 4314), (4314, 5177), (5177, 6040)]
        assert services._chunk_spans(8, 3) == [(0, 3), (3, 5), (5, 8)]
        assert services._chunk_spans(0, 3) == []


def _rate_everything(world):
    """Enough explicit ratings for the star predictor (it needs 10)."""
    from tests.recommendations.testapp.models import Score

    for u, user in enumerate(world["users"].values()):
        for i, item in enumerate(world["items"].values()):
            if (u + i) % 3 == 0 and not Score.objects.filter(user=user, item=item).exists():
                Score.objects.create(user=user, item=item, stars=1 + (u * i) % 5)


def _stored(build_id):
    """A build's neighbours and picks (keys, scores) and its rating model's predictions."""
    import io

    import numpy as np

    from recommendations.algorithms.rating import BiasedMF
    from recommendations.models import BuildArtifact

    neighbours = sorted(SimilarItem.objects.filter(build_id=build_id)
                        .values_list("kind", "object_id", "target_object_id", "rank", "score"))
    picks = sorted(UserRecommendation.objects.filter(build_id=build_id)
                   .values_list("user_id", "object_id", "rank", "score"))
    blob = BuildArtifact.objects.get(build_id=build_id, name="rating_model").data
    model = BiasedMF.load(io.BytesIO(bytes(blob)))
    return ([row[:-1] for row in neighbours], [row[-1] for row in neighbours],
            [row[:-1] for row in picks], [row[-1] for row in picks], model.predict(np.arange(4), np.arange(4)).tolist())


def _assert_same(a, b):
    import numpy as np

    assert a[0] == b[0] and a[0]  # neighbours
    assert a[2] == b[2] and a[2]  # picks
    # Two fits of the same data may differ in the last float32 bit (threaded sums).
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    np.testing.assert_allclose(a[3], b[3], rtol=1e-5)
    assert a[4] == b[4]  # the same rating model


class TestBuildParts:
    """The neighbour lists and the rating model, fitted beside the user chunks (``build_part``)."""

    def _deferred_build(self, twice=False):
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk, parts_inline=False)
        assert not SimilarItem.objects.filter(build=build).exists()  # the parts did not run here
        for _ in range(2 if twice else 1):
            for part in services.BUILD_PARTS:
                services.build_part(build_id=build.pk, part=part)
            for start, stop in chunks:
                services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        return services.build_finalize(build_id=build.pk)

    def test_parts_as_their_own_tasks_store_what_an_inline_build_stores(self, world):
        _rate_everything(world)
        inline = services.full_build_run()
        deferred = self._deferred_build()
        assert deferred.status == BuildRun.Status.SUCCEEDED and deferred.is_active
        a, b = _stored(inline.pk), _stored(deferred.pk)
        _assert_same(a, b)
        assert inline.counts["ratings"] == deferred.counts["ratings"] > 10
        assert inline.counts["neighbours"] == deferred.counts["neighbours"] == len(a[0])
        assert "part_neighbours" in deferred.timings and "part_rating_model" in deferred.timings

    def test_a_part_delivered_twice_stores_its_rows_once(self, world):
        _rate_everything(world)
        inline = services.full_build_run()
        deferred = self._deferred_build(twice=True)
        assert deferred.is_active
        _assert_same(_stored(inline.pk), _stored(deferred.pk))
        rows = list(SimilarItem.objects.filter(build=deferred).values_list("kind", "object_id", "rank"))
        assert len(rows) == len(set(rows))

    def test_a_build_whose_part_did_not_run_fails_and_the_previous_stays_active(self, world):
        first = services.full_build_run()
        build = BuildRun.objects.create()
        chunks = services.build_prepare(build_id=build.pk, parts_inline=False)
        services.build_part(build_id=build.pk, part="rating_model")  # the neighbour lists are missing
        for start, stop in chunks:
            services.build_score_chunk(build_id=build.pk, start=start, stop=stop)
        with pytest.raises(services.BuildError, match="neighbours"):
            services.build_finalize(build_id=build.pk)
        build.refresh_from_db()
        assert build.status == BuildRun.Status.FAILED and not build.is_active
        assert BuildRun.objects.get(is_active=True) == first
        assert not UserRecommendation.objects.filter(build=build).exists()
        assert services.build_lock_holder() is None

    def test_unknown_part_is_refused(self, world):
        with pytest.raises(ValueError, match="Unknown build part"):
            services.build_part(build_id=0, part="everything")


class TestFactorScoring:
    def test_build_scores_training_users_from_their_learned_factors(self, world, settings, testapp_settings):
        import numpy as np

        settings.RECOMMENDATIONS = {**testapp_settings, "ALGORITHM": "ials",
                                    "ALGORITHM_PARAMS": {"factors": 4, "iterations": 3, "random_state": 0}}
        build = services.full_build_run()
        state = services.build_state(build.pk)
        model = state.model
        for position, key in enumerate(state.user_keys):
            stored = list(UserRecommendation.objects.filter(build=build, user_id=services._user_pk(key))
                          .order_by("rank").values_list("object_id", "score"))
            scores = model.user_factors_[position] @ model.item_factors_.T
            scores[state.user_items[position].indices] = -np.inf
            scores[state.negatives[position].indices] = -np.inf
            best = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0][: len(stored)]
            assert [object_id for object_id, _ in stored] == [state.item_map.key(i)[1] for i in best]
            np.testing.assert_allclose([s for _, s in stored], scores[best], rtol=1e-5, atol=1e-6)
            # Folding the history in again gives other factors (the fit's last user step preceded its last item step).
            folded = model.score(state.user_items[position])[0]
            assert not np.allclose(folded, model.user_factors_[position] @ model.item_factors_.T)


class TestExplanationsBlock:
    """The chunk-wide explanation equals the per-user one, ties included."""

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_same_as_per_user(self, seed):
        import types

        import numpy as np
        import scipy.sparse as sp

        from recommendations.algorithms.matrices import IndexMap

        rng = np.random.default_rng(seed)
        n_items, n_users = 40, 60
        # Few distinct values: many ties between history items, and zeros and negatives to drop.
        similarity = sp.random(n_items, n_items, density=0.5, random_state=seed, format="csr",
                               data_rvs=lambda k: rng.integers(-1, 3, k).astype(np.float32))
        rows = sp.random(n_users, n_items, density=0.1, random_state=seed + 10, format="csr",
                         data_rvs=lambda k: rng.integers(1, 3, k).astype(np.float32))
        rows = sp.vstack([rows[:5], sp.csr_matrix((1, n_items), dtype=np.float32), rows[6:]], format="csr")  # no history
        state = services.BuildState(types.SimpleNamespace(similarity_=similarity), IndexMap([]), [], np.array([]),
                                    rows, rows)
        targets = [rng.choice(n_items, size=rng.integers(0, 12), replace=False) for _ in range(n_users)]
        expected = [services._explanations(state, rows[i], targets[i]) for i in range(n_users)]
        # A small bound: many groups, and users alone in theirs.
        for max_entries in (1 << 19, 40):
            assert services._explanations_block(state, rows, targets, max_entries=max_entries) == expected
        assert any(len(e) == 3 for user in expected for e in user)


class TestArtifacts:
    def test_saved_bytes_read_back_and_replaced(self, db):
        build = BuildRun.objects.create(triggered_by="test")
        payload = bytes(range(256)) * 1000  # every byte value, incl. NUL and backslash
        services._artifact_save(build, "blob", lambda f: f.write(payload))
        assert services._artifact_bytes(build.pk, "blob") == payload
        services._artifact_save(build, "blob", lambda f: f.write(b"second"))
        assert services._artifact_bytes(build.pk, "blob") == b"second"

    def test_missing_artifact_is_a_build_error(self, db):
        build = BuildRun.objects.create(triggered_by="test")
        with pytest.raises(services.BuildError, match="has no artifact 'model'"):
            services._artifact_bytes(build.pk, "model")
