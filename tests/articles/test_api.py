"""Tests of the site's REST API: items, reads, ratings, "not interested", errors, throttles, schema and docs."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.throttling import ScopedRateThrottle

from articles.models import Article, Book, NotInterested, Rating, Read, Tag
from tests.api_lists import ListAPIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    return get_user_model().objects.create_user("reader", password="pw-reader-123")


@pytest.fixture
def api(reader):
    client = ListAPIClient()
    client.force_authenticate(reader)
    return client


@pytest.fixture
def anon():
    return ListAPIClient()


@pytest.fixture
def catalogue():
    python = Tag.objects.create(name="Python", slug="python")
    scifi = Tag.objects.create(name="Science fiction", slug="sci-fi")
    now = timezone.now()
    a1 = Article.objects.create(title="Deep learning in Python", slug="deep-python", summary="Neural nets",
                                author="Ada", body="word " * 500, published_at=now)
    a2 = Article.objects.create(title="Cooking with data", slug="cooking", summary="Recipes", author="Bob",
                                published_at=now - timezone.timedelta(days=3))
    hidden = Article.objects.create(title="Draft", slug="draft", is_published=False)
    a1.tags.add(python)
    b1 = Book.objects.create(title="Dune", authors="Frank Herbert", year=1965, isbn="0441013597",
                             description="Spice.")
    b2 = Book.objects.create(title="Emma", authors="Jane Austen", year=1815)
    b1.tags.add(scifi)
    return {"a1": a1, "a2": a2, "hidden": hidden, "b1": b1, "b2": b2}


def _error(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str)
    return body


class TestItemsApi:
    def test_article_list_is_paginated_newest_first_and_hides_unpublished(self, anon, catalogue):
        body = anon.get("/api/articles/").json()
        assert body["count"] == 2
        assert [a["slug"] for a in body["results"]] == ["deep-python", "cooking"]
        first = body["results"][0]
        assert first["type"] == "article" and first["tags"] == [{"name": "Python", "slug": "python"}]
        assert first["url"] == "/articles/deep-python/"
        assert first["reading_minutes"] == 3
        assert "body" not in first

    def test_article_filters(self, anon, catalogue):
        assert [a["slug"] for a in anon.get("/api/articles/?search=neural").json()["results"]] == ["deep-python"]
        assert [a["slug"] for a in anon.get("/api/articles/?tag=python").json()["results"]] == ["deep-python"]
        assert [a["slug"] for a in anon.get("/api/articles/?author=bob").json()["results"]] == ["cooking"]
        assert anon.get("/api/articles/?search=nothing-like-this").json()["count"] == 0
        titles = [a["title"] for a in anon.get("/api/articles/?ordering=title").json()["results"]]
        assert titles == sorted(titles)

    def test_article_detail_has_body_and_unpublished_is_404(self, anon, catalogue):
        body = anon.get(f"/api/articles/{catalogue['a1'].pk}/").json()
        assert body["body"].startswith("word")
        _error(anon.get(f"/api/articles/{catalogue['hidden'].pk}/"), 404)
        _error(anon.get("/api/articles/99999999999999999999999/"), 404)

    def test_book_list_filters_and_detail(self, anon, catalogue):
        body = anon.get("/api/books/").json()
        assert [b["title"] for b in body["results"]] == ["Dune", "Emma"]
        assert [b["title"] for b in anon.get("/api/books/?year=1815").json()["results"]] == ["Emma"]
        assert [b["title"] for b in anon.get("/api/books/?year_min=1900").json()["results"]] == ["Dune"]
        assert [b["title"] for b in anon.get("/api/books/?search=austen").json()["results"]] == ["Emma"]
        assert [b["title"] for b in anon.get("/api/books/?search=0441013597").json()["results"]] == ["Dune"]
        assert [b["title"] for b in anon.get("/api/books/?tag=sci-fi").json()["results"]] == ["Dune"]
        detail = anon.get(f"/api/books/{catalogue['b1'].pk}/").json()
        assert detail["description"] == "Spice." and detail["authors"] == "Frank Herbert"

    def test_bad_filters_are_400(self, anon, catalogue):
        body = _error(anon.get("/api/books/?year=abc"), 400)
        assert "year" in body["errors"]
        _error(anon.get("/api/articles/?search=" + "x" * 5000), 400)
        _error(anon.get("/api/articles/?published_after=yesterday"), 400)
        _error(anon.get("/api/articles/?page=999"), 404)

    def test_items_are_read_only(self, api, catalogue):
        _error(api.post("/api/articles/", {"title": "x"}, format="json"), 405)
        _error(api.delete(f"/api/books/{catalogue['b1'].pk}/"), 405)


class TestReadsApi:
    def test_record_a_read(self, api, reader, catalogue):
        response = api.post("/api/reads/", {"item_type": "article", "item_id": catalogue["a1"].pk,
                                            "dwell_seconds": 12.5, "progress": 0.4}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["item_type"] == "article" and body["item_id"] == catalogue["a1"].pk
        assert body["item"]["title"] == "Deep learning in Python"
        read = Read.objects.get(pk=body["id"])
        assert read.user == reader and read.dwell_seconds == 12.5 and read.progress == 0.4

    def test_dwell_and_progress_default_to_zero(self, api, catalogue):
        body = api.post("/api/reads/", {"item_type": "book", "item_id": catalogue["b1"].pk}, format="json").json()
        assert body["dwell_seconds"] == 0 and body["progress"] == 0

    @pytest.mark.parametrize(
        "payload, field",
        [
            ({"item_type": "article", "item_id": 1, "dwell_seconds": -1}, "dwell_seconds"),
            ({"item_type": "article", "item_id": 1, "progress": 1.5}, "progress"),
            ({"item_type": "article", "item_id": 1, "dwell_seconds": "NaN"}, "dwell_seconds"),
            ({"item_type": "article", "item_id": 1, "dwell_seconds": "long"}, "dwell_seconds"),
            ({"item_type": "article", "item_id": 1, "dwell_seconds": True}, "dwell_seconds"),
            ({"item_type": "article", "item_id": 987654}, "item_id"),
            ({"item_type": "article", "item_id": "one"}, "item_id"),
            ({"item_type": "article", "item_id": 2**70}, "item_id"),
            ({"item_type": "movie", "item_id": 1}, "item_type"),
            ({"item_type": "é" * 10000, "item_id": 1}, "item_type"),
            ({"item_id": 1}, "item_type"),
        ],
    )
    def test_bad_input_is_400_and_stores_nothing(self, api, catalogue, payload, field):
        payload = {k: (catalogue["a1"].pk if k == "item_id" and v == 1 else v) for k, v in payload.items()}
        body = _error(api.post("/api/reads/", payload, format="json"), 400)
        assert field in body["errors"], body
        assert field in body["detail"] or body["errors"][field][0] in body["detail"]
        assert not Read.objects.exists()

    def test_messages_say_what_is_wrong(self, api, catalogue):
        body = _error(api.post("/api/reads/", {"item_type": "article", "item_id": catalogue["a1"].pk,
                                               "dwell_seconds": -2}, format="json"), 400)
        assert body["errors"] == {"dwell_seconds": ["dwell_seconds cannot be negative."]}
        assert body["detail"] == "Invalid input. dwell_seconds: dwell_seconds cannot be negative."
        body = _error(api.post("/api/reads/", {"item_type": "article", "item_id": catalogue["a1"].pk,
                                               "progress": 3}, format="json"), 400)
        assert body["errors"] == {"progress": ["progress must be between 0 and 1."]}

    def test_unpublished_item_is_unknown(self, api, catalogue):
        body = _error(api.post("/api/reads/", {"item_type": "article", "item_id": catalogue["hidden"].pk},
                               format="json"), 400)
        assert "There is no article" in body["errors"]["item_id"][0]

    def test_malformed_json_is_400(self, api):
        response = api.generic("POST", "/api/reads/", "{not json", content_type="application/json")
        _error(response, 400)

    def test_oversized_body_is_413(self, api, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = api.generic("POST", "/api/reads/", '{"item_type": "' + "a" * 5000 + '"}',
                               content_type="application/json")
        _error(response, 413)
        assert not Read.objects.exists()

    def test_anonymous_cannot_write(self, anon, catalogue):
        response = anon.post("/api/reads/", {"item_type": "article", "item_id": catalogue["a1"].pk}, format="json")
        body = _error(response, 401)
        assert response["WWW-Authenticate"] == "Token"
        assert body["code"] == "not_authenticated"
        assert not Read.objects.exists()

    def test_update_only_grows(self, api, reader, catalogue):
        read = Read.objects.create(user=reader, content_type_id=_ct(Article), object_id=catalogue["a1"].pk,
                                   dwell_seconds=30, progress=0.5)
        body = api.patch(f"/api/reads/{read.pk}/", {"dwell_seconds": 10, "progress": 0.9}, format="json").json()
        assert body["dwell_seconds"] == 30 and body["progress"] == 0.9
        _error(api.patch(f"/api/reads/{read.pk}/", {"progress": 2}, format="json"), 400)
        _error(api.patch(f"/api/reads/{read.pk}/", {}, format="json"), 400)
        read.refresh_from_db()
        assert read.progress == 0.9

    def test_beacon_accepts_json_and_form_data(self, api, reader, catalogue):
        read = Read.objects.create(user=reader, content_type_id=_ct(Article), object_id=catalogue["a1"].pk)
        assert api.post(f"/api/reads/{read.pk}/beacon/", {"dwell_seconds": 5}, format="json").status_code == 204
        assert api.post(f"/api/reads/{read.pk}/beacon/", {"dwell_seconds": "42", "progress": "0.7"}).status_code == 204
        read.refresh_from_db()
        assert (read.dwell_seconds, read.progress) == (42, 0.7)
        _error(api.post(f"/api/reads/{read.pk}/beacon/", {"dwell_seconds": "-3"}), 400)

    def test_beacon_with_a_session_needs_the_csrf_token(self, reader, catalogue):
        read = Read.objects.create(user=reader, content_type_id=_ct(Article), object_id=catalogue["a1"].pk)
        client = Client(enforce_csrf_checks=True)
        client.force_login(reader)
        response = client.post(f"/api/reads/{read.pk}/beacon/", {"dwell_seconds": "9"})
        _error(response, 403)
        client.get("/api/ping/")  # any page; the token comes from the CSRF cookie set by the site
        from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

        secret = _get_new_csrf_string()
        client.cookies["csrftoken"] = secret
        response = client.post(f"/api/reads/{read.pk}/beacon/",
                               {"dwell_seconds": "9", "csrfmiddlewaretoken": _mask_cipher_secret(secret)})
        assert response.status_code == 204, response.content
        read.refresh_from_db()
        assert read.dwell_seconds == 9

    def test_list_and_delete_own_reads(self, api, reader, catalogue):
        Read.objects.create(user=reader, content_type_id=_ct(Book), object_id=catalogue["b1"].pk)
        mine = Read.objects.create(user=reader, content_type_id=_ct(Article), object_id=catalogue["a1"].pk)
        body = api.get("/api/reads/").json()
        assert body["count"] == 2 and body["results"][0]["id"] == mine.pk
        assert api.get(f"/api/reads/{mine.pk}/").json()["item"]["type"] == "article"
        assert api.delete(f"/api/reads/{mine.pk}/").status_code == 204
        assert not Read.objects.filter(pk=mine.pk).exists()
        _error(api.delete(f"/api/reads/{mine.pk}/"), 404)


class TestRatingsApi:
    def test_rate_then_rate_again_updates(self, api, reader, catalogue):
        payload = {"item_type": "book", "item_id": catalogue["b1"].pk, "stars": 4}
        first = api.post("/api/ratings/", payload, format="json")
        assert first.status_code == 201, first.content
        again = api.put("/api/ratings/", {**payload, "stars": 2}, format="json")
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"] and again.json()["stars"] == 2
        assert Rating.objects.get(user=reader).stars == 2
        assert Rating.objects.count() == 1

    @pytest.mark.parametrize("stars", [0, 6, -1, 2.5, "five", None, True, "", 10**30])
    def test_stars_outside_1_to_5_are_400(self, api, catalogue, stars):
        body = _error(api.post("/api/ratings/", {"item_type": "book", "item_id": catalogue["b1"].pk,
                                                 "stars": stars}, format="json"), 400)
        if stars is not None and stars != "":
            assert body["errors"]["stars"] == ["stars must be a whole number from 1 to 5."]
        assert "stars" in body["detail"]
        assert not Rating.objects.exists()

    def test_bad_rating_does_not_change_an_existing_one(self, api, reader, catalogue):
        api.post("/api/ratings/", {"item_type": "book", "item_id": catalogue["b1"].pk, "stars": 3}, format="json")
        _error(api.put("/api/ratings/", {"item_type": "book", "item_id": catalogue["b1"].pk, "stars": 9},
                       format="json"), 400)
        assert Rating.objects.get(user=reader).stars == 3

    def test_unknown_item_is_400(self, api):
        response = api.post("/api/ratings/", {"item_type": "book", "item_id": 424242, "stars": 3}, format="json")
        body = _error(response, 400)
        assert "There is no book with id 424242" in body["detail"]

    def test_list_show_and_delete(self, api, reader, catalogue):
        api.post("/api/ratings/", {"item_type": "book", "item_id": catalogue["b1"].pk, "stars": 5}, format="json")
        api.post("/api/ratings/", {"item_type": "article", "item_id": catalogue["a1"].pk, "stars": 1}, format="json")
        body = api.get("/api/ratings/").json()
        assert body["count"] == 2
        rating = Rating.objects.get(user=reader, stars=5)
        assert api.get(f"/api/ratings/{rating.pk}/").json()["item"]["title"] == "Dune"
        assert api.delete(f"/api/ratings/{rating.pk}/").status_code == 204
        assert Rating.objects.filter(user=reader).count() == 1

    def test_form_data_works_too(self, api, catalogue):
        response = api.post("/api/ratings/", {"item_type": "book", "item_id": str(catalogue["b2"].pk), "stars": "3"})
        assert response.status_code == 201


class TestNotInterestedApi:
    def test_mark_list_and_take_back(self, api, reader, catalogue):
        payload = {"item_type": "book", "item_id": catalogue["b2"].pk}
        response = api.post("/api/not-interested/", payload, format="json")
        assert response.status_code == 201
        assert api.post("/api/not-interested/", payload, format="json").status_code == 201  # idempotent
        assert NotInterested.objects.filter(user=reader).count() == 1
        assert api.get("/api/not-interested/").json()["count"] == 1
        assert api.delete(f"/api/not-interested/?item_type=book&item_id={catalogue['b2'].pk}").status_code == 204
        assert not NotInterested.objects.exists()

    def test_take_back_by_id(self, api, reader, catalogue):
        mark = api.post("/api/not-interested/", {"item_type": "article", "item_id": catalogue["a2"].pk},
                        format="json").json()
        assert api.get(f"/api/not-interested/{mark['id']}/").json()["item_id"] == catalogue["a2"].pk
        assert api.delete(f"/api/not-interested/{mark['id']}/").status_code == 204
        assert not NotInterested.objects.exists()

    def test_bad_input(self, api, catalogue):
        _error(api.post("/api/not-interested/", {"item_type": "book", "item_id": -4}, format="json"), 400)
        _error(api.delete("/api/not-interested/?item_type=book"), 400)
        assert not NotInterested.objects.exists()


class TestErrorsAreJson:
    def test_unknown_api_url_is_json_404(self, anon):
        body = _error(anon.get("/api/no-such-thing/"), 404)
        assert body["code"] == "not_found"
        _error(anon.get("/api/articles"), 404)  # no slash redirect for API clients

    def test_method_not_allowed_is_json(self, api):
        body = _error(api.delete("/api/ping/"), 405)
        assert body["code"] == "method_not_allowed"

    def test_server_error_under_api_is_json(self, rf):
        from articles.api.exceptions import server_error

        response = server_error(rf.get("/api/recommendations/"))
        assert response.status_code == 500 and response["Content-Type"] == "application/json"
        assert server_error(rf.get("/")).status_code == 500

    def test_unhandled_exception_in_a_view_becomes_json_500(self, monkeypatch, reader):
        from articles.api import views

        def boom(**kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(views.selectors, "user_reads", boom)
        client = ListAPIClient(raise_request_exception=False)
        client.force_authenticate(reader)
        _error(client.get("/api/reads/"), 500)


class TestThrottles:
    def test_writes_are_throttled_reads_are_not(self, api, catalogue, monkeypatch):
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"writes": "2/minute", "beacon": "2/minute"})
        cache.clear()
        payload = {"item_type": "book", "item_id": catalogue["b1"].pk, "stars": 4}
        assert [api.post("/api/ratings/", payload, format="json").status_code for _ in range(2)] == [201, 200]
        body = _error(api.post("/api/ratings/", payload, format="json"), 429)
        assert body["code"] == "throttled"
        assert api.get("/api/ratings/").status_code == 200
        cache.clear()

    def test_token_endpoint_is_throttled(self, reader, monkeypatch):
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"writes": "3/minute", "beacon": "3/minute"})
        cache.clear()
        client = ListAPIClient()
        codes = [client.post("/api/auth/token/", {"username": "reader", "password": f"guess-{i}"}, format="json")
                 .status_code for i in range(4)]
        assert codes == [400, 400, 400, 429]
        cache.clear()


class TestTokenAndPing:
    def test_obtain_and_use_a_token(self, reader, catalogue):
        client = ListAPIClient()
        response = client.post("/api/auth/token/", {"username": "reader", "password": "pw-reader-123"}, format="json")
        assert response.status_code == 200
        token = response.json()["token"]
        assert Token.objects.get(user=reader).key == token
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get("/api/reads/").status_code == 200
        _error(ListAPIClient().post("/api/auth/token/", {"username": "reader", "password": "nope"}, format="json"), 400)
        bad = ListAPIClient()
        bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        assert bad.get("/api/reads/").status_code in (401, 403)

    def test_ping(self, anon):
        assert anon.get("/api/ping/").json() == {"status": "ok"}


class TestSchemaAndDocs:
    def test_schema_lists_the_endpoints(self, anon):
        response = anon.get("/api/schema/?format=json")
        assert response.status_code == 200
        schema = response.json()
        paths = schema["paths"]
        for path in ["/api/articles/", "/api/articles/{id}/similar/", "/api/books/{id}/similar/",
                     "/api/recommendations/", "/api/reads/{id}/beacon/", "/api/ratings/", "/api/not-interested/",
                     "/api/builds/", "/api/builds/{id}/", "/api/ping/", "/api/auth/token/"]:
            assert path in paths, path
        assert "Error" in schema["components"]["schemas"]
        assert "400" in paths["/api/ratings/"]["post"]["responses"]
        assert "429" in paths["/api/ratings/"]["post"]["responses"]
        assert set(paths["/api/ratings/"]["post"]["responses"]) >= {"200", "201"}

    def test_docs_page_is_served_without_a_cdn(self, anon):
        response = anon.get("/api/docs/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "swagger-ui" in html and "cdn." not in html and "/static/drf_spectacular_sidecar/" in html


def _ct(model) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model).pk


class TestRecommendationsQueryCount:
    """The site's picks endpoint costs a fixed number of queries, however many picks and however long the history."""

    def test_fixed_number_of_queries(self, reader, catalogue, django_assert_max_num_queries):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from recommendations.models import BuildRun, UserRecommendation

        build = BuildRun.objects.create(status="succeeded", is_active=True)
        extra = [Book.objects.create(title=f"Extra {i}") for i in range(12)]
        for rank, obj in enumerate([catalogue["a2"], catalogue["b2"], *extra], 1):
            UserRecommendation.objects.create(build=build, user=reader, content_type_id=_ct(type(obj)),
                                              object_id=str(obj.pk), rank=rank, score=1 / rank)
        for obj in (catalogue["a1"], catalogue["b1"]):
            Read.objects.create(user=reader, content_type_id=_ct(type(obj)), object_id=obj.pk)
        Rating.objects.create(user=reader, content_type_id=_ct(Book), object_id=catalogue["b1"].pk, stars=4)
        token = Token.objects.create(user=reader)
        client = ListAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        client.get("/api/recommendations/")  # warm the content-type cache
        counts = []
        for limit in (2, 6, 12):
            with CaptureQueriesContext(connection) as ctx:
                body = client.get(f"/api/recommendations/?limit={limit}&format=json").json()  # computed
            assert len(body) == limit
            counts.append(len(ctx.captured_queries))
        assert len(set(counts)) == 1, counts
        # token, picks, the reader's history (reads, ratings, marks), editor rules, one per item model
        with django_assert_max_num_queries(8):
            client.get("/api/recommendations/?limit=12&format=json")

    def test_default_request_is_one_query(self, reader, catalogue, django_assert_num_queries):
        from recommendations.models import BuildRun, UserRecommendation

        build = BuildRun.objects.create(status="succeeded", is_active=True)
        for rank, obj in enumerate([catalogue["a2"], catalogue["b2"]], 1):
            UserRecommendation.objects.create(build=build, user=reader, content_type_id=_ct(type(obj)),
                                              object_id=str(obj.pk), rank=rank, score=1 / rank)
        client = ListAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
        first = client.get("/api/recommendations/")  # computes and stores the reader's body
        with django_assert_num_queries(1):  # the token, its user and the stored body
            again = client.get("/api/recommendations/")
        assert again.status_code == 200
        assert again["Content-Type"] == "application/json"
        assert again.content == first.content == client.get("/api/recommendations/?limit=10&format=json").content
        assert [row["item"]["title"] for row in again.json()] == ["Cooking with data", "Emma"]


