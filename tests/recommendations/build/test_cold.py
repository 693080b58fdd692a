"""The cold-item blend of full builds, exploration slots and new items placed after a build (build/cold.py, placement.py)."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.utils import translation

from recommendations import selectors, services
from recommendations.adapters import DefaultAdapter
from recommendations.build.cold import exploration_slots
from recommendations.build.placement import cold_item_place
from recommendations.models import UserRecommendation
from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS
from tests.recommendations.testapp.models import Item

COLD = {**TESTAPP_RECOMMENDATIONS, "COLD_START": True, "N_RECOMMENDATIONS": 10, "EXPLORATION_SHARE": 0.1,
        "NEW_ITEM_MAX_READERS": 0}


@pytest.mark.parametrize(("length", "share", "slots"), [
    (30, 0.1, [5, 15, 25]), (10, 0.1, [5]), (9, 0.1, []), (4, 0.5, [1, 3]), (2, 0.5, [1]), (30, 0.0, []),
    (1, 0.5, []),
])
def test_exploration_slots_take_the_share_and_never_the_first_place(length, share, slots):
    assert exploration_slots(length, share) == slots


def test_a_new_item_explanation_says_which_read_it_is_like():
    with translation.override("en"):
        text = DefaultAdapter().explanation_text([{"content_type": 1, "object_id": "2", "title": "Dune", "new": True}])
        plain = DefaultAdapter().explanation_text([{"content_type": 1, "object_id": "2", "title": "Dune"}])
    assert text == "New: like Dune, which you read"
    assert plain == "Because you read Dune"


def _unread_items():
    """Items nobody read, with the words of each genre: the build's new items."""
    return [Item.objects.create(name=f"More rockets to Mars {i}", description="A space book about rockets to mars.")
            for i in range(12)]


@override_settings(RECOMMENDATIONS=COLD)
def test_a_build_gives_the_exploration_share_of_each_list_to_new_items(world):
    new = _unread_items()
    build = services.full_build_run()
    assert build.counts["cold_items"] == 20
    new_ids = {str(item.pk) for item in new}
    for user in world["users"].values():
        picks = list(UserRecommendation.objects.filter(build=build, user=user).order_by("rank"))
        explored = [p for p in picks if any(e.get("explore") for e in p.explanation)]
        slots = exploration_slots(len(picks) - len(explored), 0.1)
        assert len(explored) == len(slots) >= 1, user.username
        assert picks[0] not in explored
        assert [picks.index(p) for p in explored] == slots
        assert all(p.object_id in new_ids for p in explored)
        # Serving orders by score: the slot's item stays in its place.
        assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


@override_settings(RECOMMENDATIONS=COLD)
def test_an_exploration_pick_is_served_flagged_with_its_new_explanation(world):
    _unread_items()
    services.full_build_run()
    picks = selectors.recommended_for(world["users"]["space0"], n=10)
    explored = [p for p in picks if p.rec_explore]
    assert explored and explored[0].rec_rank > 1
    assert explored[0].rec_new
    assert explored[0].rec_because.startswith("New: like ") and explored[0].rec_because.endswith(", which you read")


@override_settings(RECOMMENDATIONS={**COLD, "COLD_START": False})
def test_without_the_cold_model_nothing_is_new(world):
    _unread_items()
    build = services.full_build_run()
    assert build.counts["cold_items"] == 0
    assert not any(e.get("new") for ex in UserRecommendation.objects.filter(build=build)
                   .values_list("explanation", flat=True) for e in ex)


@override_settings(RECOMMENDATIONS={**COLD, "EXPLORATION_SHARE": 0})
def test_an_item_saved_after_the_build_is_placed_in_matching_readers_picks(world):
    services.full_build_run()
    item = Item.objects.create(name="Rockets and orbital stars", description="A space book about rockets to mars.")
    ct = ContentType.objects.get_for_model(Item).pk
    placed = cold_item_place(content_type_id=ct, object_id=str(item.pk))
    assert placed >= 1
    readers = set(UserRecommendation.objects.filter(build__is_active=True, content_type_id=ct, object_id=str(item.pk))
                  .values_list("user__username", flat=True))
    assert readers and all(name.startswith("space") for name in readers)
    reader = world["users"][sorted(readers)[0]]
    served = [p for p in selectors.recommended_for(reader, n=10) if p.pk == item.pk]
    assert served and served[0].rec_new and not served[0].rec_explore
    assert served[0].rec_because.startswith("New: like ")
    # A refresh of the reader scores the item again from the build's stored mapping: it stays.
    from recommendations import refresh

    refresh.user_refresh(user_id=reader.pk)
    assert UserRecommendation.objects.filter(build__is_active=True, user=reader, object_id=str(item.pk)).exists()
    # Deleting the item takes it out of every reader's picks and out of later refreshes.
    item.delete()
    refresh.user_refresh(user_id=reader.pk)
    assert not UserRecommendation.objects.filter(build__is_active=True, object_id=str(item.pk)).exists()


