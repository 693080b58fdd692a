"""Provides the reads of the content site: lists with search and tags, details, a reader's history."""
from __future__ import annotations

import functools
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connections, router
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.utils import timezone

from recommendations.db.compiled import CompiledQuery
from recommendations.items import items_by_key

from .models import Article, Book, NotInterested, Rating, Read


def article_list(*, search: str = "", tag: str = "") -> QuerySet[Article]:
    """Return published articles, newest first, matching ``search`` (title, summary, author) and ``tag``."""
    qs = Article.objects.filter(is_published=True).prefetch_related("tags")
    if search:
        qs = qs.filter(Q(title__icontains=search) | Q(summary__icontains=search) | Q(author__icontains=search))
    if tag:
        qs = qs.filter(tags__slug=tag)
    return qs.distinct() if tag else qs


def book_list(*, search: str = "", tag: str = "") -> QuerySet[Book]:
    """Return published books by title, matching ``search`` (title, authors, isbn) and ``tag``."""
    qs = Book.objects.filter(is_published=True).prefetch_related("tags")
    if search:
        qs = qs.filter(Q(title__icontains=search) | Q(authors__icontains=search) | Q(isbn=search))
    if tag:
        qs = qs.filter(tags__slug=tag)
    return qs.distinct() if tag else qs


def new_items(*, model, limit: int = 8) -> list:
    """Return the newest published items of ``model``."""
    order = "-published_at" if model is Article else "-created_at"
    return list(model.objects.filter(is_published=True).order_by(order, "-id")[:limit])


def item_page_get(*, model, user, reopen_within: timedelta, **lookup) -> Article | Book | None:
    """Return the published item of ``model`` matching ``lookup`` with what ``user`` did with it, in one query.

    The item gets ``viewer_stars`` (``user``'s stars or None), ``viewer_not_interested`` and
    ``viewer_read_id`` (their latest read of it within ``reopen_within``, or None); all empty
    for an anonymous user. None when there is no such item. ``lookup`` is one field, e.g. ``pk=3``.
    """
    if user is None or not user.is_authenticated:
        item = model.objects.filter(is_published=True, **lookup).first()
        if item is not None:
            item.viewer_stars, item.viewer_not_interested, item.viewer_read_id = None, False, None
        return item
    (field_name, value), = lookup.items()
    field = model._meta.pk if field_name == "pk" else model._meta.get_field(field_name)
    ct = ContentType.objects.get_for_model(model)
    alias = router.db_for_read(model)
    query = _item_page_query(model, field_name, ct.pk, alias)
    db = connections[alias]
    since = db.ops.adapt_datetimefield_value(timezone.now() - reopen_within)
    item = query.first(user.pk, since, field.get_db_prep_value(value, db))
    if item is not None:
        item.viewer_not_interested = bool(item.viewer_not_interested)
    return item


@functools.lru_cache(maxsize=16)
def _item_page_query(model, field_name: str, ct_id: int, alias: str) -> CompiledQuery:
    """Return ``item_page_get``'s query for ``model``, compiled once: building it cost more than running it."""
    def make(user_id, since, value) -> QuerySet:
        def mine(interaction) -> QuerySet:
            # The values are bound as expressions: integer and date fields would refuse the placeholders.
            return interaction.objects.filter(user_id=Value(user_id), content_type_id=ct_id, object_id=OuterRef("pk"))

        latest_read = mine(Read).filter(created_at__gte=Value(since)).order_by("-created_at")
        return model.objects.filter(is_published=True, **{field_name: Value(value)}).order_by().annotate(
            viewer_stars=Subquery(mine(Rating).values("stars")[:1]),
            viewer_not_interested=Exists(mine(NotInterested)),
            viewer_read_id=Subquery(latest_read.values("pk")[:1]),
        )

    return CompiledQuery(make, alias, values=3)


def user_rating_get(*, user, item) -> Rating | None:
    """Return ``user``'s rating of ``item``, if any."""
    if not user.is_authenticated:
        return None
    ct = ContentType.objects.get_for_model(item)
    return Rating.objects.filter(user=user, content_type=ct, object_id=item.pk).first()


def _attach_items(rows: list) -> list:
    """Set ``row.item_obj`` on interaction rows with one query per item model (no N+1)."""
    objects = items_by_key((row.content_type_id, row.object_id) for row in rows)
    for row in rows:
        row.item_obj = objects.get((row.content_type_id, str(row.object_id)))
    return [row for row in rows if row.item_obj is not None]


def user_reads(*, user, limit: int = 200) -> list[Read]:
    """Return ``user``'s most recent reads with their items."""
    return _attach_items(list(Read.objects.filter(user=user).order_by("-created_at")[:limit]))


def user_ratings(*, user, limit: int = 500) -> list[Rating]:
    """Return ``user``'s ratings, most recent first, with their items."""
    return _attach_items(list(Rating.objects.filter(user=user).order_by("-updated_at")[:limit]))


def user_not_interested_list(*, user) -> list[NotInterested]:
    return _attach_items(list(NotInterested.objects.filter(user=user)))


def user_rating_count(*, user) -> int:
    return Rating.objects.filter(user=user).count() if user.is_authenticated else 0
