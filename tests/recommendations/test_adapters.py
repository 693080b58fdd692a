"""Tests of recommendations/adapters.py: item texts and the explanation sentence."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from recommendations.adapters import get_adapter
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
