"""Provides the reads of the content site: lists with search and tags, details, a reader's history."""
from __future__ import annotations

import functools
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

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
    since = connection.ops.adapt_datetimefield_value(timezone.now() - reopen_within)
    mine = [user.pk, ct.pk]
    rows = list(model.objects.raw(
        _item_page_sql(connection.vendor, model, field.column),
        [*mine, *mine, *mine, since, True, field.get_db_prep_value(value, connection)],
    ))
    if not rows:
        return None
    item = rows[0]
    item.viewer_not_interested = bool(item.viewer_not_interested)
    return item


@functools.lru_cache(maxsize=8)
def _item_page_sql(vendor: str, model, column: str) -> str:
    """Return the SQL of ``item_page_get`` for ``model``, built once: building the ORM query cost more than running it."""
    q = connection.ops.quote_name
    item = q(model._meta.db_table)

    def mine(interaction) -> str:
        return (f"FROM {q(interaction._meta.db_table)} x WHERE x.{q('user_id')} = %s "
                f"AND x.{q('content_type_id')} = %s AND x.{q('object_id')} = i.{q(model._meta.pk.column)}")

    return (
        f"SELECT i.*, (SELECT x.{q('stars')} {mine(Rating)} LIMIT 1) AS viewer_stars, "
        f"(SELECT COUNT(*) {mine(NotInterested)}) AS viewer_not_interested, "
        f"(SELECT x.{q('id')} {mine(Read)} AND x.{q('created_at')} >= %s ORDER BY x.{q('created_at')} DESC LIMIT 1)"
        f" AS viewer_read_id "
        f"FROM {item} i WHERE i.{q('is_published')} = %s AND i.{q(column)} = %s"
    )


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
