"""Tests of articles/recommendation_adapter.py: the site's diversity key, and Top picks capped by author."""
from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from articles.models import Article, Book, Read
from articles.recommendation_adapter import ArticlesAdapter
from recommendations.models import BuildRun, UserRecommendation
from tests.api_lists import results


class TestDiversityKey:
    adapter = ArticlesAdapter()

    def test_a_book_is_keyed_by_its_first_author(self):
        assert self.adapter.diversity_key(Book(title="Carrie", authors="Stephen King")) == "author:stephen king"
        assert self.adapter.diversity_key(Book(title="The Talisman", authors=" stephen KING, Peter Straub")) == \
            "author:stephen king"

    def test_a_book_without_authors_is_keyed_by_its_series(self):
        book = Book(title="Catching Fire (The Hunger Games, #2)", authors="")
        assert self.adapter.diversity_key(book) == "series:the hunger games"
        assert self.adapter.diversity_key(Book(title="Untitled", authors="")) is None

    def test_an_article_is_keyed_by_its_author(self):
        assert self.adapter.diversity_key(Article(title="A", author="Glynn Bird")) == "author:glynn bird"
        assert self.adapter.diversity_key(Article(title="A", author="")) is None

    def test_an_author_of_books_and_articles_shares_one_key(self):
        assert self.adapter.diversity_key(Article(title="A", author="Ann Leckie")) == \
            self.adapter.diversity_key(Book(title="B", authors="Ann Leckie"))


@pytest.fixture
def king_reader(db, django_user_model):
    """A reader whose 19 stored picks are 10 Stephen King books, then nine by other authors."""
    reader = django_user_model.objects.create_user(username="constant-reader", password="pw-reader-1")
    books = [Book.objects.create(title=f"King {i}", authors="Stephen King") for i in range(10)]
    books += [Book.objects.create(title=f"Other {i}", authors=f"Author {i}") for i in range(9)]
    run = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED)
    ct = ContentType.objects.get_for_model(Book)
    # Some history, so the home page shows picks rather than the onboarding grid.
    read = Book.objects.create(title="Already read", authors="Someone Else")
    Read.objects.create(user=reader, content_type=ct, object_id=read.pk)
    for rank, book in enumerate(books, 1):
        UserRecommendation.objects.create(build=run, user=reader, content_type=ct, object_id=str(book.pk),
                                          rank=rank, score=100.0 - rank)
    return reader


class TestTopPicks:
    def test_home_page_holds_at_most_two_of_an_author_in_six_and_three_in_twelve(self, client, king_reader):
        client.force_login(king_reader)
        response = client.get(reverse("home"))
        html = response.content.decode()
        start = html.index('data-section="picks"')
        picks = html[start:html.find('data-section="', start + 1)]
        titles = [t for t in (f"King {i}" for i in range(10)) if t in picks]
        others = [t for t in (f"Other {i}" for i in range(9)) if t in picks]
        assert len(titles) == 3 and len(others) == 9
        in_order = sorted(titles + others, key=picks.index)
        assert sum(t.startswith("King") for t in in_order[:6]) <= 2

    def test_api_picks_hold_at_most_three_of_an_author(self, client, king_reader):
        client.force_login(king_reader)
        rows = results(client.get("/api/recommendations/?limit=12"))
        authors = Counter(row["item"]["authors"] for row in rows)
        assert authors["Stephen King"] == 3
        assert Counter(row["item"]["authors"] for row in rows[:6])["Stephen King"] <= 2
