"""Tests of recommendations/impressions/recording.py: the buffer, its flush, bots and sessions."""
from __future__ import annotations

import gc
import subprocess
import sys
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import RequestFactory, override_settings

from recommendations.impressions import recording
from recommendations.models import Attribution, Impression
from tests.conftest import ROOT
from tests.recommendations.testapp.models import Item

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    return [Item.objects.create(name=f"Item {i}") for i in range(3)]


class TestImpressionRecord:
    def test_a_recorded_list_waits_in_the_buffer_and_the_flush_writes_it(self, items):
        user = get_user_model().objects.create_user("reader")
        rid = recording.impression_record(surface="home", items=items, user=user, algorithm="itemknn", build_id=7,
                                          experiment="exp", arm="b")
        assert not Impression.objects.exists()
        assert recording.impressions_pending() == 1
        assert recording.impressions_flush() == 1
        row = Impression.objects.get()
        ct = ContentType.objects.get_for_model(Item).pk
        assert (row.recommendation_id, row.user, row.surface, row.build_id) == (rid, user, "home", 7)
        assert (row.experiment, row.arm, row.algorithm) == ("exp", "b", "itemknn")
        assert row.items == [f"{ct}:{item.pk}" for item in items]
        assert row.position_of(f"{ct}:{items[1].pk}") == 2

    def test_the_propensities_of_a_list_are_stored_with_it(self, items):
        recording.impression_record(surface="home", items=items, propensities=[None, 0.25, None])
        recording.impression_record(surface="home", items=items)
        recording.impressions_flush()
        stored = list(Impression.objects.values_list("propensities", flat=True))
        assert sorted(stored, key=lambda p: p is None) == [[None, 0.25, None], None]

    def test_every_recorded_list_is_stored_once(self, items):
        rids = {recording.impression_record(surface="tag", items=items) for _ in range(1200)}
        recording.impressions_flush()
        recording.impressions_flush()
        assert set(Impression.objects.values_list("recommendation_id", flat=True)) == rids

    def test_an_anonymous_session_is_stored_as_a_keyed_hash(self, items):
        request = RequestFactory().get("/", HTTP_USER_AGENT="Mozilla/5.0 Firefox/130")
        request.session = type("Session", (), {"session_key": "abc123"})()
        recording.impression_record_for_request(request, surface="home", items=items)
        recording.impressions_flush()
        row = Impression.objects.get()
        assert row.user is None and row.session_hash and "abc123" not in row.session_hash

    @pytest.mark.parametrize("agent", ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                                       "Mozilla/5.0 (compatible; bingbot/2.0)", "DuckDuckBot/1.1", "Baiduspider"])
    def test_bots_are_not_recorded(self, items, agent):
        request = RequestFactory().get("/", HTTP_USER_AGENT=agent)
        assert isinstance(recording.impression_record_for_request(request, surface="home", items=items), uuid.UUID)
        assert recording.impressions_pending() == 0

    def test_recording_off_gives_an_id_and_records_nothing(self, items):
        with override_settings(RECOMMENDATIONS={"IMPRESSIONS": False}):
            assert recording.impression_record(surface="home", items=items)
        assert recording.impressions_pending() == 0

    def test_waiting_rows_are_left_out_of_the_collectors_passes(self, items):
        """A full buffer must not add to every full collection of a busy worker (docs/decisions.md)."""
        user = get_user_model().objects.create_user("reader")
        for _ in range(3):
            recording.impression_record(surface="home", items=items, user=user, experiment="exp", arm="a")
        gc.collect()
        assert recording.impressions_pending() == 3
        assert not any(gc.is_tracked(row) for row in recording._pending)

    def test_text_with_copy_separators_is_stored_unchanged(self, items):
        """COPY's text format escapes tabs, newlines and backslashes (PostgreSQL); other databases insert rows."""
        arm, algorithm = "a\tb\\c\nd\re", "N\\N"
        rid = recording.impression_record(surface="home", items=[(1, "x\ty"), (1, "back\\slash")], arm=arm,
                                          algorithm=algorithm, session_key="s")
        assert recording.impressions_flush() == 1
        row = Impression.objects.get(recommendation_id=rid)
        assert (row.arm, row.algorithm, row.user_id) == (arm, algorithm, None)
        assert row.items == ["1:x\ty", "1:back\\slash"]

    def test_the_copy_line_is_made_with_the_record_not_in_the_flush(self, items, monkeypatch):
        """On PostgreSQL the request pays a few µs so the flush holds no burst of Python (docs/decisions.md)."""
        rid = recording.impression_record(surface="home", items=items, arm="a\tb")
        row = recording._pending[-1]
        if connection.vendor == "postgresql":
            assert row[recording.LINE:] == (recording.copy_line(row[:recording.LINE]),)
        else:
            assert len(row) == recording.LINE

        def no_line(row):
            raise AssertionError("the flush made a COPY line")

        monkeypatch.setattr(recording, "copy_line", no_line)
        assert recording.impressions_flush() == 1
        assert Impression.objects.get(recommendation_id=rid).arm == "a\tb"

    def test_ids_are_random_but_ordered_by_time(self, items, monkeypatch):
        """UUID version 7: the unique index takes new ids at its right edge; 74 random bits keep them unguessable."""
        monkeypatch.delattr(recording.uuid, "uuid7", raising=False)  # the fallback before Python 3.14
        ids = []
        for _ in range(3):
            ids.append(recording.impression_record(surface="home", items=items))
            time.sleep(0.002)
        ids += [recording.recommendation_id_new() for _ in range(2000)]
        assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
        assert ids[:3] == sorted(ids[:3]) and len(set(ids)) == len(ids)
        assert abs((ids[0].int >> 80) - time.time() * 1000) < 60_000  # the first 48 bits are Unix milliseconds
        recording.impressions_flush()
        assert set(Impression.objects.values_list("recommendation_id", flat=True)) == set(ids[:3])

    def test_a_list_of_a_reader_deleted_before_the_flush_is_dropped_not_the_batch(self, items):
        gone, kept = get_user_model().objects.create_user("gone"), get_user_model().objects.create_user("kept")
        recording.impression_record(surface="home", items=items, user=gone)
        rid = recording.impression_record(surface="home", items=items, user=kept)
        gone.delete()
        recording.impressions_flush()
        assert list(Impression.objects.values_list("recommendation_id", flat=True)) == [rid]


