"""Browser test of a new item: saved after a build, it shows in the reader's top picks with a New badge."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from articles.models import Book, Rating, Read
from recommendations.models import BuildRun, UserRecommendation

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "demo-reader"
GENRES = {
    "space": ["Rockets to Mars", "Orbital mechanics", "Life on the Moon", "Stars and galaxies", "Comet hunters"],
    "kitchen": ["Bread baking at home", "Pasta from scratch", "Italian kitchen basics", "Slow cooking stews",
                "Soups of the world"],
}


def test_a_book_saved_after_the_build_shows_in_top_picks_with_a_new_badge(page, django_user_model, settings):
    from recommendations import services

    # Saving a book queues its content refresh, run inline here (eager tasks), which places it.
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "COLD_START": True, "CONTENT_ON_SAVE": True}
    ct = ContentType.objects.get_for_model(Book)
    books = {}
    for genre, titles in GENRES.items():
        for title in titles:
            books[title] = Book.objects.create(title=title, authors=f"The writer of {title}",
                                               description=f"A {genre} book: {title.lower()}.")
    for genre, titles in GENRES.items():
        for i in range(6):
            user = django_user_model.objects.create_user(username=f"{genre}{i}", password="x")
            for j, title in enumerate(titles):
                if j != i % len(titles):
                    Rating.objects.create(user=user, content_type=ct, object_id=books[title].pk, stars=5)
    reader = django_user_model.objects.create_user(username="demo", password=PASSWORD)
    for title in GENRES["space"][:3]:
        Read.objects.create(user=reader, content_type=ct, object_id=books[title].pk, dwell_seconds=120, progress=1)
    build = services.full_build_run()
    assert build.status == BuildRun.Status.SUCCEEDED and build.is_active

    new = Book.objects.create(title="Rockets to the outer moons", authors="A new writer",
                              description="A space book: rockets to mars and the moon.")
    assert UserRecommendation.objects.filter(build=build, user=reader, object_id=str(new.pk)).exists()

    log_in(page, "demo", PASSWORD)
    card = page.locator('[data-section="picks"] .card', has=page.locator(".card__new"))
    card.first.wait_for()
    assert "Rockets to the outer moons" in card.first.locator(".card__title").inner_text()
    because = card.first.locator(".card__because--new").inner_text()
    assert because.startswith("New: like ") and because.endswith(", which you read")
    screenshot(page, "home-new-item")
