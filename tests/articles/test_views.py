"""Tests of the site's pages and their JSON endpoints (articles/views.py), on stored recommendation rows.

The rows of an active build are created directly, so these tests do not depend on the build pipeline.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import Article, Book, NotInterested, Rating, Read, Tag
from recommendations.models import BuildRun, PopularItem, SimilarItem, UserRecommendation

# Uncached (tests/articles/test_page_cache.py counts the cached pages): session, user, the page cache's
# generations, history checks, picks (rows, seen items, rules, items) and two popular lists.
HOME_MAX_QUERIES = 25
# Uncached: session, user, the item with the reader's rating, mark and read, the generations, tags, two
# neighbour lists and the predicted stars.
DETAIL_MAX_QUERIES = 20


@pytest.fixture
def catalog(db):
    fiction = Tag.objects.create(name="Fiction", slug="fiction")
    science = Tag.objects.create(name="Science", slug="science")
    books = []
    for i in range(8):
        book = Book.objects.create(title=f"Book {i}", authors=f"Author {i}", year=2000 + i,
                                   description=f"The story number {i}.", cover_url=f"https://example.invalid/{i}.jpg")
        book.tags.add(fiction if i % 2 == 0 else science)
        books.append(book)
    articles = [
        Article.objects.create(title=f"Article {i}", slug=f"article-{i}", summary=f"About topic {i}.",
                               body="word " * 300, author=f"Writer {i}")
        for i in range(6)
    ]
    return {"books": books, "articles": articles, "tags": {"fiction": fiction, "science": science}}


def _ct(model) -> ContentType:
    return ContentType.objects.get_for_model(model)


@pytest.fixture
def reader(django_user_model, catalog):
    """A reader with history: read Book 0 and Article 0, rated Book 1."""
    user = django_user_model.objects.create_user(username="reader", password="pw-reader-1")
    books, articles = catalog["books"], catalog["articles"]
    Read.objects.create(user=user, content_type=_ct(Book), object_id=books[0].pk, dwell_seconds=30, progress=0.5)
    Read.objects.create(user=user, content_type=_ct(Article), object_id=articles[0].pk)
    Rating.objects.create(user=user, content_type=_ct(Book), object_id=books[1].pk, stars=5)
    return user


@pytest.fixture
def build(catalog, reader):
    """An active build with picks for the reader, neighbours of Book 0 and Article 0, and popular items."""
    books, articles = catalog["books"], catalog["articles"]
    run = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED)
    book_ct, article_ct = _ct(Book), _ct(Article)
    because = [{"content_type": book_ct.pk, "object_id": str(books[0].pk), "title": books[0].title}]
    for rank, (ct, obj) in enumerate([(book_ct, books[3]), (article_ct, articles[2]), (book_ct, books[2])], 1):
        UserRecommendation.objects.create(build=run, user=reader, content_type=ct, object_id=str(obj.pk),
                                          rank=rank, score=1.0 / rank, explanation=because)
    for kind, target in (("collaborative", books[4]), ("content", books[5])):
        SimilarItem.objects.create(build=run, kind=kind, content_type=book_ct, object_id=str(books[0].pk),
                                   target_content_type=book_ct, target_object_id=str(target.pk), rank=1, score=0.9)
    for kind, target in (("collaborative", articles[4]), ("content", articles[5])):
        SimilarItem.objects.create(build=run, kind=kind, content_type=article_ct, object_id=str(articles[0].pk),
                                   target_content_type=article_ct, target_object_id=str(target.pk), rank=1, score=0.8)
    for window in ("all", "recent"):
        for rank, book in enumerate(books[5:8], 1):
            PopularItem.objects.create(build=run, window=window, content_type=book_ct, object_id=str(book.pk),
                                       rank=rank, score=10.0 - rank)
        PopularItem.objects.create(build=run, window=window, content_type=article_ct,
                                   object_id=str(articles[3].pk), rank=1, score=5.0)
    return run


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


def _section(html: str, name: str) -> str:
    """Return the HTML from the ``data-section="name"`` marker up to the next section's marker."""
    start = html.index(f'data-section="{name}"')
    end = html.find('data-section="', start + 1)
    return html[start:end if end != -1 else len(html)]


