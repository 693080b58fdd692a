"""Tests of recommendations/selectors.py: stored rows served as host items, filters, rules, fallbacks."""
from __future__ import annotations

import pytest

from recommendations import selectors, services
from recommendations.models import ItemRule
from tests.recommendations.testapp.models import Item, Like


@pytest.fixture
def built(world):
    services.full_build_run()
    return world


class TestRecommendedFor:
    def test_query_count_is_fixed(self, built, django_assert_max_num_queries):
        user = built["users"]["space1"]
        selectors.recommended_for(user, n=3)  # warm ContentType cache
        # space1 has one personal pick, so this path includes both fallbacks (content, popular):
        # picks, history (twice), rules, items, active build, neighbours, titles, items, popular rows, items.
        with django_assert_max_num_queries(12):
            picks = selectors.recommended_for(user, n=3)
        assert len(picks) == 3
        with django_assert_max_num_queries(12):
            assert len(selectors.recommended_for(user, n=6)) == 5  # 8 items, 3 already liked

    def test_seen_between_build_and_refresh_is_hidden(self, built):
        user = built["users"]["space0"]
        assert selectors.recommended_for(user, n=1)[0].name == "Rockets to Mars"
        # Committed interaction, no refresh yet (eager refresh would also hide it): served rows are filtered.
        Like.objects.bulk_create([Like(user=user, item=built["items"]["Rockets to Mars"])])  # no signals
        assert "Rockets to Mars" not in {p.name for p in selectors.recommended_for(user, n=5)}

    def test_ban_hides_and_pin_promotes(self, built):
        user = built["users"]["space0"]
        rockets = built["items"]["Rockets to Mars"]
        services.item_rule_set(obj=rockets, action="ban")
        assert "Rockets to Mars" not in {p.name for p in selectors.recommended_for(user, n=5)}
        services.item_rule_clear(obj=rockets)
        pasta = built["items"]["Pasta from scratch"]
        services.item_rule_set(obj=pasta, action="pin")
        picks = selectors.recommended_for(user, n=5)
        assert "Pasta from scratch" in {p.name for p in picks}
        services.item_rule_clear(obj=pasta)
        assert not ItemRule.objects.exists()

    def test_boost_multiplies_score(self, built):
        user = built["users"]["space0"]
        before = {p.name: p.rec_score for p in selectors.recommended_for(user, n=5)}
        services.item_rule_set(obj=built["items"]["Rockets to Mars"], action="boost", factor=3.0)
        after = {p.name: p.rec_score for p in selectors.recommended_for(user, n=5)}
        assert after["Rockets to Mars"] == pytest.approx(3.0 * before["Rockets to Mars"])

    def test_chains_with_host_queryset(self, built):
        user = built["users"]["space0"]
        qs = selectors.recommended_queryset(user, model=Item, n=5, queryset=Item.objects.exclude(name__startswith="Rockets"))
        assert "Rockets to Mars" not in [i.name for i in qs]
        qs = selectors.recommended_queryset(user, model=Item, n=5)
        first = qs.first()
        assert first.name == "Rockets to Mars" and first.rec_rank == 1 and first.rec_score > 0

    def test_cold_user_gets_content_then_popular(self, built, django_user_model):
        newcomer = django_user_model.objects.create_user(username="fresh", password="x")
        Like.objects.bulk_create([Like(user=newcomer, item=built["items"]["Pasta from scratch"])])
        picks = selectors.recommended_for(newcomer, n=4)
        assert picks[0].rec_source == "content"
        assert picks[0].rec_because == "Because you read Pasta from scratch"
        assert "Pasta from scratch" not in {p.name for p in picks}

    def test_anonymous_gets_popular(self, built):
        from django.contrib.auth.models import AnonymousUser

        picks = selectors.recommended_for(AnonymousUser(), n=3)
        assert len(picks) == 3 and {p.rec_source for p in picks} == {"popular"}

    def test_mmr_reorders_without_losing_items(self, built):
        user = built["users"]["cooking0"]
        plain = selectors.recommended_for(user, n=4, mmr_lambda=0.0)
        diverse = selectors.recommended_for(user, n=4, mmr_lambda=0.9)
        assert len(diverse) == len(plain)
        assert [d.rec_rank for d in diverse] == list(range(1, len(diverse) + 1))


