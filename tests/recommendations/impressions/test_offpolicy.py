"""Tests of recommendations/impressions/offpolicy.py: a slot's CTR under another configuration, from logged propensities."""
from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from recommendations.impressions.offpolicy import ips_estimates, reader_slots, slot_ctr
from recommendations.models import Attribution, Impression
from tests.recommendations.testapp.models import Item

pytestmark = pytest.mark.django_db


def _logs(rows):
    """Store rows of (reader, items shown, the exploration position, its propensity, clicked) as impressions."""
    users = {name: get_user_model().objects.create_user(name) for name in {r[0] for r in rows}}
    start = timezone.now()
    for day, (name, items, position, propensity, clicked) in enumerate(rows):
        propensities = [None] * len(items)
        propensities[position] = propensity
        impression = Impression.objects.create(recommendation_id=uuid.uuid4(), user=users[name], surface="home",
                                               items=items, propensities=propensities,
                                               created_at=start + dt.timedelta(seconds=day))
        if clicked:
            key = items[position].split(":")
            Attribution.objects.create(impression=impression, content_type_id=int(key[0]), object_id=key[1],
                                       position=position + 1, kind=Attribution.Kind.CLICK)
    return {f"u:{users[name].pk}": name for name in users}


def test_the_estimates_reweight_the_logged_clicks_by_the_propensity_of_the_matching_picks():
    ct = ContentType.objects.get_for_model(Item).pk
    a, b, c, w = (f"{ct}:{x}" for x in ("a", "b", "c", "w"))
    names = _logs([
        ("ann", [w, a], 1, 0.5, True), ("ann", [w, a], 1, 0.5, False),  # the target's item: weight 2
        ("bob", [w, b], 1, 0.5, False), ("bob", [b, w], 0, 0.5, False),  # another item: weight 0
        ("cat", [w, c], 1, 0.25, True),  # the target's item: weight 4
        ("cat", [w], 0, 1.0, False),  # clicked, read, gone: not a list of cat's slot
    ])
    # Another surface showing the slot's item (an item page's similar items) is not the slot.
    Impression.objects.create(recommendation_id=uuid.uuid4(), user=get_user_model().objects.get(username="ann"),
                              surface="detail:similar", items=[a])
    target = {key: {"ann": a, "bob": a, "cat": c}[name] for key, name in names.items()}
    slots = reader_slots(Impression.objects.all())
    assert sorted((s.item, s.propensity, s.impressions, s.clicks) for s in slots.values()) == [
        (a, 0.5, 2, 1), (b, 0.5, 2, 0), (c, 0.25, 1, 1)]
    found = ips_estimates(slots, target)
    # IPS: (2*1 + 0 + 4*1) / (2 + 2 + 1); SNIPS: the same clicks over (2*2 + 0 + 4*1) reweighted lists.
    assert found["ips"].ctr == pytest.approx(6 / 5)
    assert found["snips"].ctr == pytest.approx(6 / 8)
    # Delta method over the 3 readers: residuals y - 0.75 x are -1, 0, 1; se = sqrt(2 * 3/2) / 8.
    half = 1.959963984540054 * math.sqrt(3) / 8
    assert (found["snips"].low, found["snips"].high) == (pytest.approx(0.75 - half), pytest.approx(0.75 + half))
    assert (found["snips"].readers, found["snips"].impressions, found["snips"].matched) == (3, 5, 3)
    online = slot_ctr(slots)
    assert online.ctr == pytest.approx(2 / 5) and online.readers == 3


def test_a_reader_the_target_gives_no_slot_is_left_out():
    ct = ContentType.objects.get_for_model(Item).pk
    a = f"{ct}:a"
    names = _logs([("ann", [a], 0, 0.5, True), ("bob", [a], 0, 0.5, False)])
    target = {key: (a if name == "ann" else None) for key, name in names.items()}
    found = ips_estimates(reader_slots(Impression.objects.all()), target)
    # One reader: no spread to estimate, so no interval (NaN), as the experiments report it.
    assert found["snips"].ctr == 1.0 and found["snips"].readers == 1 and math.isnan(found["snips"].low)