class TestHome:
    def test_reader_sees_top_picks_with_because_popular_and_new(self, reader_client, build, catalog):
        html = reader_client.get(reverse("home")).content.decode()
        assert "Top picks for you" in html
        picks = _section(html, "picks")
        assert "Book 3" in picks and "Article 2" in picks and "Book 2" in picks
        assert "Because you read <cite>Book 0</cite>" in picks
        assert picks.index("Book 3") < picks.index("Article 2") < picks.index("Book 2")  # best first
        assert "Popular this week" in html and "Book 5" in _section(html, "popular")
        assert "Article 5" in _section(html, "new")
        assert "Rate 5 books to get picks" not in html

    def test_seen_and_not_interested_items_leave_the_picks(self, reader_client, reader, build, catalog):
        book3 = catalog["books"][3]
        NotInterested.objects.create(user=reader, content_type=_ct(Book), object_id=book3.pk)
        picks = _section(reader_client.get(reverse("home")).content.decode(), "picks")
        assert "Book 3" not in picks and "Article 2" in picks

    def test_new_reader_gets_the_quick_rate_grid(self, client, django_user_model, build):
        client.force_login(django_user_model.objects.create_user(username="newbie", password="x"))
        html = client.get(reverse("home")).content.decode()
        assert "Rate 5 books to get picks" in html
        assert html.count('class="rating js-rate rating--compact"') == 3  # the three popular books
        assert 'name="stars" value="5"' in html and "Top picks for you" not in html

    def test_anonymous_sees_popular_and_new_and_a_sign_up(self, client, build):
        html = client.get(reverse("home")).content.decode()
        assert "Top picks for you" not in html and "Sign up" in html
        assert "Book 5" in _section(html, "popular") and "Article 0" in _section(html, "new")

    def test_before_any_build_the_home_page_still_works(self, reader_client):
        response = reader_client.get(reverse("home"))
        assert response.status_code == 200
        assert "Nothing is popular yet" in response.content.decode()

    def test_home_stays_under_a_fixed_number_of_queries(self, reader_client, reader, build,
                                                        django_assert_max_num_queries):
        reader_client.get(reverse("home"))  # warm the content-type cache
        with CaptureQueriesContext(connection) as few:
            reader_client.get(reverse("home"))
        # Nine more picks shown must not add queries: the count is fixed, not per item.
        for i in range(9):
            # Nine authors: nine books by one would be capped at three (DIVERSITY_CAPS) and take the fallbacks.
            book = Book.objects.create(title=f"Extra {i}", authors=f"Extra author {i}")
            UserRecommendation.objects.create(build=build, user=reader, content_type=_ct(Book),
                                              object_id=str(book.pk), rank=10 + i, score=0.01)
        with django_assert_max_num_queries(HOME_MAX_QUERIES):
            response = reader_client.get(reverse("home"))
        with CaptureQueriesContext(connection) as many:
            reader_client.get(reverse("home"))
        assert "Extra 8" in response.content.decode()
        assert len(many) <= len(few)  # (fewer stored picks take the fallback paths: content, then popular)


