"""Fixtures of the recommendations tests: the testapp host and a small world of users and items."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests.recommendations.testapp.models import Item, Like, Score

TESTAPP_RECOMMENDATIONS = {
    "ITEM_MODELS": ["testapp.Item"],
    "INTERACTIONS": [
        {"model": "testapp.Like", "user_field": "user", "item_field": "item", "kind": "weight",
         "weight": 1.0, "timestamp_field": "created_at"},
        {"model": "testapp.Score", "user_field": "user", "item_field": "item", "kind": "rating",
         "stars_field": "stars", "timestamp_field": "created_at"},
    ],
    "TEXT_FIELDS": {"testapp.Item": ["name", "description"]},
    "ALGORITHM": "itemknn",
    "ALGORITHM_PARAMS": {"top_k": 10},
    "N_RECOMMENDATIONS": 5,
    "N_SIMILAR": 5,
    "BUILD_CHUNK_SIZE": 3,
    "ITEM_FILTERS": {"testapp.Item": {"is_active": True}},
    # The cold-item blend has tests of its own (build/test_cold.py); these pin the warm model's picks.
    "COLD_START": False,
}


@pytest.fixture
def testapp_settings():
    with override_settings(RECOMMENDATIONS=TESTAPP_RECOMMENDATIONS):
        yield TESTAPP_RECOMMENDATIONS


GENRES = {
    "space": ["Rockets to Mars", "Orbital mechanics for everyone", "Life on the moon", "Stars and galaxies"],
    "cooking": ["Bread baking at home", "Pasta from scratch", "Italian kitchen basics", "Slow cooking stews"],
}


@pytest.fixture
def world(db, testapp_settings):
    """Two taste groups: space readers like space items, cooks like cooking items."""
    items = {}
    for genre, names in GENRES.items():
        for name in names:
            items[name] = Item.objects.create(name=name, description=f"A {genre} book about {name.lower()}.")
    User = get_user_model()
    users = {}
    for genre, names in GENRES.items():
        for i in range(4):
            user = User.objects.create_user(username=f"{genre}{i}", password="x")
            users[user.username] = user
            # Each reader likes three of the four items of their genre (a different one is left out).
            for j, name in enumerate(names):
                if j != i:
                    Like.objects.create(user=user, item=items[name])
    Score.objects.create(user=users["space0"], item=items["Bread baking at home"], stars=1)
    return {"items": items, "users": users}
