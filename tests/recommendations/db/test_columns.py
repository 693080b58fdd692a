"""Tests of recommendations/db/columns.py and its packed fast paths against the reference reader."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import override_settings

from recommendations import selectors, services
from recommendations.db import packed_postgresql, packed_sqlite
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.columns import assert_columns_match_rows, reference_rows
from tests.recommendations.testapp.models import Item, Like, Score


class TestInteractionColumns:
    @pytest.fixture
    def aggregate_calls(self, monkeypatch):
        """What ``columns_by_aggregate`` returned: an array tuple (PostgreSQL) or None (fallback)."""
        calls, original = [], packed_postgresql.columns_by_aggregate
        monkeypatch.setattr(packed_postgresql, "columns_by_aggregate",
                            lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
        return calls

    @pytest.fixture
    def concat_calls(self, monkeypatch):
        """What ``columns_by_concat`` returned: an array tuple (SQLite) or None (fallback)."""
        calls, original = [], packed_sqlite.columns_by_concat
        monkeypatch.setattr(packed_sqlite, "columns_by_concat",
                            lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
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
        """Over ``AGGREGATE_MAX_BYTES`` the records come as several values (parted by user): still every row once."""
        from django.db import connection

        from recommendations.adapters import DefaultAdapter

        monkeypatch.setattr(packed_postgresql, "AGGREGATE_MAX_BYTES", 100)  # 3 Like records of 32 bytes per value
        assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + 1
        used = [call is not None for call in aggregate_calls]
        assert used == ([True, True] if connection.vendor == "postgresql" else [])
        if connection.vendor == "postgresql":
            assert len(aggregate_calls[0][0]) == Like.objects.count() > 3  # the Like model's users column

    def test_only_fixed_width_ids_are_packed(self):
        from recommendations.db.fields import id_send_type

        assert id_send_type(models.BigAutoField(primary_key=True)) == "int8"
        assert id_send_type(models.PositiveBigIntegerField()) == "int8"
        assert id_send_type(models.UUIDField()) == "uuid"
        assert id_send_type(models.CharField(max_length=20)) is None
        assert id_send_type(Like._meta.get_field("item")) == "uuid"

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
                            for r in reference_rows(adapter)), key=repr)
        assert len(from_columns) == len(from_rows) == Like.objects.count() + 1
        for got, want in zip(from_columns, from_rows):
            assert got[:4] == want[:4]
            assert got[4] == pytest.approx(want[4], abs=1e-6)
        assert any(abs(c[4] - 1709251198.123456) < 1e-6 for c in from_columns)

    @pytest.mark.parametrize("reader", ["packed", "cursor"])
    def test_columns_match_rows_in_a_project_time_zone_that_is_not_utc(self, world, settings, monkeypatch, reader):
        """Stored times are UTC (USE_TZ): neither column reader may read them as the project's local time."""
        import datetime as dt

        from recommendations.adapters import DefaultAdapter

        if reader == "cursor":
            monkeypatch.setattr(packed_postgresql, "columns_by_aggregate", lambda *args: None)
            monkeypatch.setattr(packed_sqlite, "columns_by_concat", lambda *args: None)
        settings.TIME_ZONE = "America/New_York"  # Django also sets the process's TZ to it
        Like.objects.filter(user=world["users"]["space1"]).update(
            created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone.utc))
        Like.objects.filter(user=world["users"]["space2"]).update(
            created_at=dt.datetime(2024, 7, 1, 12, 0, 0, tzinfo=dt.timezone.utc))
        assert assert_columns_match_rows(DefaultAdapter()) == Like.objects.count() + Score.objects.count()
        stamps = set(DefaultAdapter().interaction_columns().timestamp.tolist())
        assert {1709251198.123456, 1719835200.0} <= stamps
