"""Provides csv_import(): books, articles, ratings or reads from a CSV file, all rows or none.

File formats (UTF-8, optionally gzip-compressed when the name ends in ``.gz``; a header row names
the columns; columns in brackets are optional, other columns are ignored):

``books``     external_id, title, [authors, year, isbn, description, cover_url, tags]
``articles``  external_id, title, [summary, body, author, tags, published_at]
``ratings``   username, item_type (``book`` or ``article``), item (its external_id), stars, [created_at]
``reads``     username, item_type, item, [created_at, dwell_seconds, progress]

Books and articles are matched on ``external_id``: existing ones are updated (only the columns the
file has), new ones created. Tags are ``|``-separated names; missing tags are created. A rating of
an item the user already rated replaces it. Reads are always added. Dates are ISO 8601 (UTC when
they carry no offset) and default to now.

Every row is checked before anything is written, and the writes run in one transaction: a bad row
raises :class:`~articles.csv_input.CsvInputError` naming the file and the line, and nothing is stored.
Rows are written in bulk, which sends no ``post_save`` signals: run a full recommendations build
afterwards (``manage.py recommendations build``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify

from .csv_input import (
    CsvInputError,
    cell_datetime,
    cell_float,
    cell_int,
    cell_tags,
    cell_text,
    cell_url,
    check_unique,
    csv_rows,
)
from .models import Article, Book, Rating, Read, Tag
from .recommendation_adapter import served_results_invalidate

KINDS = ("books", "articles", "ratings", "reads")
REQUIRED = {
    "books": ("external_id", "title"),
    "articles": ("external_id", "title"),
    "ratings": ("username", "item_type", "item", "stars"),
    "reads": ("username", "item_type", "item"),
}
ITEM_MODELS = {"book": Book, "article": Article}
BATCH_SIZE = 1000
MAX_DWELL_SECONDS = 7 * 24 * 3600


@dataclass
class _ItemRow:
    line: int
    external_id: str
    values: dict = field(default_factory=dict)
    tags: tuple[str, ...] | None = None


def _item_rows(kind: str, path: Path, now: datetime) -> list[_ItemRow]:
    rows: list[_ItemRow] = []
    seen: set = set()
    for line, row in csv_rows(path, REQUIRED[kind]):
        external_id = cell_text(row, "external_id", path=path, line=line, max_length=64, required=True)
        check_unique(seen, external_id, "external_id", path=path, line=line)
        values = {"title": cell_text(row, "title", path=path, line=line, max_length=300, required=True)}
        if kind == "books":
            texts = {"authors": 500, "isbn": 20, "description": None}
            if "year" in row:
                values["year"] = cell_int(row, "year", path=path, line=line, low=-5000, high=3000, required=False)
            if "cover_url" in row:
                values["cover_url"] = cell_url(row, "cover_url", path=path, line=line)
        else:
            texts = {"summary": None, "body": None, "author": 200}
            if "published_at" in row:
                values["published_at"] = cell_datetime(row, "published_at", path=path, line=line, default=now)
        for column, max_length in texts.items():
            if column in row:
                values[column] = cell_text(row, column, path=path, line=line, max_length=max_length)
        tags = cell_tags(row, path=path, line=line) if "tags" in row else None
        rows.append(_ItemRow(line, external_id, values, tags))
    return rows


def _tag_ids(names: set[str]) -> dict[str, int]:
    existing = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    taken = set(Tag.objects.values_list("slug", flat=True))
    new = []
    for name in sorted(names - existing.keys()):
        base = slugify(name)[:110] or "tag"
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        new.append(Tag(name=name, slug=slug))
    Tag.objects.bulk_create(new)
    return dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))


def _import_items(kind: str, rows: list[_ItemRow], now: datetime) -> dict[str, int]:
    model = Book if kind == "books" else Article
    existing = {obj.external_id: obj for obj in model.objects.filter(external_id__in=[r.external_id for r in rows])}
    to_create, to_update, update_fields = [], [], set()
    taken = set(Article.objects.values_list("slug", flat=True)) if model is Article else set()
    for row in rows:
        obj = existing.get(row.external_id)
        if obj is None:
            obj = model(external_id=row.external_id, **row.values)
            if model is Article:
                base = slugify(row.values["title"])[:80].rstrip("-") or f"article-{slugify(row.external_id)}"
                slug, n = base, 2
                while slug in taken:
                    slug, n = f"{base}-{n}", n + 1
                taken.add(slug)
                obj.slug = slug
                obj.published_at = row.values.get("published_at") or now
            to_create.append(obj)
        else:
            for name, value in row.values.items():
                setattr(obj, name, value)
            update_fields.update(row.values)
            to_update.append(obj)
    model.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    if to_update:
        model.objects.bulk_update(to_update, sorted(update_fields), batch_size=BATCH_SIZE)

    tagged = [r for r in rows if r.tags is not None]
    if tagged:
        pks = dict(model.objects.filter(external_id__in=[r.external_id for r in tagged])
                   .values_list("external_id", "pk"))
        tag_ids = _tag_ids({t for r in tagged for t in r.tags})
        through = model.tags.through
        fk = f"{model._meta.model_name}_id"
        through.objects.filter(**{f"{fk}__in": list(pks.values())}).delete()
        through.objects.bulk_create(
            [through(**{fk: pks[r.external_id], "tag_id": tag_ids[t]}) for r in tagged for t in r.tags],
            batch_size=BATCH_SIZE,
        )
    return {"created": len(to_create), "updated": len(to_update)}


def _interaction_rows(kind: str, path: Path, now: datetime) -> list[tuple]:
    """Return [(line, username, item model, external_id, field values)], each row checked on its own."""
    rows = []
    seen: set = set()
    for line, row in csv_rows(path, REQUIRED[kind]):
        username = cell_text(row, "username", path=path, line=line, max_length=150, required=True)
        item_type = cell_text(row, "item_type", path=path, line=line, required=True).lower()
        if item_type not in ITEM_MODELS:
            raise CsvInputError(f"item_type must be 'book' or 'article', not {item_type!r}", path=path, line=line)
        item = cell_text(row, "item", path=path, line=line, max_length=64, required=True)
        created = cell_datetime(row, "created_at", path=path, line=line, default=now)
        if created > now:
            raise CsvInputError(f"created_at {created.isoformat()} is in the future", path=path, line=line)
        if kind == "ratings":
            check_unique(seen, (username, item_type, item), "rating of (username, item_type, item)",
                         path=path, line=line)
            values = {"stars": cell_int(row, "stars", path=path, line=line, low=1, high=5),
                      "created_at": created, "updated_at": created}
        else:
            values = {
                "created_at": created,
                "dwell_seconds": cell_float(row, "dwell_seconds", path=path, line=line, low=0.0,
                                            high=MAX_DWELL_SECONDS, default=0.0),
                "progress": cell_float(row, "progress", path=path, line=line, low=0.0, high=1.0, default=0.0),
            }
        rows.append((line, username, ITEM_MODELS[item_type], item, values))
    return rows


def _import_interactions(kind: str, rows: list[tuple], path: Path) -> dict[str, int]:
    User = get_user_model()
    usernames = sorted({r[1] for r in rows})
    user_pk: dict[str, int] = {}
    for start in range(0, len(usernames), 500):  # stay under SQLite's limit of query parameters
        user_pk.update(User.objects.filter(username__in=usernames[start:start + 500]).values_list("username", "pk"))
    item_pk: dict[type, dict[str, int]] = {}
    for model in ITEM_MODELS.values():
        wanted = sorted({r[3] for r in rows if r[2] is model})
        item_pk[model] = {}
        for start in range(0, len(wanted), 500):
            item_pk[model].update(model.objects.filter(external_id__in=wanted[start:start + 500])
                                  .values_list("external_id", "pk"))
    objects = []
    for line, username, model, item, values in rows:
        if username not in user_pk:
            raise CsvInputError(f"there is no user {username!r}", path=path, line=line)
        if item not in item_pk[model]:
            raise CsvInputError(f"there is no {model._meta.model_name} with external_id {item!r}", path=path, line=line)
        objects.append(((user_pk[username], ContentType.objects.get_for_model(model).pk, item_pk[model][item]), values))

    if kind == "reads":
        Read.objects.bulk_create(
            [Read(user_id=u, content_type_id=ct, object_id=o, **values) for (u, ct, o), values in objects],
            batch_size=BATCH_SIZE,
        )
        return {"created": len(objects), "updated": 0}
    keys = {key for key, _ in objects}
    user_ids = sorted({u for u, _, _ in keys})
    found = {}
    for start in range(0, len(user_ids), 500):
        for rating in Rating.objects.filter(user_id__in=user_ids[start:start + 500]):
            key = (rating.user_id, rating.content_type_id, rating.object_id)
            if key in keys:
                found[key] = rating
    to_create, to_update = [], []
    for key, values in objects:
        rating = found.get(key)
        if rating is None:
            to_create.append(Rating(user_id=key[0], content_type_id=key[1], object_id=key[2], **values))
        else:
            rating.stars, rating.updated_at = values["stars"], values["updated_at"]
            to_update.append(rating)
    Rating.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    Rating.objects.bulk_update(to_update, ["stars", "updated_at"], batch_size=BATCH_SIZE)
    return {"created": len(to_create), "updated": len(to_update)}


def csv_import(*, kind: str, path: Path | str, dry_run: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Import ``path`` as ``kind`` (see the module docstring); return ``{"created": n, "updated": m}``.

    With ``dry_run`` everything is checked against the database, then rolled back.
    """
    if kind not in KINDS:
        raise CsvInputError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    path = Path(path)
    if not path.is_file():
        raise CsvInputError("no such file", path=path)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            if kind in ("books", "articles"):
                counts = _import_items(kind, _item_rows(kind, path, now), now)
            else:
                counts = _import_interactions(kind, _interaction_rows(kind, path, now), path)
            # Bulk writes send no signals: forget every served result (stored picks, cached pages) here.
            served_results_invalidate()
            if dry_run:
                transaction.set_rollback(True)
    except DatabaseError as exc:
        raise CsvInputError(f"the database refused the data, nothing was stored ({exc})", path=path) from exc
    return counts
