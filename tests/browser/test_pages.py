"""Browser tests of the pages: Playwright drives Debian's Chromium against the live server."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.contrib.contenttypes.models import ContentType

from articles.models import Book, NotInterested, Rating, Read
from recommendations.models import BuildRun, PopularItem, SimilarItem, UserRecommendation

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "demo-reader"


def _wait_for(condition, timeout: float = 10.0):
    """Poll ``condition`` (a database check) until it is truthy; the server writes in its own thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def stored(django_user_model, eager_tasks):
    """A reader who read "Dune" and rated "Emma", and an active build with picks, neighbours and popular books."""
    titles = ["Dune", "Emma", "Foundation", "Hyperion", "Neuromancer", "Persuasion", "Solaris", "Ubik"]
    books = {t: Book.objects.create(title=t, authors=f"Author of {t}", year=1960 + i, description=f"A novel: {t}.",
                                    cover_url=f"https://covers.example/{i}.jpg")
             for i, t in enumerate(titles)}
    reader = django_user_model.objects.create_user(username="demo", password=PASSWORD)
    ct = ContentType.objects.get_for_model(Book)
    Read.objects.create(user=reader, content_type=ct, object_id=books["Dune"].pk, dwell_seconds=60, progress=1)
    Rating.objects.create(user=reader, content_type=ct, object_id=books["Emma"].pk, stars=4)
    build = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED)
    because = [{"content_type": ct.pk, "object_id": str(books["Dune"].pk), "title": "Dune"}]
    for rank, title in enumerate(["Foundation", "Hyperion", "Neuromancer", "Solaris"], 1):
        UserRecommendation.objects.create(build=build, user=reader, content_type=ct, object_id=str(books[title].pk),
                                          rank=rank, score=1 / rank, explanation=because)
    for kind, title in (("collaborative", "Ubik"), ("content", "Persuasion")):
        SimilarItem.objects.create(build=build, kind=kind, content_type=ct, object_id=str(books["Foundation"].pk),
                                   target_content_type=ct, target_object_id=str(books[title].pk), rank=1, score=0.9)
    for window in ("all", "recent"):
        for rank, title in enumerate(["Persuasion", "Ubik", "Dune"], 1):
            PopularItem.objects.create(build=build, window=window, content_type=ct, object_id=str(books[title].pk),
                                       rank=rank, score=10 - rank)
    return {"reader": reader, "books": books}


def _pick_titles(page) -> list[str]:
    return page.locator('[data-section="picks"] .card__title').all_inner_texts()


class TestReaderJourney:
    def test_reader_signs_in_and_sees_top_picks(self, page, stored):
        log_in(page, "demo", PASSWORD)
        page.get_by_role("heading", name="Top picks for you").wait_for()
        # The four stored picks first, then the list is filled up with popular books not yet seen.
        assert _pick_titles(page)[:4] == ["Foundation", "Hyperion", "Neuromancer", "Solaris"]
        assert page.locator('[data-section="picks"] .card__because').first.inner_text() == "Because you read Dune"
        assert "Persuasion" in page.locator('[data-section="popular"]').inner_text()
        screenshot(page, "home-top-picks")

    def test_open_a_book_rate_it_and_the_rating_is_saved(self, page, stored):
        reader, foundation = stored["reader"], stored["books"]["Foundation"]
        log_in(page, "demo", PASSWORD)
        page.get_by_role("link", name="Foundation").first.click()
        page.get_by_role("heading", name="Foundation", level=1).wait_for()
        assert "Ubik" in page.locator('[data-section="also-read"]').inner_text()
        assert "Persuasion" in page.locator('[data-section="similar"]').inner_text()
        # Keyboard use: the stars are radio buttons; the label click picks 4 stars and saves with fetch().
        page.locator('label[for="rate-book-%d-4"]' % foundation.pk).click()
        page.locator(".rating__status", has_text="Saved").wait_for()
        ct = ContentType.objects.get_for_model(Book)
        rating = _wait_for(lambda: Rating.objects.filter(user=reader, content_type=ct, object_id=foundation.pk).first())
        assert rating is not None and rating.stars == 4
        # No reload, no navigation: the page is still the one the card link opened (with its ?rid=&pos=).
        assert urlsplit(page.url).path == foundation.get_absolute_url()
        screenshot(page, "book-rated")
        # Arrow keys move the choice; the change is saved too.
        page.locator("#rate-book-%d-4" % foundation.pk).focus()
        page.keyboard.press("ArrowRight")
        assert _wait_for(lambda: Rating.objects.get(pk=rating.pk).stars == 5)
        # Leaving the page sends the read beacon with dwell time and progress.
        read = Read.objects.filter(user=reader, content_type=ct, object_id=foundation.pk).latest("created_at")
        page.wait_for_timeout(1200)
        page.goto("/books/")
        assert _wait_for(lambda: Read.objects.get(pk=read.pk).dwell_seconds > 0.5)
        assert Read.objects.get(pk=read.pk).progress > 0

    def test_not_interested_leaves_the_picks(self, page, stored):
        reader, hyperion = stored["reader"], stored["books"]["Hyperion"]
        log_in(page, "demo", PASSWORD)
        assert "Hyperion" in _pick_titles(page)
        page.get_by_role("button", name="Not interested in Hyperion").click()
        page.locator('[data-section="picks"] .card', has_text="Hyperion").wait_for(state="detached")
        assert _wait_for(lambda: NotInterested.objects.filter(user=reader, object_id=hyperion.pk).exists())
        page.reload()
        assert "Hyperion" not in _pick_titles(page) and "Foundation" in _pick_titles(page)
        screenshot(page, "home-after-not-interested")

    def test_new_reader_signs_up_and_gets_the_quick_rate_grid(self, page, stored):
        page.goto("/accounts/signup/")
        page.fill("#id_username", "newreader")
        page.fill("#id_password1", "a-long-passphrase-42")
        page.fill("#id_password2", "a-long-passphrase-42")
        page.locator("form.stack-form button[type=submit]").click()
        page.get_by_role("heading", name="Rate 5 books to get picks").wait_for()
        page.locator('label[for^="rate-book-%d-5"]' % stored["books"]["Persuasion"].pk).click()
        page.locator("[data-onboarding-count]", has_text="1").wait_for()
        screenshot(page, "home-onboarding")
        assert _wait_for(lambda: Rating.objects.filter(user__username="newreader").count() == 1)


