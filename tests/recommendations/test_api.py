"""Tests of the recommendations app's REST API against the test app's models (no ``articles``)."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recommendations import services
from recommendations.api.views import SimilarItemsListApi
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.api_lists import ListAPIClient
from tests.recommendations.testapp.models import Item, Like, Score

pytestmark = pytest.mark.django_db

# This module is its own URLconf: the app's URLs plus a per-model route, as a host project would add.
urlpatterns = [
    path("api/things/<str:pk>/similar/", SimilarItemsListApi.as_view(item_model="testapp.Item")),
    path("api/", include("recommendations.api.urls")),
]

TEST_RECOMMENDATIONS = {
    "ITEM_MODELS": ["testapp.Item"],
    "INTERACTIONS": [
        {"model": "testapp.Like", "user_field": "user", "item_field": "item", "kind": "read",
         "timestamp_field": "created_at"},
        {"model": "testapp.Score", "user_field": "user", "item_field": "item", "kind": "rating",
         "stars_field": "stars", "timestamp_field": "created_at"},
    ],
    "TEXT_FIELDS": {"testapp.Item": ["name", "description"]},
    "ITEM_FILTERS": {"testapp.Item": {"is_active": True}},
    "CONTENT_ON_SAVE": False,
}


@pytest.fixture(autouse=True)
def host(settings):
    settings.RECOMMENDATIONS = TEST_RECOMMENDATIONS
    settings.ROOT_URLCONF = __name__


@pytest.fixture
def users():
    User = get_user_model()
    return {
        "ann": User.objects.create_user("ann", password="pw"),
        "bob": User.objects.create_user("bob", password="pw"),
        "staff": User.objects.create_user("staff", password="pw", is_staff=True),
    }


def client_for(user) -> APIClient:
    client = ListAPIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def stored(users):
    """An active build with picks for ann, neighbours of item 0 and a popularity list."""
    items = [Item.objects.create(name=f"Item {i}") for i in range(8)]
    ct = ContentType.objects.get_for_model(Item)
    build = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, is_active=True, algorithm="test")
    old = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED, is_active=False, algorithm="old")
    because = [{"content_type": ct.pk, "object_id": str(items[7].pk), "title": items[7].name}]
    UserRecommendation.objects.bulk_create(
        UserRecommendation(build=build, user=users["ann"], content_type=ct, object_id=str(items[i].pk),
                           rank=rank, score=1.0 / rank, explanation=because)
        for rank, i in enumerate([1, 2, 3, 4, 5], 1)
    )
    # Rows of an inactive build must never be served.
    UserRecommendation.objects.create(build=old, user=users["ann"], content_type=ct, object_id=str(items[6].pk),
                                      rank=1, score=99.0)
    for kind, targets in (("content", [2, 3]), ("collaborative", [4, 5, 6])):
        SimilarItem.objects.bulk_create(
            SimilarItem(build=build, kind=kind, content_type=ct, object_id=str(items[0].pk),
                        target_content_type=ct, target_object_id=str(items[t].pk), rank=r, score=1.0 / r)
            for r, t in enumerate(targets, 1)
        )
    PopularItem.objects.bulk_create(
        PopularItem(build=build, window="all", content_type=ct, object_id=str(items[i].pk), rank=r, score=10 - r)
        for r, i in enumerate([6, 5, 4], 1)
    )
    return {"items": items, "build": build, "old": old, "ct": ct}


class TestUserRecommendationsListApi:
    def test_anonymous_is_refused(self, stored):
        response = client_for(None).get("/api/recommendations/")
        assert response.status_code in (401, 403)
        assert response.json()["detail"]

    def test_picks_in_rank_order_with_explanations(self, users, stored):
        items = stored["items"]
        body = client_for(users["ann"]).get("/api/recommendations/").json()
        assert [row["item"]["id"] for row in body][:5] == [str(items[i].pk) for i in [1, 2, 3, 4, 5]]
        assert [row["source"] for row in body] == ["personal"] * 5 + ["popular"]  # topped up with popular
        assert [row["rank"] for row in body] == list(range(1, 7))
        first = body[0]
        assert first["rank"] == 1 and first["score"] == pytest.approx(1.0) and first["source"] == "personal"
        assert first["because"] == "Because you read Item 7"
        assert first["because_items"] == [{"type": "testapp.item", "id": str(items[7].pk), "title": "Item 7"}]
        assert first["explanation"] == [{"content_type": stored["ct"].pk, "object_id": str(items[7].pk),
                                         "title": "Item 7"}]
        assert first["item"] == {"type": "testapp.item", "id": str(items[1].pk), "title": "Item 1", "url": None}

    def test_seen_and_inactive_items_are_left_out(self, users, stored):
        items = stored["items"]
        Like.objects.create(user=users["ann"], item=items[1])
        Score.objects.create(user=users["ann"], item=items[2], stars=4)
        Item.objects.filter(pk=items[3].pk).update(is_active=False)
        ids = [row["item"]["id"] for row in client_for(users["ann"]).get("/api/recommendations/?limit=2").json()]
        assert ids == [str(items[4].pk), str(items[5].pk)]

    def test_limit_and_type(self, users, stored):
        client = client_for(users["ann"])
        assert len(client.get("/api/recommendations/?limit=3").json()) == 3
        assert len(client.get("/api/recommendations/?type=item&limit=2").json()) == 2
        assert len(client.get("/api/recommendations/?type=testapp.item&limit=2").json()) == 2

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "type=book", "user=abc", "user=-1"])
    def test_bad_parameters_are_400(self, users, stored, query):
        response = client_for(users["ann"]).get(f"/api/recommendations/?{query}")
        assert response.status_code == 400
        assert response.json()["detail"]

    def test_cold_reader_gets_popular_items(self, users, stored):
        body = client_for(users["bob"]).get("/api/recommendations/").json()
        assert [row["item"]["id"] for row in body][:3] == [str(stored["items"][i].pk) for i in [6, 5, 4]]
        assert {row["source"] for row in body} == {"popular"}

    def test_staff_may_look_at_a_reader_others_get_404(self, users, stored):
        ann = users["ann"]
        staff_view = client_for(users["staff"]).get(f"/api/recommendations/?user={ann.pk}").json()
        assert staff_view == client_for(ann).get("/api/recommendations/").json()
        assert client_for(users["bob"]).get(f"/api/recommendations/?user={ann.pk}").status_code == 404
        assert client_for(ann).get(f"/api/recommendations/?user={ann.pk}").status_code == 200
        assert client_for(users["staff"]).get("/api/recommendations/?user=987654").status_code == 404

    def test_no_active_build_gives_an_empty_list(self, users):
        assert client_for(users["ann"]).get("/api/recommendations/").json() == []

    def test_query_count_is_fixed(self, users, stored, django_assert_max_num_queries):
        token = Token.objects.create(user=users["ann"])
        client = ListAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        client.get("/api/recommendations/")  # warm Django's content-type cache
        counts = []
        for limit in (1, 3, 5):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(f"/api/recommendations/?limit={limit}&format=json").status_code == 200  # computed
            counts.append(len(ctx.captured_queries))
        assert len(set(counts)) == 1, counts  # independent of the number of picks
        # A limit below the default computes the default list and serves its head: ?limit=10's queries.
        with django_assert_max_num_queries(9):
            client.get("/api/recommendations/?limit=5&format=json")


class TestSimilarItemsListApi:
    def test_content_and_collaborative_neighbours(self, stored):
        items = stored["items"]
        client = client_for(None)
        url = f"/api/items/testapp.item/{items[0].pk}/similar/"
        content = client.get(url).json()
        assert [row["item"]["id"] for row in content] == [str(items[2].pk), str(items[3].pk)]
        assert content[0]["rank"] == 1 and content[0]["score"] == pytest.approx(1.0)
        collab = client.get(url + "?kind=collaborative&limit=2").json()
        assert [row["item"]["id"] for row in collab] == [str(items[4].pk), str(items[5].pk)]

    def test_per_model_route(self, stored):
        items = stored["items"]
        body = client_for(None).get(f"/api/things/{items[0].pk}/similar/?kind=content").json()
        assert [row["item"]["id"] for row in body] == [str(items[2].pk), str(items[3].pk)]

    def test_item_without_neighbours_gives_an_empty_list(self, stored):
        assert client_for(None).get(f"/api/things/{stored['items'][5].pk}/similar/").json() == []

    @pytest.mark.parametrize("url", [
        "/api/things/not-a-uuid/similar/",
        f"/api/things/{uuid.uuid4()}/similar/",
        "/api/items/auth.user/1/similar/",
        "/api/items/nothing/1/similar/",
    ])
    def test_unknown_items_are_404(self, stored, url):
        response = client_for(None).get(url)
        assert response.status_code == 404
        assert response.json()["detail"]

    def test_a_repeated_request_is_served_from_the_cache_with_its_own_list_id(self, stored):
        from recommendations.impressions.recording import impressions_flush
        from recommendations.models import Impression

        items = stored["items"]
        client = ListAPIClient()
        url = f"/api/items/testapp.item/{items[0].pk}/similar/"
        first = client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            again = client.get(url)
        assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]  # the build and generation
        assert again.json() == first.json() and again.recommendation_id != first.recommendation_id
        impressions_flush()
        stored_lists = Impression.objects.filter(recommendation_id__in=[first.recommendation_id,
                                                                         again.recommendation_id])
        ct = ContentType.objects.get_for_model(Item).pk
        assert [row.items for row in stored_lists] == [[f"{ct}:{items[2].pk}", f"{ct}:{items[3].pk}"]] * 2

    def test_changes_show_through_the_cache(self, stored):
        from recommendations import payloads

        items = stored["items"]
        client = ListAPIClient()
        url = f"/api/items/testapp.item/{items[0].pk}/similar/"
        assert [row["item"]["id"] for row in client.get(url).json()] == [str(items[2].pk), str(items[3].pk)]
        items[2].is_active = False
        items[2].save()  # an item saved: the generation moves on
        assert [row["item"]["id"] for row in client.get(url).json()] == [str(items[3].pk)]
        SimilarItem.objects.filter(object_id=str(items[0].pk)).delete()
        assert len(client.get(url).json()) == 1  # rows changed behind the app's back: still the cached list
        payloads.user_payloads_invalidate()  # what a neighbours' refresh or a bulk change calls
        assert client.get(url).json() == []
        items[0].is_active = False
        items[0].save()
        assert client.get(url).status_code == 404

    def test_inactive_item_is_404(self, stored):
        item = stored["items"][0]
        Item.objects.filter(pk=item.pk).update(is_active=False)
        assert client_for(None).get(f"/api/things/{item.pk}/similar/").status_code == 404

    @pytest.mark.parametrize("query", ["kind=popular", "limit=0", "limit=x"])
    def test_bad_parameters_are_400(self, stored, query):
        assert client_for(None).get(f"/api/things/{stored['items'][0].pk}/similar/?{query}").status_code == 400


class TestBuildRunApis:
    def test_staff_only(self, users, stored):
        for user in (None, users["ann"]):
            client = client_for(user)
            assert client.get("/api/builds/").status_code in (401, 403)
            assert client.get(f"/api/builds/{stored['build'].pk}/").status_code in (401, 403)
            assert client.post("/api/builds/").status_code in (401, 403)
        assert BuildRun.objects.count() == 2

    def test_list_and_detail(self, users, stored):
        client = client_for(users["staff"])
        body = client.get("/api/builds/").json()
        assert body["count"] == 2
        assert [b["id"] for b in body["results"]] == [stored["old"].pk, stored["build"].pk]
        detail = client.get(f"/api/builds/{stored['build'].pk}/").json()
        assert detail["is_active"] is True and detail["status"] == "succeeded" and detail["algorithm"] == "test"
        assert client.get("/api/builds/999999/").status_code == 404

    def test_start_returns_202_and_queues_after_commit(self, users, monkeypatch, django_capture_on_commit_callbacks):
        queued = []
        from recommendations import tasks

        monkeypatch.setattr(tasks.full_build_fan_out, "apply_async", lambda args, **options: queued.append(args[0]))
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(users["staff"]).post("/api/builds/")
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "queued"
        assert queued == [body["id"]]
        assert response["Location"].endswith(f"/api/builds/{body['id']}/")
        assert BuildRun.objects.get(pk=body["id"]).triggered_by == "api"

    def test_start_while_running_is_409(self, users):
        BuildLock.objects.create(name=services.FULL_BUILD_LOCK, owner="build:41@host:1",
                                 expires_at=timezone.now() + timezone.timedelta(minutes=5))
        response = client_for(users["staff"]).post("/api/builds/")
        assert response.status_code == 409
        assert "already running" in response.json()["detail"]
        assert not BuildRun.objects.exists()


class TestBrokenItemFilter:
    """``ITEM_FILTERS`` with a lookup the item model lacks (check E016 names it): no 500, one logged error."""

    @pytest.fixture
    def broken(self, settings, stored, monkeypatch):
        from recommendations import selectors

        monkeypatch.setattr(selectors, "_reported_settings", set(), raising=False)
        settings.RECOMMENDATIONS = {**TEST_RECOMMENDATIONS, "ITEM_FILTERS": {"testapp.Item": {"is_published": True}}}
        return stored

    def test_picks_and_neighbours_are_served_empty(self, users, broken, caplog):
        client = client_for(users["ann"])
        for url in ("/api/recommendations/", "/api/recommendations/?limit=3", "/api/recommendations/?type=item"):
            response = client.get(url)
            assert response.status_code == 200 and response.json() == [], url
        # The item itself is not servable under the broken filter: 404 with a message, not a 500.
        response = client_for(None).get(f"/api/things/{broken['items'][0].pk}/similar/")
        assert response.status_code == 404 and response.json()["detail"]
        errors = [r for r in caplog.records if r.levelname == "ERROR" and "is_published" in r.getMessage()]
        assert len(errors) == 1  # logged once, not once per request


class TestSchema:
    def test_documents_the_cited_items_beside_the_text(self):
        from drf_spectacular.generators import SchemaGenerator

        schema = SchemaGenerator(patterns=urlpatterns).get_schema(request=None, public=True)
        output = schema["components"]["schemas"]["RecommendationOutput"]
        assert {"because", "because_items", "explanation"} <= set(output["properties"])
        assert output["properties"]["because_items"]["items"] == {"$ref": "#/components/schemas/CitedItemOutput"}
        assert set(schema["components"]["schemas"]["CitedItemOutput"]["properties"]) == {"type", "id", "title"}
