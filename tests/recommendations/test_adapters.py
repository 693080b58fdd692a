"""Tests of recommendations/adapters.py: item texts and the explanation sentence."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from recommendations.adapters import DefaultAdapter, get_adapter
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item, Like

# An item model whose text comes through foreign keys (the liked item's name, the user's name).
FK_TEXT = {
    "ITEM_MODELS": ["testapp.Like"],
    "INTERACTIONS": [],
    "TEXT_FIELDS": {"testapp.Like": ["item", "user"]},
}


class TestItemTexts:
    def _texts(self, n: int) -> tuple[int, dict[str, str]]:
        user = get_user_model().objects.create_user(username=f"reader{n}", password="x")
        for i in range(n):
            Like.objects.create(user=user, item=Item.objects.create(name=f"Book {n}-{i}"))
        with override_settings(RECOMMENDATIONS=FK_TEXT), CaptureQueriesContext(connection) as queries:
            texts = dict(get_adapter().item_texts(Like))
        return len(queries), texts

    def test_foreign_keys_are_loaded_with_the_items(self, db):
        few, texts = self._texts(2)
        assert sorted(texts.values()) == ["Book 2-0\nreader2", "Book 2-1\nreader2"]
        many, texts = self._texts(30)
        assert len(texts) == 32
        assert few == many == 1  # one query, whatever the number of items


class BoughtAdapter(DefaultAdapter):
    """A shop words its explanations itself."""

    def explanation_text(self, explanation):
        return "Goes with " + " + ".join(e["title"] for e in explanation)


class TestExplanationText:
    CITED = [{"content_type": 1, "object_id": "1", "title": "Dune"},
             {"content_type": 1, "object_id": "2", "title": ""},
             {"content_type": 1, "object_id": "3", "title": "Emma"},
             {"content_type": 1, "object_id": "4", "title": "Ulysses"}]

    def test_english_and_german(self):
        adapter = DefaultAdapter()
        assert adapter.explanation_text([]) == ""
        assert adapter.explanation_text(self.CITED[:1]) == "Because you read Dune"
        assert adapter.explanation_text(self.CITED) == "Because you read Dune, Emma and Ulysses"
        with translation.override("de"):
            assert adapter.explanation_text(self.CITED[:1]) == "Weil Sie Dune gelesen haben"
            assert adapter.explanation_text(self.CITED) == "Weil Sie Dune, Emma und Ulysses gelesen haben"

    def test_the_adapter_words_what_selectors_serve(self, world):
        from recommendations import selectors, services

        services.full_build_run()
        path = f"{__name__}.BoughtAdapter"
        with override_settings(RECOMMENDATIONS={**TESTAPP_RECOMMENDATIONS, "ADAPTER": path}):
            (pick,) = selectors.recommended_for(world["users"]["space0"], n=1)
            assert pick.rec_because.startswith("Goes with ")
            assert selectors.explanation_text(self.CITED[:1]) == "Goes with Dune"