class TestTokenLookupWithStoredPicks:
    """The default request reads the token and the stored body together; whatever that lookup does not settle
    is answered as DRF answers it."""

    @pytest.fixture
    def built(self, reader, catalogue):
        from recommendations.models import BuildRun, UserRecommendation

        build = BuildRun.objects.create(status="succeeded", is_active=True)
        for rank, obj in enumerate([catalogue["a2"], catalogue["b2"]], 1):
            UserRecommendation.objects.create(build=build, user=reader, content_type_id=_ct(type(obj)),
                                              object_id=str(obj.pk), rank=rank, score=1 / rank)
        return build

    @staticmethod
    def _client(header):
        client = ListAPIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        return client

    @pytest.mark.parametrize("header, message", [
        ("Token not-a-key", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token two words", "Invalid token header. Token string should not contain spaces."),
    ])
    def test_bad_tokens_get_drf_answers(self, built, header, message):
        response = self._client(header).get("/api/recommendations/")
        assert _error(response, 401)["detail"] == message
        assert response["WWW-Authenticate"] == "Token"

    def test_inactive_reader_is_refused_even_with_a_stored_body(self, reader, built):
        client = self._client(f"Token {Token.objects.create(user=reader).key}")
        assert client.get("/api/recommendations/").status_code == 200  # stores the body
        get_user_model().objects.filter(pk=reader.pk).update(is_active=False)
        assert _error(client.get("/api/recommendations/"), 401)["detail"] == "User inactive or deleted."

    def test_stale_body_is_not_served(self, reader, catalogue, built, django_assert_num_queries):
        from recommendations.models import BuildRun, UserRecommendation

        client = self._client(f"Token {Token.objects.create(user=reader).key}")
        first = client.get("/api/recommendations/").json()
        assert first[0]["item"]["title"] == "Cooking with data"
        newer = BuildRun.objects.create(status="succeeded")
        UserRecommendation.objects.create(build=newer, user=reader, content_type_id=_ct(Book),
                                          object_id=str(catalogue["b1"].pk), rank=1, score=1.0)
        # Switched without saving a model (no signal bumps the generation): the build id alone must tell.
        BuildRun.objects.filter(pk=built.pk).update(is_active=False)
        BuildRun.objects.filter(pk=newer.pk).update(is_active=True)
        again = client.get("/api/recommendations/")
        assert [row["item"]["title"] for row in again.json()] == ["Dune"]
        with django_assert_num_queries(1):
            assert client.get("/api/recommendations/").content == again.content

    def test_body_of_an_older_generation_is_not_served(self, reader, catalogue, built):
        from recommendations.models import UserRecommendation
        from recommendations.payloads import user_payloads_invalidate

        client = self._client(f"Token {Token.objects.create(user=reader).key}")
        assert client.get("/api/recommendations/").json()[0]["item"]["title"] == "Cooking with data"
        UserRecommendation.objects.filter(content_type_id=_ct(Article), object_id=str(catalogue["a2"].pk)).delete()
        assert client.get("/api/recommendations/").json()[0]["item"]["title"] == "Cooking with data"
        user_payloads_invalidate()
        assert [row["item"]["title"] for row in client.get("/api/recommendations/").json()] == ["Emma"]

    def test_body_of_other_serving_settings_is_not_served(self, reader, built, settings):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = self._client(f"Token {Token.objects.create(user=reader).key}")
        first = client.get("/api/recommendations/")
        settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "MMR_LAMBDA": 0.5}
        with CaptureQueriesContext(connection) as ctx:
            again = client.get("/api/recommendations/")
        assert len(ctx.captured_queries) > 2  # computed and stored again, not the other setting's body
        assert again.content == first.content  # (MMR changes nothing with two picks)
        with CaptureQueriesContext(connection) as ctx:
            client.get("/api/recommendations/")
        assert len(ctx.captured_queries) == 1

    def test_other_readers_body_is_never_served(self, reader, catalogue, built):
        other = get_user_model().objects.create_user("other", password="pw-other-123")
        mine = self._client(f"Token {Token.objects.create(user=reader).key}")
        theirs = self._client(f"Token {Token.objects.create(user=other).key}")
        assert mine.get("/api/recommendations/").json()[0]["item"]["title"] == "Cooking with data"
        assert "Cooking with data" not in [row["item"]["title"] for row in theirs.get("/api/recommendations/").json()]

    def test_other_authenticators_first_take_the_usual_path(self, reader, built, monkeypatch,
                                                            django_assert_num_queries):
        from rest_framework.authentication import SessionAuthentication

        from recommendations.api.authentication import TokenAuthentication
        from recommendations.api.views import UserRecommendationsListApi

        monkeypatch.setattr(UserRecommendationsListApi, "authentication_classes",
                            [SessionAuthentication, TokenAuthentication])
        client = self._client(f"Token {Token.objects.create(user=reader).key}")
        first = client.get("/api/recommendations/")
        with django_assert_num_queries(2):  # the token with its user, then the stored body
            assert client.get("/api/recommendations/").content == first.content


