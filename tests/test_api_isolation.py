"""Isolation tests: reader A can neither see nor change reader B's reads, ratings, marks or picks through the API.

Every operation of the schema is listed in ``COVERED`` with the test that checks it, and a test
fails when an endpoint is added without an isolation check.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from articles.models import Article, Book, NotInterested, Rating, Read
from recommendations.experiments.promote import experiment_create
from recommendations.experiments.validation import ArmSpec
from recommendations.impressions.recording import impressions_flush
from recommendations.models import Attribution, BuildRun, UserRecommendation
from tests.api_lists import ListAPIClient

pytestmark = pytest.mark.django_db

# (path, method) -> what protects it; checked against the schema below.
COVERED = {
    ("/api/reads/", "get"): "own rows only; ?user= of another reader is 404",
    ("/api/reads/", "post"): "writes for the signed-in reader only",
    ("/api/reads/{id}/", "get"): "404 for another reader's read",
    ("/api/reads/{id}/", "patch"): "404 for another reader's read, unchanged",
    ("/api/reads/{id}/", "delete"): "404 for another reader's read, kept",
    ("/api/reads/{id}/beacon/", "post"): "404 for another reader's read, unchanged",
    ("/api/ratings/", "get"): "own rows only",
    ("/api/ratings/", "post"): "rating an item B rated leaves B's rating alone",
    ("/api/ratings/", "put"): "same as post",
    ("/api/ratings/{id}/", "get"): "404 for another reader's rating",
    ("/api/ratings/{id}/", "delete"): "404, kept",
    ("/api/not-interested/", "get"): "own rows only",
    ("/api/not-interested/", "post"): "marks for the signed-in reader only",
    ("/api/not-interested/", "delete"): "takes back only one's own mark",
    ("/api/not-interested/{id}/", "get"): "404 for another reader's mark",
    ("/api/not-interested/{id}/", "delete"): "404, kept",
    ("/api/recommendations/", "get"): "own picks only; ?user= of another reader is 404",
    ("/api/impressions/{recommendation_id}/", "get"): "404 for another reader's list",
    ("/api/impressions/{recommendation_id}/clicks/", "post"): "404 for another reader's list, nothing attributed",
    ("/api/impressions/metrics/", "get"): "staff only",
    ("/api/builds/", "get"): "staff only",
    ("/api/builds/", "post"): "staff only",
    ("/api/builds/{id}/", "get"): "staff only",
    ("/api/experiments/", "get"): "staff only",
    ("/api/experiments/{slug}/results/", "get"): "staff only",
    # Public, per-reader data free:
    ("/api/articles/", "get"): "public catalogue",
    ("/api/articles/{id}/", "get"): "public catalogue",
    ("/api/articles/{id}/similar/", "get"): "public neighbours, no reader data",
    ("/api/books/", "get"): "public catalogue",
    ("/api/books/{id}/", "get"): "public catalogue",
    ("/api/books/{id}/similar/", "get"): "public neighbours, no reader data",
    ("/api/items/{label}/{id}/similar/", "get"): "public neighbours, no reader data",
    ("/api/ping/", "get"): "public",
    ("/api/auth/token/", "post"): "returns only the token of the credentials given",
}


@pytest.fixture
def world():
    User = get_user_model()
    a = User.objects.create_user("reader-a", password="pw-a-123456")
    b = User.objects.create_user("reader-b", password="pw-b-123456")
    staff = User.objects.create_user("editor", password="pw-s-123456", is_staff=True)
    article = Article.objects.create(title="Shared article", slug="shared")
    book = Book.objects.create(title="Shared book")
    picked = Book.objects.create(title="Picked for B")
    art_ct = ContentType.objects.get_for_model(Article)
    book_ct = ContentType.objects.get_for_model(Book)
    read = Read.objects.create(user=b, content_type=art_ct, object_id=article.pk, dwell_seconds=5, progress=0.2)
    rating = Rating.objects.create(user=b, content_type=book_ct, object_id=book.pk, stars=2)
    mark = NotInterested.objects.create(user=b, content_type=art_ct, object_id=article.pk)
    build = BuildRun.objects.create(status="succeeded", is_active=True)
    UserRecommendation.objects.create(build=build, user=b, content_type=book_ct, object_id=str(picked.pk),
                                      rank=1, score=1.0, explanation=[{"content_type": art_ct.pk,
                                                                       "object_id": str(article.pk),
                                                                       "title": "B's secret history"}])
    return {"a": a, "b": b, "staff": staff, "article": article, "book": book, "read": read, "rating": rating,
            "mark": mark, "build": build}


def as_user(user) -> APIClient:
    client = ListAPIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_every_api_operation_has_an_isolation_check():
    schema = ListAPIClient().get("/api/schema/?format=json").json()
    operations = {(path, method) for path, item in schema["paths"].items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    assert operations - set(COVERED) == set(), "add an isolation check for these endpoints"
    assert set(COVERED) - operations == set(), "COVERED lists endpoints that no longer exist"


class TestImpressionsIsolation:
    def _bs_list(self, world) -> str:
        rid = as_user(world["b"]).get("/api/recommendations/").recommendation_id
        impressions_flush()
        return rid

    def test_a_cannot_see_bs_list(self, world):
        rid = self._bs_list(world)
        assert as_user(world["a"]).get(f"/api/impressions/{rid}/").status_code == 404
        assert as_user(None).get(f"/api/impressions/{rid}/").status_code == 404
        mine = as_user(world["b"]).get(f"/api/impressions/{rid}/")
        assert mine.status_code == 200 and mine.json()["items"][0]["id"] == str(UserRecommendation.objects.get().object_id)
        assert as_user(world["staff"]).get(f"/api/impressions/{rid}/").status_code == 200

    def test_a_cannot_attribute_to_bs_list(self, world):
        rid = self._bs_list(world)
        assert as_user(world["a"]).post(f"/api/impressions/{rid}/clicks/", {"position": 1},
                                        format="json").status_code == 404
        impressions_flush()
        assert not Attribution.objects.exists()

    def test_only_staff_read_the_metrics(self, world):
        assert as_user(world["a"]).get("/api/impressions/metrics/").status_code == 403
        assert as_user(world["staff"]).get("/api/impressions/metrics/").status_code == 200

    def test_a_blank_date_in_the_metrics_query_is_a_400(self, world):
        response = as_user(world["staff"]).get("/api/impressions/metrics/", {"since": "", "until": "2026-12-01"})
        assert response.status_code == 400 and "since" in response.json()["errors"]


class TestReadsIsolation:
    def test_a_cannot_see_bs_reads(self, world):
        a = as_user(world["a"])
        read = world["read"]
        assert a.get("/api/reads/").json()["count"] == 0
        assert a.get(f"/api/reads/{read.pk}/").status_code == 404
        assert a.get(f"/api/reads/?user={world['b'].pk}").status_code == 404

    def test_a_cannot_change_bs_reads(self, world):
        a = as_user(world["a"])
        read = world["read"]
        response = a.patch(f"/api/reads/{read.pk}/", {"dwell_seconds": 999, "progress": 1}, format="json")
        assert response.status_code == 404
        assert a.post(f"/api/reads/{read.pk}/beacon/", {"dwell_seconds": 999}, format="json").status_code == 404
        assert a.delete(f"/api/reads/{read.pk}/").status_code == 404
        read.refresh_from_db()
        assert (read.dwell_seconds, read.progress) == (5, 0.2)

    def test_a_new_read_belongs_to_its_writer(self, world):
        response = as_user(world["a"]).post("/api/reads/", {"item_type": "article", "item_id": world["article"].pk,
                                                            "user": world["b"].pk}, format="json")
        assert response.status_code == 201
        assert Read.objects.get(pk=response.json()["id"]).user == world["a"]
        assert Read.objects.filter(user=world["b"]).count() == 1

    def test_staff_can_see_and_change(self, world):
        staff = as_user(world["staff"])
        read = world["read"]
        assert staff.get(f"/api/reads/?user={world['b'].pk}").json()["count"] == 1
        assert staff.get(f"/api/reads/{read.pk}/").json()["user"] == world["b"].pk
        assert staff.patch(f"/api/reads/{read.pk}/", {"progress": 0.5}, format="json").status_code == 200
        assert staff.delete(f"/api/reads/{read.pk}/").status_code == 204

    def test_anonymous_gets_nothing(self, world):
        anon = as_user(None)
        read = world["read"]
        for method, url in [("get", "/api/reads/"), ("get", f"/api/reads/{read.pk}/"),
                            ("patch", f"/api/reads/{read.pk}/"), ("delete", f"/api/reads/{read.pk}/"),
                            ("post", f"/api/reads/{read.pk}/beacon/"), ("post", "/api/reads/")]:
            assert getattr(anon, method)(url, {}, format="json").status_code in (401, 403), (method, url)
        assert Read.objects.count() == 1


class TestRatingsIsolation:
    def test_a_cannot_see_or_delete_bs_rating(self, world):
        a = as_user(world["a"])
        rating = world["rating"]
        assert a.get("/api/ratings/").json()["count"] == 0
        assert a.get(f"/api/ratings/?user={world['b'].pk}").status_code == 404
        assert a.get(f"/api/ratings/{rating.pk}/").status_code == 404
        assert a.delete(f"/api/ratings/{rating.pk}/").status_code == 404
        assert Rating.objects.filter(pk=rating.pk, stars=2).exists()

    @pytest.mark.parametrize("method", ["post", "put"])
    def test_rating_the_same_item_leaves_bs_rating_alone(self, world, method):
        a = as_user(world["a"])
        response = getattr(a, method)("/api/ratings/", {"item_type": "book", "item_id": world["book"].pk,
                                                        "stars": 5}, format="json")
        assert response.status_code == 201
        assert Rating.objects.get(user=world["b"]).stars == 2
        assert Rating.objects.get(user=world["a"]).stars == 5

    def test_staff_can_see_and_delete(self, world):
        staff = as_user(world["staff"])
        assert staff.get(f"/api/ratings/?user={world['b'].pk}").json()["count"] == 1
        assert staff.delete(f"/api/ratings/{world['rating'].pk}/").status_code == 204

    def test_anonymous_gets_nothing(self, world):
        anon = as_user(None)
        for method, url in [("get", "/api/ratings/"), ("post", "/api/ratings/"), ("put", "/api/ratings/"),
                            ("get", f"/api/ratings/{world['rating'].pk}/"),
                            ("delete", f"/api/ratings/{world['rating'].pk}/")]:
            assert getattr(anon, method)(url, {}, format="json").status_code in (401, 403), (method, url)
        assert Rating.objects.count() == 1


class TestNotInterestedIsolation:
    def test_a_cannot_see_or_take_back_bs_mark(self, world):
        a = as_user(world["a"])
        mark = world["mark"]
        assert a.get("/api/not-interested/").json()["count"] == 0
        assert a.get(f"/api/not-interested/?user={world['b'].pk}").status_code == 404
        assert a.get(f"/api/not-interested/{mark.pk}/").status_code == 404
        assert a.delete(f"/api/not-interested/{mark.pk}/").status_code == 404
        assert a.delete(f"/api/not-interested/?item_type=article&item_id={world['article'].pk}").status_code == 204
        assert NotInterested.objects.filter(pk=mark.pk).exists()

    def test_a_mark_belongs_to_its_writer(self, world):
        a = as_user(world["a"])
        assert a.post("/api/not-interested/", {"item_type": "article", "item_id": world["article"].pk},
                      format="json").status_code == 201
        assert NotInterested.objects.filter(user=world["a"]).count() == 1
        assert NotInterested.objects.filter(user=world["b"]).count() == 1

    def test_staff_can_see_and_take_back(self, world):
        staff = as_user(world["staff"])
        assert staff.get(f"/api/not-interested/{world['mark'].pk}/").status_code == 200
        assert staff.delete(f"/api/not-interested/{world['mark'].pk}/").status_code == 204

    def test_anonymous_gets_nothing(self, world):
        anon = as_user(None)
        for method, url in [("get", "/api/not-interested/"), ("post", "/api/not-interested/"),
                            ("delete", "/api/not-interested/?item_type=article&item_id=1"),
                            ("get", f"/api/not-interested/{world['mark'].pk}/"),
                            ("delete", f"/api/not-interested/{world['mark'].pk}/")]:
            assert getattr(anon, method)(url, format="json").status_code in (401, 403), (method, url)
        assert NotInterested.objects.count() == 1


class TestRecommendationsIsolation:
    def test_a_never_sees_bs_picks_or_history(self, world):
        a = as_user(world["a"])
        body = a.get("/api/recommendations/").json()
        assert "B's secret history" not in str(body)
        assert a.get(f"/api/recommendations/?user={world['b'].pk}").status_code == 404

    def test_b_and_staff_see_bs_picks(self, world):
        own = as_user(world["b"]).get("/api/recommendations/").json()
        assert own[0]["because"] == "Because you read B's secret history"
        assert as_user(world["staff"]).get(f"/api/recommendations/?user={world['b'].pk}").json() == own

    def test_anonymous_gets_nothing(self, world):
        assert as_user(None).get("/api/recommendations/").status_code in (401, 403)
        assert as_user(None).get(f"/api/recommendations/?user={world['b'].pk}").status_code in (401, 403)


class TestBuildsAreStaffOnly:
    def test_readers_get_403(self, world):
        for user in (None, world["a"]):
            client = as_user(user)
            assert client.get("/api/builds/").status_code in (401, 403)
            assert client.get(f"/api/builds/{world['build'].pk}/").status_code in (401, 403)
            assert client.post("/api/builds/").status_code in (401, 403)
        assert BuildRun.objects.count() == 1


class TestExperimentsAreStaffOnly:
    def test_readers_get_403_and_staff_200(self, world):
        experiment_create(name="e", slug="e", stop=timezone.now() + timedelta(days=1),
                          arms=[ArmSpec("a", 0.5, True), ArmSpec("b", 0.5)])
        for user in (None, world["a"]):
            client = as_user(user)
            assert client.get("/api/experiments/").status_code in (401, 403)
            assert client.get("/api/experiments/e/results/").status_code in (401, 403)
        staff = as_user(world["staff"])
        assert staff.get("/api/experiments/").status_code == 200
        assert staff.get("/api/experiments/e/results/").status_code == 200


class TestPublicEndpointsCarryNoReaderData:
    def test_similar_and_items_show_no_history(self, world):
        anon = as_user(None)
        for url in [f"/api/articles/{world['article'].pk}/similar/", f"/api/books/{world['book'].pk}/similar/",
                    f"/api/items/articles.book/{world['book'].pk}/similar/?kind=collaborative",
                    "/api/articles/", f"/api/books/{world['book'].pk}/", "/api/ping/"]:
            response = anon.get(url)
            assert response.status_code == 200, url
            assert "B's secret history" not in response.content.decode()
            assert "reader-b" not in response.content.decode()

    def test_token_endpoint_needs_the_password(self, world):
        response = as_user(world["a"]).post("/api/auth/token/", {"username": "reader-b", "password": "x"},
                                            format="json")
        assert response.status_code == 400
        assert "token" not in response.json()