class TestDetailPages:
    def test_book_page_records_a_read_and_shows_both_neighbour_kinds(self, reader_client, reader, build, catalog):
        book = catalog["books"][0]
        # The reader's read of this book is from an earlier visit, so opening it is a new read.
        earlier = timezone.now() - timedelta(seconds=settings.READ_REOPEN_SECONDS + 60)
        Read.objects.filter(user=reader).update(created_at=earlier)
        before = Read.objects.filter(user=reader).count()
        html = reader_client.get(book.get_absolute_url()).content.decode()
        read = Read.objects.filter(user=reader).latest("created_at")
        assert Read.objects.filter(user=reader).count() == before + 1 and read.object_id == book.pk
        assert "Readers also read" in html and "Book 4" in _section(html, "also-read")
        assert "Similar books" in html and "Book 5" in _section(html, "similar")
        assert f'data-beacon-url="{reverse("read-beacon", args=[read.pk])}"' in html
        assert 'alt="Cover of Book 0"' in html
        assert html.count('type="radio"') == 5 and "Your rating" in html

    def test_reopening_soon_after_continues_the_same_read(self, reader_client, reader, build, catalog):
        book = catalog["books"][2]
        first = reader_client.get(book.get_absolute_url()).content.decode()
        read = Read.objects.get(user=reader, object_id=book.pk, content_type=_ct(Book))
        again = reader_client.get(book.get_absolute_url()).content.decode()
        assert Read.objects.filter(user=reader, object_id=book.pk, content_type=_ct(Book)).count() == 1
        beacon = f'data-beacon-url="{reverse("read-beacon", args=[read.pk])}"'
        assert beacon in first and beacon in again
        earlier = timezone.now() - timedelta(seconds=settings.READ_REOPEN_SECONDS + 60)
        Read.objects.filter(pk=read.pk).update(created_at=earlier)
        reader_client.get(book.get_absolute_url())
        assert Read.objects.filter(user=reader, object_id=book.pk, content_type=_ct(Book)).count() == 2

    def test_article_page_shows_both_neighbour_kinds(self, reader_client, build, catalog):
        html = reader_client.get(catalog["articles"][0].get_absolute_url()).content.decode()
        assert "Article 4" in _section(html, "also-read") and "Article 5" in _section(html, "similar")
        assert "Similar articles" in html

    def test_anonymous_detail_records_nothing_and_asks_to_log_in(self, client, build, catalog):
        html = client.get(catalog["books"][0].get_absolute_url()).content.decode()
        assert "Log in</a> to rate this" in html and "data-beacon-url" not in html
        assert not Read.objects.filter(user__username="anonymous").exists()

    def test_predicted_stars_shown_before_rating_only(self, reader_client, build, catalog, monkeypatch):
        from recommendations import selectors

        monkeypatch.setattr(selectors, "predicted_stars", lambda user, obj: 4.2)
        html = reader_client.get(catalog["books"][0].get_absolute_url()).content.decode()
        assert "We think you'll give this <strong>4.2</strong>" in html
        rated = reader_client.get(catalog["books"][1].get_absolute_url()).content.decode()
        assert "We think you" not in rated
        assert 'value="5" checked' in rated

    def test_detail_page_query_count_is_fixed(self, reader_client, build, catalog, django_assert_max_num_queries):
        book0 = catalog["books"][0]
        book_ct = _ct(Book)
        _ct(Article)  # warm the content-type cache
        for rank, target in enumerate(catalog["books"][1:8], 2):
            for kind in ("collaborative", "content"):
                SimilarItem.objects.create(build=build, kind=kind, content_type=book_ct, object_id=str(book0.pk),
                                           target_content_type=book_ct, target_object_id=str(target.pk),
                                           rank=rank, score=0.5)
        # Uncached: nothing of this page is in the page cache yet.
        with django_assert_max_num_queries(DETAIL_MAX_QUERIES):
            html = reader_client.get(book0.get_absolute_url()).content.decode()
        assert _section(html, "also-read").count('class="card"') == 6

    def test_unknown_and_unpublished_items_are_404(self, client, catalog):
        book = catalog["books"][0]
        Book.objects.filter(pk=book.pk).update(is_published=False)
        assert client.get(book.get_absolute_url()).status_code == 404
        assert client.get(reverse("article-detail", args=["nope"])).status_code == 404


class TestRateEndpoint:
    def _url(self, item):
        return reverse("item-rate", args=[item.kind, item.pk])

    def test_rating_saves_and_updates(self, reader_client, reader, catalog):
        book = catalog["books"][2]
        response = reader_client.post(self._url(book), {"stars": "4"}, HTTP_ACCEPT="application/json")
        assert response.status_code == 200 and response.json()["stars"] == 4
        assert "Saved" in response.json()["message"]
        reader_client.post(self._url(book), {"stars": "2"}, HTTP_ACCEPT="application/json")
        assert Rating.objects.get(user=reader, object_id=book.pk, content_type=_ct(Book)).stars == 2

    @pytest.mark.parametrize("stars", ["0", "6", "4.5", "abc", ""])
    def test_bad_stars_get_400_json_and_nothing_is_stored(self, reader_client, reader, catalog, stars):
        book = catalog["books"][2]
        response = reader_client.post(self._url(book), {"stars": stars}, HTTP_ACCEPT="application/json")
        assert response.status_code == 400
        message = response.json()["error"]
        assert "1 to 5" in message
        assert not Rating.objects.filter(user=reader, object_id=book.pk, content_type=_ct(Book)).exists()

    def test_anonymous_gets_401_json(self, client, catalog):
        response = client.post(self._url(catalog["books"][2]), {"stars": "4"}, HTTP_ACCEPT="application/json")
        assert response.status_code == 401 and "Sign in" in response.json()["error"]
        assert not Rating.objects.exists()

    def test_anonymous_form_post_goes_to_login(self, client, catalog):
        response = client.post(self._url(catalog["books"][2]), {"stars": "4"})
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    def test_unknown_item_is_404(self, reader_client):
        assert reader_client.post(reverse("item-rate", args=["book", 999999]), {"stars": "3"}).status_code == 404
        assert reader_client.post(reverse("item-rate", args=["movie", 1]), {"stars": "3"}).status_code == 404

    def test_get_is_not_allowed(self, reader_client, catalog):
        assert reader_client.get(self._url(catalog["books"][2])).status_code == 405

    def test_csrf_is_enforced(self, reader, catalog):
        client = Client(enforce_csrf_checks=True)
        client.force_login(reader)
        response = client.post(self._url(catalog["books"][2]), {"stars": "4"}, HTTP_ACCEPT="application/json")
        assert response.status_code == 403
        assert not Rating.objects.filter(object_id=catalog["books"][2].pk).exists()

    def test_plain_form_post_redirects_back(self, reader_client, catalog):
        book = catalog["books"][2]
        response = reader_client.post(self._url(book), {"stars": "3", "next": "/books/"})
        assert response.status_code == 302 and response["Location"] == "/books/"
        response = reader_client.post(self._url(book), {"stars": "3", "next": "https://evil.example/"})
        assert response["Location"] == book.get_absolute_url()


