"""Tests of recommendations/db/: every fast path's portable fallback, run on purpose whatever the database."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from recommendations.db import binary, blobs, bulk, fields, locks
from recommendations.db.compiled import CompiledQuery
from recommendations.models import BuildArtifact, BuildRun, PopularItem
from tests.recommendations.testapp.models import Item, Like


@contextmanager
def portable():
    """Make the database look like one without a fast path (neither PostgreSQL nor SQLite)."""
    with mock.patch.object(connection, "vendor", "portable"):
        yield


@pytest.fixture
def build(db):
    return BuildRun.objects.create(triggered_by="test")


class TestRowsInsert:
    @pytest.mark.parametrize("path", ["vendor", "portable"])
    def test_rows_from_a_generator_are_stored_once(self, build, path, monkeypatch):
        monkeypatch.setattr(bulk, "BATCH_SIZE", 2)  # several batches on the portable path
        rows = ((build.pk, "all", 1, str(i), i, float(i)) for i in range(1, 6))
        columns = ("build", "window", "content_type", "object_id", "rank", "score")
        if path == "portable":
            with portable():
                assert bulk.rows_insert(PopularItem, columns, rows) == 5
        else:
            assert bulk.rows_insert(PopularItem, columns, rows) == 5
        stored = list(PopularItem.objects.filter(build=build).order_by("rank").values_list("object_id", "score"))
        assert stored == [(str(i), float(i)) for i in range(1, 6)]

    def test_datetimes_are_adapted_on_the_portable_path(self, db, django_user_model):
        user = django_user_model.objects.create(username="reader")
        item = Item.objects.create(name="A")
        when = dt.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)
        with portable():
            assert bulk.rows_insert(Like, ("user", "item", "created_at"), [(user.pk, item.pk.hex, when)]) == 1
        assert Like.objects.get().created_at == when

    def test_nothing_to_insert(self, build):
        assert bulk.rows_insert(PopularItem, ("build", "window"), []) == 0


class TestCopyText:
    def test_copy_line_escapes_the_text_format(self):
        when = dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone.utc)
        line = bulk.copy_line(("a\tb\\c\nd\re", None, 5, when))
        assert line == "a\\tb\\\\c\\nd\\re\t\\N\t5\t2024-02-29T12:00:00+00:00\n"

    def test_copy_text_writes_on_postgresql_and_declines_elsewhere(self, build):
        columns = ("build", "window", "content_type", "object_id", "rank", "score")
        lines = [bulk.copy_line((build.pk, "all", 1, f"tab\t{i}", i, float(i))) for i in range(1, 4)]
        with portable():
            assert bulk.copy_text(PopularItem, columns, lines) is None
        assert not PopularItem.objects.exists()
        written = bulk.copy_text(PopularItem, columns, lines)
        if connection.vendor == "postgresql":
            assert written == 3
            assert sorted(PopularItem.objects.values_list("object_id", flat=True)) == [f"tab\t{i}" for i in range(1, 4)]
        else:
            assert written is None and not PopularItem.objects.exists()


class TestBlobs:
    @pytest.mark.parametrize("path", ["vendor", "portable"])
    def test_bytes_go_in_and_come_back_unchanged(self, build, path):
        payload = bytes(range(256)) * 100  # every byte value, NUL and backslash included
        values = {"build": build.pk, "name": "blob", "data": memoryview(payload), "created_at": dt.datetime.now(dt.timezone.utc)}
        query = BuildArtifact.objects.filter(build=build, name="blob").values_list("data")
        if path == "portable":
            with portable():
                blobs.blob_insert(BuildArtifact, values, ["int8", "text", "bytea", "timestamptz"])
                assert blobs.blob_read(query) == payload
        else:
            blobs.blob_insert(BuildArtifact, values, ["int8", "text", "bytea", "timestamptz"])
            assert blobs.blob_read(query) == payload

    def test_a_missing_row_reads_as_none(self, build):
        with portable():
            assert blobs.blob_read(BuildArtifact.objects.filter(build=build).values_list("data")) is None


@pytest.mark.django_db(transaction=True)
class TestKeyedWriteLock:
    @pytest.mark.parametrize("path", ["vendor", "portable"])
    def test_returns_the_field_under_the_lock(self, path):
        build = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        with transaction.atomic():
            if path == "portable":
                with portable():
                    status = locks.keyed_write_lock(BuildRun, build.pk, "status", key="0:3", namespace="test")
            else:
                status = locks.keyed_write_lock(BuildRun, build.pk, "status", key="0:3", namespace="test")
        assert status == BuildRun.Status.RUNNING

    def test_a_missing_row_gives_none(self):
        with transaction.atomic(), portable():
            assert locks.keyed_write_lock(BuildRun, 10**9, "status", key="k", namespace="test") is None


class TestCompiledQuery:
    def test_runs_the_compiled_sql_with_each_value(self, db):
        User = get_user_model()
        a, b = User.objects.create(username="a"), User.objects.create(username="b")
        query = CompiledQuery(lambda value: User.objects.filter(username=value), connection.alias)
        assert query.usable
        assert query.first("a") == a and query.first("b") == b
        assert query.first("nobody") is None

    def test_several_values_each_put_wherever_it_is_used(self, db):
        User = get_user_model()
        a = User.objects.create(username="a", first_name="x", last_name="a")
        b = User.objects.create(username="b", first_name="y", last_name="b")
        query = CompiledQuery(lambda name, first: User.objects.filter(username=name, last_name=name, first_name=first),
                              connection.alias, values=2)
        assert query.usable and [len(positions) for positions in query.value_index] == [2, 1]
        assert query.first("a", "x") == a and query.first("b", "y") == b
        assert query.first("a", "y") is None

    def test_a_value_the_orm_transforms_is_not_usable(self, db):
        User = get_user_model()
        assert not CompiledQuery(lambda name: User.objects.filter(username__contains=name), connection.alias).usable

    def test_binary_results_leave_other_drivers_alone(self, db):
        with connection.cursor() as cursor:
            binary.binary_results(cursor)  # SQLite or a client-side cursor: nothing changes
            cursor.execute("SELECT 1")
            assert cursor.fetchone()[0] == 1


class TestDistinctMap:
    @pytest.mark.parametrize("values", [
        np.asarray([3, 1, 3, 2], dtype=np.int64),
        np.asarray([b"a" * 32, b"b" * 32, b"a" * 32], dtype="S32"),
        [7, "x", 7],
    ])
    def test_same_as_converting_each_value(self, values):
        calls = []

        def convert(value):
            calls.append(value)
            return ("converted", value)

        got = fields.distinct_map(values, convert)
        keys = [v.decode() if isinstance(v, bytes) else v for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
        assert got == [("converted", k) for k in keys]
        assert len(calls) == len(set(keys))
