"""Provides the django-filter filter sets of the item lists: search, tag, author, year, dates, ordering."""
from __future__ import annotations

import django_filters

from articles import selectors
from articles.models import Article, Book


class ArticleFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, help_text="Words in the title, summary or author."
    )
    tag = django_filters.CharFilter(field_name="tags__slug", max_length=120, distinct=True, help_text="A tag's slug.")
    author = django_filters.CharFilter(field_name="author", lookup_expr="icontains", max_length=200)
    published_after = django_filters.IsoDateTimeFilter(field_name="published_at", lookup_expr="gte")
    published_before = django_filters.IsoDateTimeFilter(field_name="published_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(fields=(("published_at", "published_at"), ("title", "title")))

    class Meta:
        model = Article
        fields = ["search", "tag", "author", "published_after", "published_before"]

    def filter_search(self, queryset, name, value):
        # The search itself lives in the selector, so pages and API match the same way.
        return queryset.filter(pk__in=selectors.article_list(search=value).values("pk"))


class BookFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, help_text="Words in the title or authors, or an ISBN."
    )
    tag = django_filters.CharFilter(field_name="tags__slug", max_length=120, distinct=True, help_text="A tag's slug.")
    author = django_filters.CharFilter(field_name="authors", lookup_expr="icontains", max_length=200)
    year = django_filters.NumberFilter(field_name="year", min_value=-9999, max_value=9999)
    year_min = django_filters.NumberFilter(field_name="year", lookup_expr="gte", min_value=-9999, max_value=9999)
    year_max = django_filters.NumberFilter(field_name="year", lookup_expr="lte", min_value=-9999, max_value=9999)
    ordering = django_filters.OrderingFilter(fields=(("title", "title"), ("year", "year")))

    class Meta:
        model = Book
        fields = ["search", "tag", "author", "year", "year_min", "year_max"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.book_list(search=value).values("pk"))
