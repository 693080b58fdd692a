"""Tests of the cached pages (articles/page_cache.py): query counts, freshness, CSRF tokens and both backends."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from articles import services as site_services
from articles.models import Book, Rating, Tag
from recommendations import selectors as rec_selectors
from recommendations.models import BuildRun, UserRecommendation
from tests.articles.test_views import _ct, _section, build, catalog, reader, reader_client  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
MAX_QUERIES = 6
RID = re.compile(rb"rid=[0-9a-f-]{36}")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _pages(catalog) -> dict[str, str]:
    return {
        "home": reverse("home"),
        "books list": reverse("book-list"),
        "articles list": reverse("article-list"),
        "book detail": catalog["books"][0].get_absolute_url(),
        "article detail": catalog["articles"][0].get_absolute_url(),
        "my reading": reverse("my-reading"),
    }


def _warm_queries(client: Client, url: str) -> list[str]:
    first = client.get(url)
    assert first.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        again = client.get(url)
    assert again.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


PAGE_NAMES = ["home", "books list", "articles list", "book detail", "article detail", "my reading"]


class TestQueryCounts:
    @pytest.mark.parametrize("page", PAGE_NAMES)
    def test_signed_in_page_takes_at_most_six_queries_and_writes_nothing(self, reader_client, build, catalog, page):
        queries = _warm_queries(reader_client, _pages(catalog)[page])
        assert len(queries) <= MAX_QUERIES, queries
        assert not [q for q in queries if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]

    @pytest.mark.parametrize("page", [p for p in PAGE_NAMES if p != "my reading"])
    def test_anonymous_page_takes_at_most_six_queries(self, client, build, catalog, page):
        queries = _warm_queries(client, _pages(catalog)[page])
        assert len(queries) <= MAX_QUERIES, queries

    def test_a_cached_page_is_the_same_page_but_its_lists_ids(self, client, build, catalog):
        for url in _pages(catalog).values():
            if url != reverse("my-reading"):
                first, again = client.get(url).content, client.get(url).content
                assert RID.sub(b"rid", first) == RID.sub(b"rid", again)


class TestInvalidation:
    """A change shows on the next page load: keys change, so nothing stale can be read."""

    def test_a_rating_hides_the_rated_pick_on_the_next_home_page(self, reader_client, build, catalog,
                                                                  django_capture_on_commit_callbacks):
        book = catalog["books"][3]
        assert "Book 3" in _section(reader_client.get("/").content.decode(), "picks")
        with django_capture_on_commit_callbacks(execute=True):
            response = reader_client.post(reverse("item-rate", args=["book", book.pk]), {"stars": 4})
        assert response.status_code == 302
        assert "Book 3" not in _section(reader_client.get("/").content.decode(), "picks")

    def test_a_new_build_shows_its_picks(self, reader_client, reader, build, catalog):
        first_pick = re.compile(r'data-section="picks">\s*<li class="card" data-item="([^"]+)"')
        assert first_pick.search(reader_client.get("/").content.decode()).group(1) == f"book-{catalog['books'][3].pk}"
        new = BuildRun.objects.create(status=BuildRun.Status.SUCCEEDED)
        UserRecommendation.objects.create(build=new, user=reader, content_type=_ct(Book),
                                          object_id=str(catalog["books"][6].pk), rank=1, score=1.0)
        BuildRun.objects.filter(pk=build.pk).update(is_active=False)
        new.is_active = True
        new.save(update_fields=["is_active"])
        assert first_pick.search(reader_client.get("/").content.decode()).group(1) == f"book-{catalog['books'][6].pk}"

    def test_an_item_renamed_shows_on_lists_and_details(self, client, build, catalog):
        book = catalog["books"][0]
        client.get(reverse("book-list")), client.get(book.get_absolute_url())
        book.title = "A Renamed Book"
        book.save()
        assert "A Renamed Book" in client.get(reverse("book-list")).content.decode()
        assert "A Renamed Book" in client.get(book.get_absolute_url()).content.decode()

    def test_tags_changed_show_on_the_list(self, client, build, catalog):
        assert "Poetry" not in client.get(reverse("book-list")).content.decode()
        poetry = Tag.objects.create(name="Poetry", slug="poetry")
        catalog["books"][2].tags.add(poetry)
        assert "Poetry" in client.get(reverse("book-list")).content.decode()
        poetry.name = "Verse"
        poetry.save()
        assert "Verse" in client.get(reverse("book-list")).content.decode()

    def test_an_imported_csv_shows_on_the_list(self, client, build, catalog, tmp_path):
        client.get(reverse("book-list"))
        path = tmp_path / "books.csv"
        path.write_text("external_id,title,authors\nx-1,Imported Book,Someone\n")
        from articles.imports import csv_import

        csv_import(kind="books", path=path)
        assert "Imported Book" in client.get(reverse("book-list")).content.decode()

    def test_my_reading_shows_a_new_rating(self, reader_client, catalog):
        reader_client.get(reverse("my-reading"))
        reader_client.post(reverse("item-rate", args=["book", catalog["books"][6].pk]), {"stars": 2})
        assert "Book 6" in _section(reader_client.get(reverse("my-reading")).content.decode(), "ratings")

    def test_shared_fragments_show_nothing_of_the_reader(self, reader_client, build, catalog):
        url = catalog["books"][1].get_absolute_url()  # rated 5 stars by the reader
        assert 'value="5" checked' in reader_client.get(url).content.decode()
        html = Client().get(url).content.decode()  # anonymous (``client`` is the reader's, signed in)
        assert "checked" not in html and "Log in</a> to rate this" in html


class TestFreshness:
    """A reader who rates a book sees changed picks on the next home page, once their refresh has run."""

    @pytest.fixture
    def world(self, django_user_model):
        books = [Book.objects.create(title=f"Novel {i}", authors=f"Author {i}") for i in range(12)]
        ct = _ct(Book)
        for u in range(8):
            user = django_user_model.objects.create_user(username=f"r{u}", password="pw-r-123")
            for i in range(12):
                if (i + u) % 3 != 0:
                    Rating.objects.create(user=user, content_type=ct, object_id=books[i].pk, stars=1 + (i * u) % 5)
        me = django_user_model.objects.create_user(username="me", password="pw-me-123")
        for i in range(5):  # enough ratings to skip the onboarding grid
            Rating.objects.create(user=me, content_type=ct, object_id=books[i].pk, stars=5)
        from recommendations import services as rec_services

        rec_services.full_build_run()
        assert BuildRun.objects.filter(is_active=True).exists()
        return books, me

    @staticmethod
    def _picks(html: str) -> list[str]:
        return re.findall(r'data-item="(book-\d+)"', _section(html, "picks"))

    def test_rating_changes_the_picks_on_the_next_home_page(self, client, world, django_capture_on_commit_callbacks):
        books, me = world
        client.force_login(me)
        before = self._picks(client.get("/").content.decode())
        assert before and self._picks(client.get("/").content.decode()) == before  # cached, same picks
        rated = Book.objects.get(pk=int(before[0].split("-")[1]))
        with django_capture_on_commit_callbacks(execute=True) as callbacks:  # the refresh runs (eager tasks)
            site_services.rating_set(user=me, item=rated, stars=1)
        assert callbacks
        after = self._picks(client.get("/").content.decode())
        fresh = [f"book-{item.pk}" for item in rec_selectors.recommended_for(me, n=12)]
        assert after == fresh and after != before and f"book-{rated.pk}" not in after


class TestCsrfInCachedFragments:
    def test_each_session_gets_its_own_token_from_the_same_cached_fragment(self, reader, build, catalog):
        sessions, tokens = [], []
        for _ in range(2):  # the second session reads the fragment the first one cached
            browser = Client(enforce_csrf_checks=True)
            browser.force_login(reader)
            with CaptureQueriesContext(connection) as ctx:
                html = _section(browser.get("/").content.decode(), "picks")
            found = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))
            assert len(found) == 1 and "placeholder" not in html
            sessions.append((browser, re.findall(r'action="(/items/book/\d+/not-interested)"', html)))
            tokens.append(found.pop())
        assert len(ctx.captured_queries) <= MAX_QUERIES  # the second page was the cached one
        assert tokens[0] != tokens[1]
        for i, (browser, actions) in enumerate(sessions):
            assert browser.post(actions[i], {"csrfmiddlewaretoken": tokens[i]}).status_code == 302


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def _redis_pages_cache(location: str) -> dict:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "pages": {"BACKEND": "bre_site.redis_cache.RedisCache", "LOCATION": location,
                  "KEY_PREFIX": f"bre-pages-test-{uuid.uuid4().hex}", "TIMEOUT": 60,
                  "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}},
    }


class TestBackends:
    def test_cache_url_selects_redis_and_the_default_needs_no_server(self):
        code = "import bre_site.settings as s; print(s.CACHES['pages']['BACKEND'])"
        env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
        embedded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        redis = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                               env={**env, "CACHE_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/12"})
        assert embedded.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache"
        assert redis.stdout.strip() == "bre_site.redis_cache.RedisCache"

    def test_the_redis_backend_keeps_one_client_per_pool(self):
        """Django's builds a redis-py client per operation; ours keeps it (no server needed to tell)."""
        with override_settings(CACHES=_redis_pages_cache("redis://127.0.0.1:1/0")):
            client = caches["pages"]._cache
            assert client.get_client() is client.get_client()
            assert client.get_client(write=True) is client.get_client()  # one server: one pool
            assert client.get_client().connection_pool is client._get_connection_pool(False)

    def test_the_redis_backend_falls_back_to_djangos_client_per_call(self, monkeypatch):
        """Where Django's client lacks the internals the fast path reads, it behaves as Django's own."""
        import bre_site.redis_cache

        monkeypatch.setattr(bre_site.redis_cache, "KEEPS_CLIENTS", False)
        with override_settings(CACHES=_redis_pages_cache("redis://127.0.0.1:1/0")):
            client = caches["pages"]._cache
            assert client.get_client() is not client.get_client()
            assert client.get_client().connection_pool is client.get_client().connection_pool

    @pytest.mark.skipif(not _redis_up(), reason="needs a Redis server")
    @pytest.mark.parametrize("keeps_clients", [True, False])
    def test_both_client_paths_store_and_read_back(self, monkeypatch, keeps_clients):
        import bre_site.redis_cache

        monkeypatch.setattr(bre_site.redis_cache, "KEEPS_CLIENTS", keeps_clients)
        with override_settings(CACHES=_redis_pages_cache(f"redis://{REDIS_HOST}:{REDIS_PORT}/12")):
            caches["pages"].set("page", "body")
            assert caches["pages"].get("page") == "body"

    @pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
    def test_redis_backend_serves_and_invalidates(self, reader_client, reader, build, catalog):
        with override_settings(CACHES=_redis_pages_cache(f"redis://{REDIS_HOST}:{REDIS_PORT}/12")):
            try:
                queries = _warm_queries(reader_client, "/")
                assert len(queries) <= MAX_QUERIES
                assert "Book 3" in _section(reader_client.get("/").content.decode(), "picks")
                Rating.objects.create(user=reader, content_type=_ct(Book), object_id=catalog["books"][3].pk, stars=3)
                assert "Book 3" not in _section(reader_client.get("/").content.decode(), "picks")
            finally:
                caches["pages"].clear()

    def test_a_cache_that_is_down_costs_a_render_not_the_page(self, reader_client, build, catalog):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
        with override_settings(CACHES=_redis_pages_cache(f"redis://127.0.0.1:{port}/0")):
            for url in _pages(catalog).values():
                assert reader_client.get(url).status_code == 200