class TestNotInterested:
    def test_mark_and_undo(self, reader_client, reader, catalog):
        book = catalog["books"][3]
        url = reverse("item-not-interested", args=["book", book.pk])
        response = reader_client.post(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 200 and response.json()["not_interested"] is True
        assert NotInterested.objects.filter(user=reader, object_id=book.pk).exists()
        assert "Marked not interested" in reader_client.get(book.get_absolute_url()).content.decode()
        response = reader_client.post(url, {"undo": "1"}, HTTP_ACCEPT="application/json")
        assert response.json()["not_interested"] is False
        assert not NotInterested.objects.filter(user=reader, object_id=book.pk).exists()

    def test_anonymous_is_refused(self, client, catalog):
        url = reverse("item-not-interested", args=["book", catalog["books"][3].pk])
        assert client.post(url, HTTP_ACCEPT="application/json").status_code == 401
        assert not NotInterested.objects.exists()


class TestReadBeacon:
    def test_owner_reports_dwell_and_progress(self, reader_client, reader, catalog):
        read = Read.objects.filter(user=reader).first()
        url = reverse("read-beacon", args=[read.pk])
        response = reader_client.post(url, {"dwell_seconds": "42.5", "progress": "0.8"})
        assert response.status_code == 204
        read.refresh_from_db()
        assert read.dwell_seconds == 42.5 and read.progress == 0.8

    def test_other_users_read_is_404_and_unchanged(self, client, django_user_model, reader, catalog):
        read = Read.objects.get(user=reader, dwell_seconds=30)
        client.force_login(django_user_model.objects.create_user(username="mallory", password="x"))
        response = client.post(reverse("read-beacon", args=[read.pk]), {"dwell_seconds": "999", "progress": "1"})
        assert response.status_code == 404
        read.refresh_from_db()
        assert read.dwell_seconds == 30

    @pytest.mark.parametrize("data", [{"dwell_seconds": "-1"}, {"progress": "1.5"}, {"dwell_seconds": "abc"}])
    def test_bad_values_get_400_and_nothing_changes(self, reader_client, reader, data):
        read = Read.objects.filter(user=reader, dwell_seconds=30).get()
        response = reader_client.post(reverse("read-beacon", args=[read.pk]), data)
        assert response.status_code == 400 and response.json()["error"]
        read.refresh_from_db()
        assert read.dwell_seconds == 30 and read.progress == 0.5

    def test_anonymous_is_refused(self, client, reader):
        read = Read.objects.filter(user=reader).first()
        assert client.post(reverse("read-beacon", args=[read.pk]), {"dwell_seconds": "5"}).status_code == 401

    def test_csrf_token_as_form_field_is_accepted(self, reader, catalog):
        """sendBeacon cannot set headers: the token travels as the csrfmiddlewaretoken field."""
        client = Client(enforce_csrf_checks=True)
        client.force_login(reader)
        html = client.get(catalog["books"][2].get_absolute_url()).content.decode()
        token = html.split('data-csrf="', 1)[1].split('"', 1)[0]
        read = Read.objects.filter(user=reader).latest("created_at")
        url = reverse("read-beacon", args=[read.pk])
        assert client.post(url, {"dwell_seconds": "3"}).status_code == 403
        assert client.post(url, {"dwell_seconds": "3", "csrfmiddlewaretoken": token}).status_code == 204


class TestMyReading:
    def test_login_required(self, client):
        response = client.get(reverse("my-reading"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    def test_lists_history_and_ratings(self, reader_client):
        html = reader_client.get(reverse("my-reading")).content.decode()
        assert "Book 0" in _section(html, "reads") and "Article 0" in _section(html, "reads")
        assert "Book 1" in _section(html, "ratings") and 'aria-label="5 of 5 stars"' in html

    def test_remove_a_read_and_a_rating(self, reader_client, reader, catalog):
        read = Read.objects.get(user=reader, content_type=_ct(Book), object_id=catalog["books"][0].pk)
        assert reader_client.post(reverse("read-delete", args=[read.pk])).status_code == 302
        assert not Read.objects.filter(pk=read.pk).exists()
        book1 = catalog["books"][1]
        assert reader_client.post(reverse("item-rating-delete", args=["book", book1.pk])).status_code == 302
        assert not Rating.objects.filter(user=reader).exists()

    def test_cannot_remove_someone_elses_read(self, client, django_user_model, reader):
        read = Read.objects.filter(user=reader).first()
        client.force_login(django_user_model.objects.create_user(username="mallory", password="x"))
        assert client.post(reverse("read-delete", args=[read.pk])).status_code == 404
        assert Read.objects.filter(pk=read.pk).exists()

    def test_my_reading_query_count_is_fixed(self, reader_client, reader, catalog, django_assert_max_num_queries):
        for book in catalog["books"][2:]:
            Read.objects.create(user=reader, content_type=_ct(Book), object_id=book.pk)
        with django_assert_max_num_queries(12):
            assert reader_client.get(reverse("my-reading")).status_code == 200


class TestLists:
    def test_book_search_and_tag_filter(self, client, catalog):
        html = client.get(reverse("book-list"), {"q": "Author 3"}).content.decode()
        assert "Book 3" in _section(html, "list") and "Book 4" not in _section(html, "list")
        html = client.get(reverse("book-list"), {"tag": "science"}).content.decode()
        listed = _section(html, "list")
        assert "Book 1" in listed and "Book 3" in listed and "Book 2" not in listed
        assert 'aria-current="true">Science' in html

    def test_article_search(self, client, catalog):
        html = client.get(reverse("article-list"), {"q": "topic 4"}).content.decode()
        assert "Article 4" in _section(html, "list") and "Article 1" not in _section(html, "list")

    def test_empty_search_says_so(self, client, catalog):
        html = client.get(reverse("book-list"), {"q": "zzz-nothing"}).content.decode()
        assert "No books match “zzz-nothing”" in html

    def test_pagination_keeps_the_filters(self, client, catalog, django_assert_max_num_queries):
        for i in range(30):
            book = Book.objects.create(title=f"Paged {i:02d}", authors="Pager")
            book.tags.add(catalog["tags"]["fiction"])
        with django_assert_max_num_queries(8):
            html = client.get(reverse("book-list"), {"q": "Paged", "tag": "fiction"}).content.decode()
        assert "Page 1 of 2" in html and "q=Paged&amp;tag=fiction&amp;page=2" in html
        page2 = client.get(reverse("book-list"), {"q": "Paged", "tag": "fiction", "page": 2}).content.decode()
        assert "Paged 29" in page2 and "Paged 00" not in page2


class TestAccounts:
    def test_sign_up_logs_in_and_shows_onboarding(self, client, db):
        response = client.post(reverse("signup"), {"username": "ada", "password1": "analytical-engine-1843",
                                                   "password2": "analytical-engine-1843"}, follow=True)
        html = response.content.decode()
        assert "Signed in as <strong>ada</strong>" in html and "Rate 5 books to get picks" in html

    def test_sign_up_errors_are_shown(self, client, db):
        html = client.post(reverse("signup"), {"username": "ada", "password1": "a", "password2": "b"}).content.decode()
        assert "form-error" in html

    def test_log_in_and_log_out_by_post(self, client, reader):
        response = client.post(reverse("login"), {"username": "reader", "password": "pw-reader-1"})
        assert response.status_code == 302
        assert "Log out" in client.get(reverse("home")).content.decode()
        assert client.get(reverse("logout")).status_code == 405
        client.post(reverse("logout"))
        assert "Log in" in client.get(reverse("home")).content.decode()


class TestErrorPages:
    def test_404_page_is_the_site_page(self, client, db):
        response = client.get("/no-such-page/")
        assert response.status_code == 404 and "We can't find that page" in response.content.decode()

    def test_csrf_failure_page_explains(self, reader, catalog):
        client = Client(enforce_csrf_checks=True)
        client.force_login(reader)
        response = client.post(reverse("item-rate", args=["book", catalog["books"][0].pk]), {"stars": "3"})
        assert response.status_code == 403 and "Please try again" in response.content.decode()
