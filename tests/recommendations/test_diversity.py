"""Tests of the diversity cap on served picks: selectors, template tags and the API (stored and computed)."""
from __future__ import annotations

import logging

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.template import Context, Template
from django.test import override_settings

from recommendations import selectors, services
from recommendations.adapters import DefaultAdapter
from recommendations.models import BuildRun, PopularItem, UserRecommendation
from tests.api_lists import ListAPIClient
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item

URL = "/api/recommendations/"
# The reader's stored picks, best first: one author dominates.
STORED = [f"King {i}" for i in range(1, 9)] + ["Austen 1", "Austen 2", "Grisham 1", "Grisham 2", "King 9",
                                                 "King 10", "Woolf 1"]
POPULAR = ["King 11", "Poe 1", "Poe 2", "Poe 3", "Twain 1"]
CAPPED_12 = ["King 1", "King 2", "Austen 1", "Austen 2", "Grisham 1", "Grisham 2",  # at most 2 of a key in 6
             "King 3", "Woolf 1", "Poe 1", "Poe 2", "Poe 3", "Twain 1"]  # 3 in 12; popular items fill the list


class KeyedAdapter(DefaultAdapter):
    """The author is the first word of an item's name."""

    def diversity_key(self, obj):
        return obj.name.split()[0]


# The caps alone (no penalty): their effect is easy to follow by hand.
KEYED = {**TESTAPP_RECOMMENDATIONS, "ADAPTER": "tests.recommendations.test_diversity.KeyedAdapter",
         "DIVERSITY_PENALTY": 0}


@pytest.fixture
def shelf(db, django_user_model):
    cache.clear()
    with override_settings(RECOMMENDATIONS=KEYED):
        items = {name: Item.objects.create(name=name) for name in STORED + POPULAR}
        reader = django_user_model.objects.create_user(username="reader", password="x")
        ct = ContentType.objects.get_for_model(Item)
        build = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED)
        for rank, name in enumerate(STORED, 1):
            UserRecommendation.objects.create(build=build, user=reader, content_type=ct, object_id=str(items[name].pk),
                                              rank=rank, score=100 - rank)
        for rank, name in enumerate(POPULAR, 1):
            PopularItem.objects.create(build=build, content_type=ct, object_id=str(items[name].pk), rank=rank,
                                       score=50 - rank)
        yield {"items": items, "reader": reader}
    cache.clear()


def names(items) -> list[str]:
    return [item.name for item in items]


def api_names(response) -> list[str]:
    assert response.status_code == 200
    return [row["item"]["title"] for row in response.json()]


class TestSelectors:
    def test_caps(self, shelf):
        assert names(selectors.recommended_for(shelf["reader"], n=6)) == CAPPED_12[:6]
        picks = selectors.recommended_for(shelf["reader"], n=12)
        assert names(picks) == CAPPED_12
        assert [p.rec_rank for p in picks] == list(range(1, 13))
        assert [p.rec_source for p in picks[-4:]] == ["popular"] * 4

    def test_default_penalty_softens_repeats_below_the_caps(self, shelf):
        conf = {key: value for key, value in KEYED.items() if key != "DIVERSITY_PENALTY"}
        with override_settings(RECOMMENDATIONS=conf):
            # King 2 competes at 1 + 12 = 13 as a repeat: after Grisham 1 (10), before Austen 2 (9 + 12 = 21).
            assert names(selectors.recommended_for(shelf["reader"], n=6)) == ["King 1", "Austen 1", "Grisham 1",
                                                                              "King 2", "Woolf 1", "Austen 2"]

    def test_caps_off_serve_the_stored_order(self, shelf):
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": []}):
            assert names(selectors.recommended_for(shelf["reader"], n=6)) == STORED[:6]

    def test_caps_are_a_setting(self, shelf):
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": [(4, 1)]}):
            assert names(selectors.recommended_for(shelf["reader"], n=4)) == ["King 1", "Austen 1", "Grisham 1",
                                                                              "Woolf 1"]

    def test_no_key_no_cap(self, shelf):
        with override_settings(RECOMMENDATIONS=TESTAPP_RECOMMENDATIONS):  # DefaultAdapter: diversity_key() is None
            assert names(selectors.recommended_for(shelf["reader"], n=6)) == STORED[:6]

    def test_pinned_items_keep_their_place_and_do_not_count(self, shelf):
        services.item_rule_set(obj=shelf["items"]["King 9"], action="pin")
        assert names(selectors.recommended_for(shelf["reader"], n=6)) == ["King 9", "King 1", "King 2", "Austen 1",
                                                                          "Austen 2", "Grisham 1"]

    def test_a_uniform_pool_still_fills_the_list(self, shelf):
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": [(12, 1)]}):
            picks = names(selectors.recommended_for(shelf["reader"], n=12))
        assert len(picks) == 12
        assert picks[:6] == ["King 1", "Austen 1", "Grisham 1", "Woolf 1", "Poe 1", "Twain 1"]
        assert picks[6:] == ["King 2", "King 3", "King 4", "King 5", "King 6", "King 7"]  # the best skipped

    def test_a_malformed_setting_serves_uncapped_and_logs(self, shelf, caplog):
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": [(6, 0)]}), \
                caplog.at_level(logging.ERROR, logger="recommendations.selectors"):
            assert names(selectors.recommended_for(shelf["reader"], n=6)) == STORED[:6]
        assert "DIVERSITY_CAPS" in caplog.text


class TestTemplateTags:
    def test_recommended_for_is_capped(self, shelf):
        source = "{% load recommendations %}{% recommended_for user limit=12 as recs %}" \
                 "{% for item in recs %}{{ item.name }};{% endfor %}"
        out = Template(source).render(Context({"user": shelf["reader"]}))
        assert out.split(";")[:-1] == CAPPED_12


class TestApi:
    def test_computed_and_stored_bodies_are_capped(self, shelf):
        client = ListAPIClient()
        client.force_authenticate(shelf["reader"])
        assert api_names(client.get(URL + "?limit=12")) == CAPPED_12
        stored = client.get(URL)  # computes and stores the reader's body
        assert api_names(stored) == CAPPED_12[:10]
        assert client.get(URL).content == stored.content  # served from the stored body
        assert client.get(URL + "?limit=10").content == stored.content
        assert client.get(URL + "?limit=10&format=json").content == stored.content  # computed

    def test_a_shorter_list_is_the_head_of_the_default_one(self, shelf):
        client = ListAPIClient()
        client.force_authenticate(shelf["reader"])
        stored = client.get(URL)
        for limit in (1, 3, 7):
            assert api_names(client.get(URL + f"?limit={limit}&format=json")) == CAPPED_12[:limit]  # computed
            assert api_names(client.get(URL + f"?limit={limit}")) == CAPPED_12[:limit]  # the stored body's head
        assert api_names(stored) == CAPPED_12[:10]

    def test_changing_the_caps_invalidates_stored_bodies(self, shelf):
        client = ListAPIClient()
        client.force_authenticate(shelf["reader"])
        assert api_names(client.get(URL)) == CAPPED_12[:10]
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": []}):
            assert api_names(client.get(URL)) == STORED[:10]
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_CAPS": [(4, 1)]}):
            assert api_names(client.get(URL))[:4] == ["King 1", "Austen 1", "Grisham 1", "Woolf 1"]
        with override_settings(RECOMMENDATIONS={**KEYED, "DIVERSITY_PENALTY": 8}):
            assert api_names(client.get(URL))[:3] == ["King 1", "Austen 1", "King 2"]
        assert api_names(client.get(URL)) == CAPPED_12[:10]