EXIT_SCRIPT = """
import os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]
from recommendations.impressions import recording
recording.BACKGROUND_FLUSH = False  # only the exit hook may write
recording.impression_record(surface="exit", items=[(1, "1")])
sys.exit(0)
"""


@pytest.mark.django_db(transaction=True)
def test_the_buffer_is_written_when_the_process_exits():
    """A process that exits (a gunicorn worker ends with sys.exit) writes what its buffer holds."""
    name = str(connection.settings_dict["NAME"])
    result = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, name], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Impression.objects.filter(surface="exit").count() == 1


@pytest.mark.parametrize("model, column, covering", [(Impression, "user_id", "impression_user_recent"),
                                                      (Attribution, "impression_id", "one_attribution_per_kind")])
def test_a_foreign_key_has_no_index_of_its_own_where_another_starts_with_it(model, column, covering):
    """Every index costs each impression written; the covering one serves the deletes and lookups."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    assert constraints[covering]["columns"][0] == column
    assert [name for name, c in constraints.items() if c["columns"] == [column] and not c["foreign_key"]] == []


def test_the_readers_column_has_no_database_constraint():
    """Its per-row check was a third of an impression's write; the ORM cascades and the purge removes leftovers."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Impression._meta.db_table)
    assert not [name for name, c in constraints.items() if c["columns"] == ["user_id"] and c["foreign_key"]]