@override_settings(RECOMMENDATIONS={**COLD, "EXPLORATION_SHARE": 0})
def test_the_admin_shows_how_a_new_item_is_scored(world):
    from recommendations.admin_items import ItemRecommendationsAdminMixin

    services.full_build_run()
    item = Item.objects.create(name="Rockets and orbital stars", description="A space book about rockets to mars.")
    admin = ItemRecommendationsAdminMixin()
    assert "Not mapped yet" in admin.recommendation_cold(item)
    cold_item_place(content_type_id=ContentType.objects.get_for_model(Item).pk, object_id=str(item.pk))
    scoring, held = selectors.cold_scoring_for_admin(item)
    assert scoring.source == "saved since" and scoring.warmth == 0 and scoring.is_new and held >= 1
    assert scoring.nearest and all(isinstance(i, Item) for i, _ in scoring.nearest)
    html = admin.recommendation_cold(item)
    assert "warmth 0.00" in html and "mapped on save" in html and scoring.nearest[0][0].name in html
    warm = admin.recommendation_cold(world["items"]["Rockets to Mars"])
    assert "reader(s) at the build" in warm and "the build&#x27;s content map" in warm


def test_nearest_in_rows_matches_nearest_in_history_for_every_reader():
    import numpy as np
    import scipy.sparse as sp

    from recommendations.build.cold import ColdView

    rng = np.random.default_rng(0)
    view = ColdView.__new__(ColdView)
    vectors = rng.normal(size=(30, 4))
    vectors[5] = 0.0  # an item without content
    view.unit = vectors / np.where(np.linalg.norm(vectors, axis=1, keepdims=True) > 0,
                                   np.linalg.norm(vectors, axis=1, keepdims=True), 1)
    rows = sp.random(12, 30, density=0.15, random_state=1, format="csr", dtype=np.float32)
    rows = rows.tolil()
    rows[3] = 0  # a reader without history
    rows = sp.csr_matrix(rows)
    for target in (0, 5, 17):
        got = view.nearest_in_rows(rows, target)
        for u in range(rows.shape[0]):
            span = slice(rows.indptr[u], rows.indptr[u + 1])
            expected = view.nearest_in_history(rows.indices[span], rows.data[span], [target]).get(target, -1)
            assert got[u] == expected


def test_a_new_item_of_a_model_the_reader_has_no_picks_in_is_scaled_far_below_their_picks(db, testapp_settings):
    """A books-only reader's new-article score follows the blend's rule (``NO_SIGNAL_SHARE``), never a scale of 1."""
    from django.contrib.auth import get_user_model

    from recommendations.algorithms.cold import NO_SIGNAL_SHARE
    from recommendations.build.placement import _stored_scores
    from recommendations.models import BuildRun

    books, articles = (ContentType.objects.get_for_model(m).pk for m in (Item, get_user_model()))
    build = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, is_active=True)
    both, books_only = (get_user_model().objects.create_user(username=n, password="x") for n in ("both", "books"))
    rows = [(both, articles, 0.4), (both, books, 0.02)] + [(books_only, books, s) for s in (0.09, 0.08, 0.07, 0.06,
                                                                                          0.05, 0.04)]
    UserRecommendation.objects.bulk_create(
        UserRecommendation(build=build, user=u, content_type_id=ct, object_id=str(i), rank=i + 1, score=s)
        for i, (u, ct, s) in enumerate(rows))
    scale, (reader, score), earlier = _stored_scores(build.pk, [both.pk, books_only.pk], [both.pk, books_only.pk],
                                                     (articles, "999"))
    assert scale[0] == pytest.approx(0.4)  # their own (last, in a list shorter than the scale's rank) article pick
    assert scale[1] == pytest.approx(NO_SIGNAL_SHARE * 0.05)  # a thousandth of their 5th best pick overall
    assert sorted(reader.tolist()) == [0, 0, 1, 1, 1, 1, 1, 1] and len(score) == 8 and earlier == set()


