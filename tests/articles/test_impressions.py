"""Tests of the site's lists as impressions: a fresh id per view of a cached page, clicks and what follows them."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from articles.models import Book, Read
from recommendations.impressions.recording import impressions_discard, impressions_flush
from recommendations.models import Attribution, Impression, UserRecommendation
from tests.api_lists import ListAPIClient
from tests.articles.test_views import _ct, build, catalog, reader, reader_client  # noqa: F401

LINK = re.compile(r'href="(/[^"?]+)\?rid=([0-9a-f-]{36})&amp;pos=(\d+)"')


def _links(response) -> list[tuple[str, str, int]]:
    html = response.content.decode()
    assert "bre-rid-" not in html and "bre-impression" not in html
    return [(path, rid, int(pos)) for path, rid, pos in LINK.findall(html)]


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the posts queue for after their commit (the attribution events), as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


class TestPageImpressions:
    def test_every_view_of_a_cached_page_records_its_lists_under_fresh_ids(self, reader_client, reader, build):
        views = [_links(reader_client.get(reverse("home"))) for _ in range(3)]
        impressions_flush()
        ids = [{rid for _, rid, _ in links} for links in views]
        assert all(ids) and not ids[0] & ids[1] and not ids[1] & ids[2]
        stored = {str(i.recommendation_id): i for i in Impression.objects.all()}
        assert set(stored) == ids[0] | ids[1] | ids[2]
        home = [i for i in stored.values() if i.surface == "home"]
        assert len(home) == 3 and all(i.user == reader for i in home)
        assert home[0].items[:3] == _pick_keys(build)

    def test_the_links_carry_the_id_and_position_of_the_stored_list(self, reader_client, build):
        links = _links(reader_client.get(reverse("home")))
        impressions_flush()
        books = [(path, rid, pos) for path, rid, pos in links if path.startswith("/books/")]
        assert books
        for path, rid, pos in books:
            impression = Impression.objects.get(recommendation_id=rid)
            ct, oid = impression.items[pos - 1].split(":")
            assert (int(ct), path) == (_ct(Book).pk, f"/books/{oid}/")

    def test_an_anonymous_view_is_recorded_with_its_session_hash_only(self, client, build, catalog):
        session = client.session
        session["seen"] = 1
        session.save()
        client.get(catalog["books"][0].get_absolute_url())
        impressions_flush()
        surfaces = sorted(Impression.objects.values_list("surface", flat=True))
        assert surfaces == ["detail:also-read", "detail:similar"]
        assert {i.session_hash != "" and i.user is None for i in Impression.objects.all()} == {True}

    def test_bots_are_not_recorded(self, build, catalog):
        bot = Client(HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
        assert _links(bot.get(reverse("home"))) or True
        bot.get(catalog["books"][0].get_absolute_url())
        impressions_flush()
        assert not Impression.objects.exists()

    def test_a_revalidated_page_records_nothing(self, build, catalog):
        client = Client()
        first = client.get(reverse("home"))
        again = client.get(reverse("home"), HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304
        impressions_flush()
        assert Impression.objects.count() == len({rid for _, rid, _ in _links(first)})


def _pick_keys(build) -> list[str]:
    rows = UserRecommendation.objects.filter(build=build).order_by("rank").values_list("content_type_id", "object_id")
    return [f"{ct}:{oid}" for ct, oid in rows]


class TestAttribution:
    def _click(self, client, catalog):
        links = _links(client.get(reverse("home")))
        impressions_flush()
        path, rid, pos = next(link for link in links if link[0].startswith("/books/"))
        assert client.get(f"{path}?rid={rid}&pos={pos}").status_code == 200
        impressions_flush()
        return Book.objects.get(pk=path.strip("/").split("/")[-1]), rid, pos

    def test_a_click_and_the_rating_that_follows_are_tied_to_the_list_and_position(self, reader_client, build,
                                                                                  catalog, committed):
        book, rid, pos = self._click(reader_client, catalog)
        with committed():
            reader_client.post(reverse("item-rate", args=["book", book.pk]), {"stars": 4})
        impressions_flush()
        rows = {a.kind: a for a in Attribution.objects.select_related("impression")}
        assert set(rows) >= {"click", "rating"}
        assert {str(a.impression.recommendation_id) for a in rows.values()} == {rid}
        assert rows["click"].position == rows["rating"].position == pos and rows["rating"].value == 4

    def test_a_read_through_and_not_interested_are_attributed(self, reader_client, build, catalog, committed):
        with committed():
            book, rid, pos = self._click(reader_client, catalog)
        read = Read.objects.filter(user__username="reader", object_id=book.pk).latest("pk")
        with committed():
            reader_client.post(reverse("read-beacon", args=[read.pk]), {"dwell_seconds": 60, "progress": 0.9})
            reader_client.post(reverse("item-not-interested", args=["book", book.pk]))
        impressions_flush()
        kinds = set(Attribution.objects.values_list("kind", flat=True))
        assert kinds == {"click", "read", "read_through", "not_interested"}

    def test_what_follows_after_the_window_is_not_attributed(self, reader_client, build, catalog, committed):
        links = _links(reader_client.get(reverse("home")))
        impressions_flush()
        Impression.objects.update(created_at=timezone.now() - timedelta(seconds=120))
        path = next(p for p, _, _ in links if p.startswith("/books/"))
        book = Book.objects.get(pk=path.strip("/").split("/")[-1])
        with override_settings(RECOMMENDATIONS={**_settings(), "ATTRIBUTION_WINDOW_SECONDS": 60}):
            with committed():
                reader_client.post(reverse("item-rate", args=["book", book.pk]), {"stars": 5})
            impressions_flush()
            assert not Attribution.objects.exists()
        impressions_discard()  # the unmatched rating would be tried again (a list may still wait in another process)
        with override_settings(RECOMMENDATIONS={**_settings(), "ATTRIBUTION_WINDOW_SECONDS": 300}):
            with committed():
                reader_client.post(reverse("item-rate", args=["book", book.pk]), {"stars": 4})
            impressions_flush()
            assert list(Attribution.objects.values_list("kind", "value")) == [("rating", 4.0)]

    @pytest.mark.parametrize("query", ["rid=not-a-uuid", "rid=", "rid=12345678-1234-1234-1234-1234567890zz",
                                       "rid=6f1c2e0a-4b7d-4c1e-9a57-0d6c1f1e2b3c&pos=x",
                                       "rid=6f1c2e0a-4b7d-4c1e-9a57-0d6c1f1e2b3c&pos=0"])
    def test_a_broken_recommendation_id_is_a_400_with_a_message(self, reader_client, build, catalog, query):
        response = reader_client.get(f"{catalog['books'][0].get_absolute_url()}?{query}")
        assert response.status_code == 400
        assert "not a valid recommendation id" in response.content.decode() or "position" in response.content.decode().lower()

    def test_a_click_on_another_readers_list_is_not_attributed(self, reader_client, build, catalog,
                                                               django_user_model):
        links = _links(reader_client.get(reverse("home")))
        impressions_flush()
        path, rid, pos = next(link for link in links if link[0].startswith("/books/"))
        other = Client()
        other.force_login(django_user_model.objects.create_user("other"))
        assert other.get(f"{path}?rid={rid}&pos={pos}").status_code == 200
        impressions_flush()
        assert not Attribution.objects.exists()


def _settings():
    from django.conf import settings

    return settings.RECOMMENDATIONS


class TestApiImpressions:
    @pytest.fixture
    def api(self, reader, build):
        client = ListAPIClient()
        client.force_authenticate(reader)
        return client

    def test_every_served_list_is_recorded_stored_body_or_computed(self, api):
        ids = [api.get("/api/recommendations/").recommendation_id for _ in range(3)]
        ids.append(api.get("/api/recommendations/?limit=5").recommendation_id)
        impressions_flush()
        stored = {str(i.recommendation_id): i.surface for i in Impression.objects.all()}
        assert len(set(ids)) == 4 and stored == {rid: "api:recommendations" for rid in ids}

    def test_a_reported_click_is_tied_to_its_list_and_position(self, api, build):
        response = api.get("/api/recommendations/")
        impressions_flush()
        clicked = api.post(f"/api/impressions/{response.recommendation_id}/clicks/", {"position": 2}, format="json")
        assert clicked.status_code == 202
        impressions_flush()
        attribution = Attribution.objects.get()
        assert (attribution.kind, attribution.position) == ("click", 2)
        assert str(attribution.object_id) == response.json()[1]["item"]["id"]

    @pytest.mark.parametrize("rid, body", [("not-a-uuid", {"position": 1}), ("1234", {"position": 1}),
                                           (None, {"position": "x"}), (None, {"position": 0}),
                                           (None, {"position": 99}), (None, {}),
                                           (None, {"item_type": "spaceship", "item_id": "1"})])
    def test_broken_input_is_a_400_with_a_message(self, api, rid, body):
        served = api.get("/api/recommendations/").recommendation_id
        response = api.post(f"/api/impressions/{rid or served}/clicks/", body, format="json")
        assert response.status_code == 400 and response.json()
        assert api.get("/api/impressions/not-a-uuid/").status_code == 400

    def test_a_reader_reads_their_own_list(self, api):
        rid = api.get("/api/recommendations/").recommendation_id
        body = api.get(f"/api/impressions/{rid}/").json()
        assert body["surface"] == "api:recommendations" and body["items"][0]["position"] == 1