class TestConditionalGet:
    def test_an_unchanged_page_is_a_304_and_a_changed_one_is_sent(self, build, catalog):
        browser = Client()
        first = browser.get(reverse("book-list"))
        etag = first["ETag"]
        assert browser.get(reverse("book-list"), HTTP_IF_NONE_MATCH=etag).status_code == 304
        catalog["books"][0].title = "Changed Title"
        catalog["books"][0].save()
        changed = browser.get(reverse("book-list"), HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and "Changed Title" in changed.content.decode()


class TestStaticFiles:
    def test_production_serves_hashed_static_files_with_far_future_caching(self, tmp_path):
        code = (
            "import django; django.setup();"
            "from django.core.management import call_command; call_command('collectstatic', '--noinput', verbosity=0);"
            "from django.templatetags.static import static; from django.test import Client;"
            "url = static('articles/site.css'); r = Client().get(url, HTTP_HOST='bre.example');"
            "print(url, r.status_code, r['Cache-Control'])"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bre_site.settings", "DJANGO_ENV": "production",
               "SECRET_KEY": "test-only-key", "ALLOWED_HOSTS": "bre.example", "SECURE_SSL_REDIRECT": "0",
               "BRE_VAR_DIR": str(tmp_path)}
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        url, status, cache_control = result.stdout.split(maxsplit=2)
        assert re.search(r"/site\.[0-9a-f]{12}\.css$", url) and status == "200"
        assert "immutable" in cache_control and "max-age=315360000" in cache_control


class TestWholePages:
    """``page_render()``: a warm page renders no template, and what differs per request still does."""

    @pytest.mark.parametrize("page", PAGE_NAMES)
    def test_a_warm_signed_in_page_renders_no_template(self, reader_client, build, catalog, page):
        url = _pages(catalog)[page]
        assert reader_client.get(url).templates  # the first request renders
        again = reader_client.get(url)
        assert again.status_code == 200 and again.templates == []

    def test_a_warm_page_builds_no_orm_query(self, reader_client, build, catalog, monkeypatch):
        """The session, the user and the generations are read with SQL compiled once per process."""
        for url in (reverse("home"), catalog["books"][0].get_absolute_url()):
            reader_client.get(url)
            reader_client.get(url)  # the detail page's second open continues the read: nothing to write

            def refuse(*args, **kwargs):
                raise AssertionError("a warm page built an ORM query")

            with monkeypatch.context() as patch:
                patch.setattr("django.db.models.sql.compiler.SQLCompiler.as_sql", refuse)
                response = reader_client.get(url)
            assert response.status_code == 200 and b"Signed in as <strong>reader</strong>" in response.content

    def test_a_message_shows_once_over_a_cached_page(self, reader_client, build, catalog):
        reader_client.get("/"), reader_client.get("/")  # cached
        book = catalog["books"][3]
        response = reader_client.post(reverse("item-rate", args=["book", book.pk]), {"stars": 9, "next": "/"},
                                      follow=True)
        assert 'class="message message--error"' in response.content.decode()
        assert "message--error" not in reader_client.get("/").content.decode()

    def test_the_cached_page_gets_a_working_token_in_every_form(self, reader, build, catalog):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(reader)
        browser.get("/")
        html = browser.get("/").content.decode()  # the cached body
        tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert tokens and set(tokens) != {"placeholder"} and "bre-csrf-token-placeholder" not in html
        assert len(set(tokens)) == 1  # one token per response, header and fragments alike
        response = browser.post(reverse("logout"), {"csrfmiddlewaretoken": tokens[0]})
        assert response.status_code == 302
        assert "Signed in as" not in browser.get("/").content.decode()

    def test_logout_ends_the_session_for_every_holder_of_the_cookie(self, reader, build, catalog):
        """A cached signed-in page is never served to a session that has ended, in any process."""
        browser = Client()
        browser.force_login(reader)
        stolen = Client()
        stolen.cookies = browser.cookies.__class__(browser.cookies)  # the same session cookie
        assert "Signed in as" in stolen.get("/").content.decode()
        assert "Signed in as" in stolen.get("/").content.decode()  # cached
        browser.post(reverse("logout"))
        html = stolen.get("/").content.decode()
        assert "Signed in as" not in html and "Log in" in html

    def test_a_renamed_reader_sees_the_new_name(self, reader_client, reader, build):
        reader_client.get("/")
        reader.username = "renamed"
        reader.save()
        assert "Signed in as <strong>renamed</strong>" in reader_client.get("/").content.decode()


class TestCachedApiLists:
    """The item lists of the API are cached like the pages: shared, and fresh after a change."""

    @pytest.mark.parametrize("url", ["/api/books/?page=1", "/api/articles/"])
    def test_a_warm_list_reads_only_the_generations(self, client, build, catalog, url):
        first = client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            again = client.get(url)
        assert again.status_code == 200 and again.json() == first.json()
        assert len(ctx.captured_queries) == 1, [q["sql"] for q in ctx.captured_queries]

    def test_a_renamed_book_and_a_new_tag_show_at_once(self, client, build, catalog):
        client.get("/api/books/")
        book = catalog["books"][0]
        book.title = "Renamed In The API"
        book.save()
        assert "Renamed In The API" in [b["title"] for b in client.get("/api/books/").json()["results"]]
        poetry = Tag.objects.create(name="Poetry", slug="poetry")
        book.tags.add(poetry)
        listed = next(b for b in client.get("/api/books/").json()["results"] if b["id"] == book.pk)
        assert "poetry" in [t["slug"] for t in listed["tags"]]

    def test_pagination_links_follow_the_host_and_bad_input_is_still_a_400(self, client, build, catalog):
        Book.objects.bulk_create(Book(title=f"More {i}") for i in range(25))  # a second page
        one = client.get("/api/books/", HTTP_HOST="localhost").json()
        other = client.get("/api/books/", HTTP_HOST="127.0.0.1").json()
        assert one["next"].startswith("http://localhost/") and other["next"].startswith("http://127.0.0.1/")
        assert client.get("/api/books/?year=abc").status_code == 400
        assert client.get("/api/books/?page=999").status_code == 404
