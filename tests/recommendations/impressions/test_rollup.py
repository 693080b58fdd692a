"""Tests of recommendations/impressions/rollup.py: daily metrics, retention purge, and readers deleted."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings

from recommendations import tasks
from recommendations.impressions import recording, rollup
from recommendations.models import Attribution, DailyMetric, Impression
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 30)
NOON = datetime(2026, 11, 30, 12, tzinfo=dt_timezone.utc)


@pytest.fixture
def shop(testapp_settings):
    User = get_user_model()
    items = [Item.objects.create(name=f"Item {i}") for i in range(10)]
    return {"items": items, "ann": User.objects.create_user("ann"), "bob": User.objects.create_user("bob"),
            "ct": ContentType.objects.get_for_model(Item).pk}


def _show(shop, user, items, *, surface="home", arm="", at=NOON):
    rid = recording.impression_record(surface=surface, items=items, user=user, experiment="exp" if arm else "",
                                      arm=arm, created_at=at)
    recording.impressions_flush()
    return Impression.objects.get(recommendation_id=rid)


def _attribute(impression, shop, item, kind, value=None, at=NOON):
    Attribution.objects.create(impression=impression, content_type_id=shop["ct"], object_id=str(item.pk),
                               position=impression.position_of(f"{shop['ct']}:{item.pk}"), kind=kind, value=value,
                               created_at=at + timedelta(minutes=1))


class TestDailyMetricsRollup:
    def test_rates_per_surface_and_arm(self, shop):
        items = shop["items"]
        a1 = _show(shop, shop["ann"], items[:4], arm="a")
        _show(shop, shop["ann"], items[4:8], arm="a")
        b1 = _show(shop, shop["bob"], items[:4], arm="b")
        _show(shop, shop["bob"], items[:2], surface="detail:similar")
        _show(shop, shop["bob"], items[:2], at=NOON - timedelta(days=1))  # another day
        _attribute(a1, shop, items[0], "click")
        _attribute(a1, shop, items[0], "read_through", 0.9)
        _attribute(a1, shop, items[1], "click")
        _attribute(a1, shop, items[1], "rating", 5)
        _attribute(b1, shop, items[2], "rating", 2)
        _attribute(b1, shop, items[3], "not_interested")
        assert rollup.daily_metrics_rollup(day=DAY) == 3
        rows = {(m.surface, m.arm): m for m in DailyMetric.objects.filter(day=DAY)}
        a, b = rows[("home", "a")], rows[("home", "b")]
        assert (a.impressions, a.items_shown, a.clicks, a.readers) == (2, 8, 2, 1)
        assert a.ctr == 0.5 and a.read_through_rate == 0.5 and a.rating_rate == 0.5
        assert a.positive_feedback_rate == pytest.approx(2 / 8)  # ann: 2 positives of 8 items shown
        assert (b.ctr, b.rating_rate, b.not_interested_rate, b.positive_feedback_rate) == (0, 1, 1, 0)
        assert a.coverage == pytest.approx(8 / 10) and a.distinct_items == 8 and a.catalogue_size == 10
        assert rows[("detail:similar", "")].impressions == 1

    def test_running_it_again_replaces_the_day(self, shop):
        imp = _show(shop, shop["ann"], shop["items"][:4])
        rollup.daily_metrics_rollup(day=DAY)
        _attribute(imp, shop, shop["items"][0], "click")
        rollup.daily_metrics_rollup(day=DAY)
        assert list(DailyMetric.objects.values_list("impressions", "clicks")) == [(1, 1)]


class TestRetention:
    def test_impressions_past_the_retention_are_purged_with_their_attributions(self, shop):
        old = _show(shop, shop["ann"], shop["items"][:3], at=NOON - timedelta(days=31))
        kept = _show(shop, shop["ann"], shop["items"][:3], at=NOON - timedelta(days=29))
        _attribute(old, shop, shop["items"][0], "click", at=old.created_at)
        assert rollup.impressions_purge(now=NOON) == 1
        assert list(Impression.objects.all()) == [kept] and not Attribution.objects.exists()

    def test_the_retention_is_a_setting(self, shop):
        _show(shop, shop["ann"], shop["items"][:3], at=NOON - timedelta(days=3))
        with override_settings(RECOMMENDATIONS={**TESTAPP_RECOMMENDATIONS, "IMPRESSION_RETENTION_DAYS": 2}):
            assert rollup.impressions_purge(now=NOON) == 1

    def test_the_daily_task_rolls_up_and_purges(self, shop):
        _show(shop, shop["ann"], shop["items"][:3], at=NOON - timedelta(days=40))
        _show(shop, shop["ann"], shop["items"][:3], at=NOON - timedelta(days=1))
        result = tasks.impressions_daily_run.run()
        assert result["purged"] == 1 and Impression.objects.count() == 1


class TestReaderDeleted:
    def test_deleting_a_reader_deletes_their_impressions_and_attributions(self, shop):
        mine = _show(shop, shop["ann"], shop["items"][:3])
        theirs = _show(shop, shop["bob"], shop["items"][:3])
        _attribute(mine, shop, shop["items"][0], "click")
        _attribute(theirs, shop, shop["items"][0], "click")
        shop["ann"].delete()
        assert list(Impression.objects.all()) == [theirs]
        assert list(Attribution.objects.values_list("impression", flat=True)) == [theirs.pk]

    def test_a_list_written_as_its_reader_was_deleted_is_purged_with_the_old_ones(self, shop):
        """The reader column has no database constraint: a flush racing the deletion can leave a row behind."""
        kept = _show(shop, shop["bob"], shop["items"][:3])
        ann_id = shop["ann"].pk
        shop["ann"].delete()
        left = Impression.objects.create(recommendation_id=recording.recommendation_id_new(), user_id=ann_id,
                                         surface="home", items=[f"{shop['ct']}:{shop['items'][0].pk}"],
                                         created_at=NOON)
        _attribute(left, shop, shop["items"][0], "click")
        anonymous = Impression.objects.create(recommendation_id=recording.recommendation_id_new(), surface="home",
                                              session_hash="abc", items=["1:1"], created_at=NOON)
        assert rollup.impressions_purge(now=NOON) == 1
        assert set(Impression.objects.all()) == {kept, anonymous} and not Attribution.objects.exists()


class TestAdmin:
    def test_the_daily_metrics_page_charts_each_rate(self, shop, admin_client):
        imp = _show(shop, shop["ann"], shop["items"][:4], arm="a")
        _attribute(imp, shop, shop["items"][0], "click")
        rollup.daily_metrics_rollup(day=DAY)
        rollup.daily_metrics_rollup(day=DAY - timedelta(days=1))
        html = admin_client.get("/admin/recommendations/dailymetric/").content.decode()
        assert html.count("<polyline") == 5 and "home exp/a" in html
        assert admin_client.get("/admin/recommendations/impression/").status_code == 200
