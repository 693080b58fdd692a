"""Tests of recommendations/build/load.py: positions do not depend on the database's row order."""
from __future__ import annotations

from recommendations.build.load import build_load, key_order
from tests.recommendations.testapp.models import Like


def test_integer_keys_sort_as_numbers_and_other_keys_as_text():
    keys = ["10", 9, "9x", "b", "a", 100, "011"]
    assert sorted(keys, key=key_order) == [9, "10", "011", 100, "9x", "a", "b"]


def test_users_take_the_same_positions_whatever_order_their_interactions_come_in(world):
    first = build_load().user_map
    # The first reader's likes are re-created last, so their rows come back after everyone else's.
    reader = world["users"]["space0"]
    likes = list(Like.objects.filter(user=reader).values_list("item_id", flat=True))
    Like.objects.filter(user=reader).delete()
    Like.objects.bulk_create([Like(user=reader, item_id=item_id) for item_id in likes])
    second = build_load().user_map
    assert list(first.keys()) == list(second.keys()) == sorted(first.keys(), key=key_order)
