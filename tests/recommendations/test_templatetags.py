"""Tests of the template tags in recommendations/templatetags/recommendations.py, on the testapp host."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.template import Context, Template, TemplateSyntaxError

from recommendations import selectors
from recommendations.models import BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.testapp.models import Item


def render(source: str, **context) -> str:
    return Template("{% load recommendations %}" + source).render(Context(context)).strip()


@pytest.fixture
def stored(world):
    """An active build with two picks for space0, neighbours of "Rockets to Mars" and a popular list."""
    items, users = world["items"], world["users"]
    ct = ContentType.objects.get_for_model(Item)
    build = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED)
    rockets = items["Rockets to Mars"]
    because = [{"content_type": ct.pk, "object_id": str(items["Life on the moon"].pk), "title": "Life on the moon"}]
    for rank, name in enumerate(["Rockets to Mars", "Pasta from scratch"], 1):
        UserRecommendation.objects.create(build=build, user=users["space0"], content_type=ct,
                                          object_id=str(items[name].pk), rank=rank, score=1 / rank,
                                          explanation=because if rank == 1 else [])
    for kind, names in (("collaborative", ["Stars and galaxies", "Life on the moon"]),
                        ("content", ["Orbital mechanics for everyone"])):
        for rank, name in enumerate(names, 1):
            SimilarItem.objects.create(build=build, kind=kind, content_type=ct, object_id=str(rockets.pk),
                                       target_content_type=ct, target_object_id=str(items[name].pk),
                                       rank=rank, score=1 / rank)
    for window, names in (("all", ["Bread baking at home", "Slow cooking stews"]), ("recent", ["Slow cooking stews"])):
        for rank, name in enumerate(names, 1):
            PopularItem.objects.create(build=build, window=window, content_type=ct, object_id=str(items[name].pk),
                                       rank=rank, score=10 - rank)
    return {"items": items, "users": users, "build": build}


class TestRecommendedFor:
    def test_lists_picks_best_first_with_because(self, stored):
        out = render("{% recommended_for user limit=2 as recs %}"
                     "{% for r in recs %}{{ r.name }}|{{ r.rec_rank }}|{{ r.rec_because }};{% endfor %}",
                     user=stored["users"]["space0"])
        assert out == "Rockets to Mars|1|Because you read Life on the moon;Pasta from scratch|2|;"

    def test_limit_and_model_label(self, stored):
        out = render('{% recommended_for user model="testapp.item" limit=1 as recs %}{{ recs|length }}:{{ recs.0.name }}',
                     user=stored["users"]["space0"])
        assert out == "1:Rockets to Mars"

    def test_user_without_picks_gets_popular_items(self, stored, django_user_model):
        newcomer = django_user_model.objects.create_user(username="newcomer", password="x")
        out = render("{% recommended_for user limit=2 as recs %}{% for r in recs %}{{ r.name }}/{{ r.rec_source }};{% endfor %}",
                     user=newcomer)
        assert out == "Bread baking at home/popular;Slow cooking stews/popular;"

    def test_anonymous_user_gets_popular_items(self, stored):
        out = render("{% recommended_for user limit=1 as recs %}{{ recs.0.name }}", user=AnonymousUser())
        assert out == "Bread baking at home"

    def test_unknown_model_label_is_a_clear_error(self, stored):
        with pytest.raises(TemplateSyntaxError, match="app_label.ModelName"):
            render('{% recommended_for user model="nope.thing" as recs %}', user=stored["users"]["space0"])

    def test_bad_limit_is_a_clear_error(self, stored):
        with pytest.raises(TemplateSyntaxError, match="limit must be a whole number"):
            render('{% recommended_for user limit="many" as recs %}', user=stored["users"]["space0"])


class TestSimilarItems:
    def test_content_is_the_default_kind(self, stored):
        out = render("{% similar_items obj as items %}{% for i in items %}{{ i.name }};{% endfor %}",
                     obj=stored["items"]["Rockets to Mars"])
        assert out == "Orbital mechanics for everyone;"

    def test_collaborative_with_limit(self, stored):
        out = render('{% similar_items obj kind="collaborative" limit=1 as items %}{% for i in items %}{{ i.name }};{% endfor %}',
                     obj=stored["items"]["Rockets to Mars"])
        assert out == "Stars and galaxies;"

    def test_bad_kind_is_a_clear_error(self, stored):
        with pytest.raises(TemplateSyntaxError, match="kind must be 'content' or 'collaborative'"):
            render('{% similar_items obj kind="social" as items %}', obj=stored["items"]["Rockets to Mars"])

    def test_missing_object_gives_an_empty_list(self, stored):
        assert render("{% similar_items obj as items %}{{ items|length }}", obj=None) == "0"


class TestPopularItems:
    def test_window_all_and_recent(self, stored):
        assert render('{% popular_items model="testapp.Item" limit=2 as items %}{% for i in items %}{{ i.name }};{% endfor %}') \
            == "Bread baking at home;Slow cooking stews;"
        assert render('{% popular_items model="testapp.Item" limit=1 window="recent" as items %}{{ items.0.name }}') \
            == "Slow cooking stews"

    def test_bad_window_is_a_clear_error(self, stored):
        with pytest.raises(TemplateSyntaxError, match="window must be 'all' or 'recent'"):
            render('{% popular_items model="testapp.Item" window="weekly" as items %}')


class TestPredictedStars:
    def test_passes_the_selector_value(self, stored, monkeypatch):
        calls = []
        monkeypatch.setattr(selectors, "predicted_stars", lambda user, obj: calls.append((user, obj)) or 4.2)
        user, obj = stored["users"]["space0"], stored["items"]["Rockets to Mars"]
        assert render("{% predicted_stars user obj as stars %}{{ stars|floatformat:1 }}", user=user, obj=obj) == "4.2"
        assert calls == [(user, obj)]

    def test_none_without_a_rating_model(self, stored):
        out = render("{% predicted_stars user obj as stars %}{% if stars is None %}none{% endif %}",
                     user=stored["users"]["space0"], obj=stored["items"]["Rockets to Mars"])
        assert out == "none"


class TestItemListPartial:
    def test_renders_links_and_because(self, stored, monkeypatch):
        monkeypatch.setattr(Item, "get_absolute_url", lambda self: f"/items/{self.pk}/", raising=False)
        out = render('{% recommended_for user limit=1 as recs %}{% include "recommendations/item_list.html" with items=recs %}',
                     user=stored["users"]["space0"])
        rockets = stored["items"]["Rockets to Mars"]
        assert f'<a href="/items/{rockets.pk}/">Rockets to Mars</a>' in out
        assert "Because you read Life on the moon" in out


class TestTagsDoNotComputeOrImportTheHost:
    def test_module_imports_no_host_app(self):
        import pathlib

        source = (pathlib.Path(selectors.__file__).parent / "templatetags" / "recommendations.py").read_text()
        assert "import articles" not in source and "from articles" not in source and "bre_site" not in source
        assert "services" not in source  # tags read stored rows only