class TestIncrementalRefresh:
    def test_picks_change_after_the_incremental_refresh(self, page, django_user_model, eager_tasks):
        """A full build, then ratings in the browser: the per-user refresh (run inline here) changes the picks."""
        from recommendations import services

        ct = ContentType.objects.get_for_model(Book)
        genres = {
            "space": ["Rockets to Mars", "Orbital mechanics", "Life on the Moon", "Stars and galaxies", "Comet hunters"],
            "kitchen": ["Bread baking at home", "Pasta from scratch", "Italian kitchen basics", "Slow cooking stews",
                        "Soups of the world"],
        }
        books = {}
        for genre, titles in genres.items():
            for title in titles:
                # One author per book: the diversity cap would otherwise space out one genre's writer.
                books[title] = Book.objects.create(title=title, authors=f"The writer of {title}",
                                                   description=f"A {genre} book: {title.lower()}.")
        for genre, titles in genres.items():
            for i in range(6):
                user = django_user_model.objects.create_user(username=f"{genre}{i}", password="x")
                for j, title in enumerate(titles):
                    if j != i % len(titles):
                        Rating.objects.create(user=user, content_type=ct, object_id=books[title].pk, stars=5)
        reader = django_user_model.objects.create_user(username="demo", password=PASSWORD)
        for title in genres["space"][:3]:
            Read.objects.create(user=reader, content_type=ct, object_id=books[title].pk, dwell_seconds=120, progress=1)
            Rating.objects.create(user=reader, content_type=ct, object_id=books[title].pk, stars=5)
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active

        log_in(page, "demo", PASSWORD)
        before = _pick_titles(page)
        assert before and set(before[:2]) == set(genres["space"][3:])
        screenshot(page, "refresh-before")
        # The reader turns out to love cooking: rate the kitchen books 5 stars, then dislike the space picks.
        for title in genres["kitchen"][:3]:
            page.goto(books[title].get_absolute_url())
            page.locator('label[for="rate-book-%d-5"]' % books[title].pk).click()
            page.locator(".rating__status", has_text="Saved").wait_for()
        refreshed = _wait_for(lambda: UserRecommendation.objects.filter(
            build=build, user=reader, source="refresh").exists())
        assert refreshed, "the per-user refresh did not store new picks"
        page.goto("/")
        after = _pick_titles(page)
        assert after != before
        assert set(genres["kitchen"][3:]) <= set(after)
        assert not set(genres["kitchen"][:3]) & set(after)  # rated items never come back
        screenshot(page, "refresh-after")


class TestApiDocs:
    def test_api_docs_page_renders(self, page, db):
        page.goto("/api/docs/")
        page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
        assert page.locator(".swagger-ui .opblock").count() > 5
        assert "recommendations" in page.content()
        screenshot(page, "api-docs")