class TestSimilarTo:
    def test_cold_item_falls_back_to_content(self, built):
        new = Item.objects.create(name="Pasta and bread", description="Italian pasta and bread baking.")
        from django.contrib.contenttypes.models import ContentType

        services.item_content_refresh(content_type_id=ContentType.objects.get_for_model(Item).pk, object_id=str(new.pk))
        neighbours = selectors.similar_to(new, kind="collaborative", n=3)
        assert neighbours and all(n.rec_source == "content" for n in neighbours)

    def test_each_kind_reports_its_source(self, built):
        rockets = built["items"]["Rockets to Mars"]
        collaborative = selectors.similar_to(rockets, kind="collaborative", n=3)
        content = selectors.similar_to(rockets, kind="content", n=3)
        assert collaborative and {n.rec_source for n in collaborative} == {"collaborative"}
        assert content and {n.rec_source for n in content} == {"content"}

    def test_unknown_kind_is_refused(self, built):
        with pytest.raises(ValueError, match="kind must be one of"):
            selectors.similar_to(built["items"]["Pasta from scratch"], kind="magic")

    def test_popular_recent_falls_back_to_all_time(self, built):
        items = selectors.popular_items(model=Item, n=8, window="recent")
        assert len(items) == 8


class TestPredictedStars:
    def test_reads_the_build_state_cache_and_never_loads_the_model(self, world):
        from recommendations.build.state import build_state, build_state_forget
        from tests.recommendations.testapp.models import Score

        users, items = list(world["users"].values()), list(world["items"].values())
        for u, user in enumerate(users):
            for i, item in enumerate(items):
                if (u + i) % 3 == 0 and not Score.objects.filter(user=user, item=item).exists():
                    Score.objects.create(user=user, item=item, stars=1 + (u * i) % 5)
        build = services.full_build_run()
        build_state_forget(build.pk)  # as in a web process that never scored a chunk
        stars = selectors.predicted_stars(users[0], items[1])
        assert isinstance(stars, float)
        state = build_state(build.pk)
        assert state.rating_model is not None and not state.model_loaded
        assert selectors.predicted_stars(users[0], items[1]) == stars and build_state(build.pk) is state


class TestBrokenItemFilter:
    """``ITEM_FILTERS`` with a lookup the item model lacks: selectors serve nothing instead of raising."""

    @pytest.fixture
    def broken(self, built, settings, monkeypatch):
        monkeypatch.setattr(selectors, "_reported_settings", set(), raising=False)
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "ITEM_FILTERS": {"testapp.Item": {"is_published": True}}}
        return built

    def test_selectors_and_tags_return_nothing(self, broken):
        from django.template import Context, Template

        user = broken["users"]["space0"]
        assert selectors.recommended_for(user, n=5) == []
        assert list(selectors.recommended_queryset(user, model=Item, n=5)) == []
        assert selectors.similar_to(broken["items"]["Rockets to Mars"], kind="collaborative") == []
        assert selectors.popular_items(model=Item, n=3) == []
        html = Template("{% load recommendations %}{% recommended_for user limit=3 as recs %}"
                        "{% include 'recommendations/item_list.html' with items=recs %}").render(Context({"user": user}))
        assert html.strip() == ""

    def test_a_build_fails_with_a_clear_error_and_the_old_one_stays(self, broken):
        from django.core.exceptions import ImproperlyConfigured

        active = selectors.active_build()
        with pytest.raises(ImproperlyConfigured, match="is_published"):
            services.full_build_run()
        assert selectors.active_build() == active
