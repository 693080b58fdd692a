"""Tests of the site's admin (articles/admin.py): every page loads, staff only, and the recommendation controls."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from articles.models import Article, Book, NotInterested, Rating, Read, Tag
from recommendations import selectors
from recommendations.models import BuildRun, ItemRule, PopularItem, SimilarItem, UserRecommendation

MODELS = (Tag, Article, Book, Read, Rating, NotInterested)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Selectors cache the editors' rules for a few seconds; a rolled-back test must not leak them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _ct(model) -> ContentType:
    return ContentType.objects.get_for_model(model)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def site(db, django_user_model):
    """Six books, two articles, a reader with history, and an active build with picks and neighbours."""
    tag = Tag.objects.create(name="Fiction", slug="fiction")
    books = [Book.objects.create(title=f"Book {i}", authors=f"Author {i}", year=2000 + i,
                                 description=f"Story {i}.") for i in range(6)]
    for book in books:
        book.tags.add(tag)
    articles = [Article.objects.create(title=f"Article {i}", slug=f"article-{i}", summary="s", body="b")
                for i in range(2)]
    reader = django_user_model.objects.create_user(username="reader", password="pw-reader-1")
    Read.objects.create(user=reader, content_type=_ct(Book), object_id=books[0].pk, dwell_seconds=12)
    Rating.objects.create(user=reader, content_type=_ct(Book), object_id=books[1].pk, stars=4)
    NotInterested.objects.create(user=reader, content_type=_ct(Article), object_id=articles[1].pk)
    run = BuildRun.objects.create(is_active=True, status=BuildRun.Status.SUCCEEDED, algorithm="itemknn")
    book_ct = _ct(Book)
    for rank, book in enumerate(books[2:6], 1):
        UserRecommendation.objects.create(
            build=run, user=reader, content_type=book_ct, object_id=str(book.pk), rank=rank, score=1.0 / rank,
            explanation=[{"content_type": book_ct.pk, "object_id": str(books[0].pk), "title": "Book 0"}])
        PopularItem.objects.create(build=run, window="all", content_type=book_ct, object_id=str(book.pk),
                                   rank=rank, score=10 - rank)
    for kind, target in (("collaborative", books[2]), ("content", books[3])):
        SimilarItem.objects.create(build=run, kind=kind, content_type=book_ct, object_id=str(books[0].pk),
                                   target_content_type=book_ct, target_object_id=str(target.pk), rank=1, score=0.75)
    return {"books": books, "articles": articles, "reader": reader, "tag": tag, "build": run}


def _first(model):
    return model.objects.order_by("pk").first()


class TestPagesLoad:
    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
    def test_changelist_and_change_page_load_for_a_superuser(self, admin_client, site, model):
        assert admin_client.get(_url(model, "changelist")).status_code == 200
        assert admin_client.get(_url(model, "change", _first(model).pk)).status_code == 200
        assert admin_client.get(_url(model, "add")).status_code == 200

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
    def test_changelist_search_works(self, admin_client, site, model):
        assert admin_client.get(_url(model, "changelist"), {"q": "1"}).status_code == 200

    @pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
    def test_non_staff_is_sent_to_login(self, client, site, model):
        client.force_login(site["reader"])
        for url in (_url(model, "changelist"), _url(model, "change", _first(model).pk)):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))

    def test_interaction_list_has_no_n_plus_one(self, admin_client, site, django_user_model,
                                                django_assert_max_num_queries):
        books = site["books"]
        for i in range(10):
            user = django_user_model.objects.create_user(username=f"u{i}", password="x")
            Read.objects.create(user=user, content_type=_ct(Book), object_id=books[i % 6].pk)
        admin_client.get(_url(Read, "changelist"))  # warm the content type cache
        with django_assert_max_num_queries(12):
            response = admin_client.get(_url(Read, "changelist"))
        assert response.status_code == 200 and "Book 3" in response.content.decode()

    def test_item_list_has_no_n_plus_one(self, admin_client, site, django_assert_max_num_queries):
        for i in range(20):
            Book.objects.create(title=f"More {i}")
        admin_client.get(_url(Book, "changelist"))
        with django_assert_max_num_queries(14):
            assert admin_client.get(_url(Book, "changelist")).status_code == 200


class TestStoredNeighbours:
    def test_book_page_shows_both_kinds_of_neighbours(self, admin_client, site):
        books = site["books"]
        html = admin_client.get(_url(Book, "change", books[0].pk)).content.decode()
        assert "Stored neighbours" in html
        assert "Collaborative" in html and "Content" in html
        neighbours = html[html.index("Stored neighbours"):]
        assert "Book 2" in neighbours and "Book 3" in neighbours and "0.750" in neighbours
        assert _url(Book, "change", books[2].pk) in neighbours

    def test_page_before_any_build_says_so(self, admin_client, site):
        BuildRun.objects.all().delete()
        html = admin_client.get(_url(Article, "change", site["articles"][0].pk)).content.decode()
        assert "No active build yet" in html


class TestEditorActions:
    def _act(self, admin_client, model, action, objs):
        return admin_client.post(_url(model, "changelist"),
                                 {"action": action, "_selected_action": [o.pk for o in objs]}, follow=True)

    def _pick_names(self, reader):
        return [item.title for item in selectors.recommended_for(reader, n=4)]

    def test_pin_moves_an_item_to_the_top(self, admin_client, site):
        books, reader = site["books"], site["reader"]
        assert self._pick_names(reader)[0] == "Book 2"
        response = self._act(admin_client, Book, "recommendation_pin", [books[5]])
        assert response.status_code == 200
        rule = ItemRule.objects.get()
        assert (rule.content_type, rule.object_id, rule.action) == (_ct(Book), str(books[5].pk), "pin")
        assert self._pick_names(reader)[0] == "Book 5"

    def test_boost_reorders_by_factor(self, admin_client, site):
        books, reader = site["books"], site["reader"]
        assert self._pick_names(reader) == ["Book 2", "Book 3", "Book 4", "Book 5"]
        self._act(admin_client, Book, "recommendation_boost", [books[5]])  # 1/4 * 1.5 > 1/3
        rule = ItemRule.objects.get()
        assert rule.action == "boost" and rule.factor == 1.5
        assert self._pick_names(reader) == ["Book 2", "Book 3", "Book 5", "Book 4"]

    def test_ban_hides_the_item_and_clear_brings_it_back(self, admin_client, site):
        books, reader = site["books"], site["reader"]
        self._act(admin_client, Book, "recommendation_ban", [books[2]])
        assert ItemRule.objects.get().action == "ban"
        assert "Book 2" not in self._pick_names(reader)
        assert "Book 2" not in [b.title for b in selectors.popular_items(model=Book, n=10)]
        html = admin_client.get(_url(Book, "changelist")).content.decode()
        assert "Ban" in html  # the rule column
        self._act(admin_client, Book, "recommendation_clear", [books[2]])
        assert not ItemRule.objects.exists()
        assert self._pick_names(reader)[0] == "Book 2"

    def test_change_page_shows_the_rule_with_a_link(self, admin_client, site):
        book = site["books"][4]
        html = admin_client.get(_url(Book, "change", book.pk)).content.decode()
        assert f"?content_type={_ct(Book).pk}&amp;object_id={book.pk}" in html
        self._act(admin_client, Book, "recommendation_ban", [book])
        html = admin_client.get(_url(Book, "change", book.pk)).content.decode()
        assert reverse("admin:recommendations_itemrule_change", args=[ItemRule.objects.get().pk]) in html

    def test_actions_work_on_articles_too(self, admin_client, site):
        article = site["articles"][0]
        self._act(admin_client, Article, "recommendation_pin", [article])
        assert ItemRule.objects.filter(content_type=_ct(Article), object_id=str(article.pk), action="pin").exists()