def test_exploration_takes_a_content_match_that_the_rank_map_puts_in_a_zero_warm_tail():
    """A sparse warm row (kNN: 5 scores, the rest 0) maps middling content matches to 0; they still match."""
    from types import SimpleNamespace

    import numpy as np
    import scipy.sparse as sp

    from recommendations.build.cold import ColdModel, ColdView, Extension, exploration_insert

    m, new = 20, np.arange(15, 20)
    mapped = np.linspace(1.0, 0.1, m).astype(np.float32)[:, None]  # content ranks the items 0..19 in order
    readers = np.where(np.arange(m) >= 15, 0, 50)
    cold = ColdModel(model=SimpleNamespace(user_factors_=np.ones((1, 1), np.float32)), encoder=None,
                     features=sp.csr_matrix((m, 1), dtype=np.float32), mapped=mapped, readers=readers,
                     warmth=(readers / (readers + 0.5)).astype(np.float32))
    with override_settings(RECOMMENDATIONS={**COLD, "NEW_ITEM_MAX_READERS": 0}):
        empty = Extension(keys=[], features=sp.csr_matrix((0, 1)), mapped=np.zeros((0, 1)))
        view = ColdView(cold, empty, list(range(m)))
    warm = np.array([[0.9, 0.8, 0.7, 0.6, 0.5] + [0.0] * (m - 5)], dtype=np.float32)
    _, scaled = view.blend(sp.csr_matrix((1, m), dtype=np.float32), warm, [np.arange(m)], users=np.zeros(1, np.int64))
    targets, scores, explored = exploration_insert(view, np.arange(10), np.linspace(1.0, 0.1, 10), scaled[0], 0.1)
    assert set(explored) == {int(new[0])} and explored[int(new[0])] is None and targets[5] == new[0]


@pytest.mark.parametrize(("choice", "epsilon", "greedy"), [("content", 1.0, 10), ("content", 0.4, 10),
                                                          ("readers", 0.4, 12)])
def test_an_exploration_draw_logs_the_probability_of_the_item_it_shows(choice, epsilon, greedy):
    import numpy as np

    from recommendations.build.cold import ExplorationPolicy, exploration_choose

    block, readers = np.array([10, 11, 12, 13]), np.zeros(20)
    readers[12] = 3  # the block's most read item
    policy = ExplorationPolicy(0.1, candidates=4, choice=choice, epsilon=epsilon)
    rng = np.random.default_rng(0)
    draws = [exploration_choose(block, readers, policy, rng) for _ in range(4000)]
    for item in block.tolist():
        expected = epsilon / 4 + (1 - epsilon) * (item == greedy)
        assert all(p == pytest.approx(expected) for i, p in draws if i == item)
        assert sum(i == item for i, _ in draws) / len(draws) == pytest.approx(expected, abs=0.03)
    # Not drawn: the policy's own choice, logged with certainty; one candidate: nothing to log (today's slots).
    assert exploration_choose(block, readers, ExplorationPolicy(0.1, 4, choice), rng) == (greedy, 1.0)
    assert exploration_choose(block[:1], readers, ExplorationPolicy(0.1, 1, choice, 1.0), rng) == (10, None)


EXPLORING = {**COLD, "EXPLORATION_CANDIDATES": 3, "EXPLORATION_EPSILON": 1.0}


@override_settings(RECOMMENDATIONS=EXPLORING)
def test_a_drawn_exploration_pick_is_served_and_recorded_with_its_propensity(world):
    from django.test import RequestFactory

    from recommendations.build.cold import exploration_rng
    from recommendations.impressions import recording
    from recommendations.impressions.pages import served_list
    from recommendations.models import Impression

    new = _unread_items()
    build = services.full_build_run()
    user = world["users"]["space0"]
    stored = [e for ex in UserRecommendation.objects.filter(build=build, user=user).values_list("explanation", flat=True)
              for e in ex if e.get("explore")]
    assert [e["propensity"] for e in stored] == [pytest.approx(1 / 3)]
    assert exploration_rng(build.pk, user.pk).random() == exploration_rng(build.pk, user.pk).random()
    request = RequestFactory().get("/", HTTP_USER_AGENT="Mozilla/5.0 Firefox/130")
    request.user = user
    shown = served_list(request, selectors.recommended_for(user, n=10), surface="home")
    recording.impressions_flush()
    row = Impression.objects.get(recommendation_id=shown.recommendation_id)
    logged = [(key, p) for key, p in zip(row.items, row.propensities) if p is not None]
    assert logged == [(logged[0][0], pytest.approx(1 / 3))]
    assert logged[0][0].split(":")[1] in {str(item.pk) for item in new}
    assert row.items.index(logged[0][0]) == 5


@override_settings(RECOMMENDATIONS=COLD)
def test_plain_exploration_slots_log_no_propensity(world):
    from recommendations.impressions.recording import item_propensities

    _unread_items()
    services.full_build_run()
    picks = selectors.recommended_for(world["users"]["space0"], n=10)
    assert any(p.rec_explore for p in picks) and item_propensities(picks) is None
