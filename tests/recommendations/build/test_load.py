"""Tests of recommendations/build/load.py: positions and scores depend on the data, not on the row order or the second."""
from __future__ import annotations

from types import SimpleNamespace

from recommendations import services
from recommendations.build import load
from recommendations.build.load import build_load, decay_clock, key_order
from recommendations.models import UserRecommendation
from tests.recommendations.testapp.models import Like

HOUR = 3600.0


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


def test_the_decay_clock_is_the_next_whole_hour():
    assert decay_clock(5 * HOUR) == 5 * HOUR
    assert decay_clock(5 * HOUR + 1) == decay_clock(6 * HOUR - 1) == 6 * HOUR


def _stored_picks():
    return sorted(UserRecommendation.objects.filter(build__is_active=True)
                  .values_list("user_id", "object_id", "rank", "score"))


def test_two_builds_in_one_hour_store_the_same_scores(world, monkeypatch):
    hour = (decay_clock() // HOUR + 10) * HOUR  # a whole hour ahead, so every interaction is in the past
    picks = []
    for seconds in (1, HOUR - 1):
        monkeypatch.setattr(load, "time", SimpleNamespace(time=lambda seconds=seconds: hour + seconds))
        services.full_build_run()
        picks.append(_stored_picks())
    assert picks[0] and picks[0] == picks[1]
    # The next hour is a new reference: every weight decays a little, so the scores move.
    monkeypatch.setattr(load, "time", SimpleNamespace(time=lambda: hour + HOUR + 1))
    services.full_build_run()
    assert [p[:3] for p in _stored_picks()] == [p[:3] for p in picks[0]]
    assert _stored_picks() != picks[0]