class TestStoredPicksFollowTheReader:
    """Reads, ratings and "not interested" marks sent through the API hide the item from the next default request."""

    @pytest.mark.parametrize("auth", ["forced", "token"])
    @pytest.mark.parametrize("action", ["read", "rating", "not_interested"])
    def test_item_leaves_the_stored_picks(self, reader, catalogue, action, auth):
        from recommendations.models import BuildRun, UserRecommendation

        build = BuildRun.objects.create(status="succeeded", is_active=True)
        for rank, obj in enumerate([catalogue["b2"], catalogue["a2"]], 1):
            UserRecommendation.objects.create(build=build, user=reader, content_type_id=_ct(type(obj)),
                                              object_id=str(obj.pk), rank=rank, score=1 / rank)
        api = ListAPIClient()
        if auth == "forced":
            api.force_authenticate(reader)
        else:  # the token lookup reads the stored body too
            api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
        book = ("book", str(catalogue["b2"].pk))
        before = api.get("/api/recommendations/").json()
        assert (before[0]["item"]["type"], before[0]["item"]["id"]) == book
        item = {"item_type": "book", "item_id": catalogue["b2"].pk}
        path = {"read": "/api/reads/", "rating": "/api/ratings/", "not_interested": "/api/not-interested/"}[action]
        payload = {**item, "stars": 5} if action == "rating" else item
        assert api.post(path, payload, format="json").status_code in (200, 201)
        after = api.get("/api/recommendations/")
        assert book not in [(row["item"]["type"], row["item"]["id"]) for row in after.json()]
        assert after.content == api.get("/api/recommendations/?limit=10&format=json").content
