"""Provides the loading of the shipped demo data (books, articles and their real readers) into the database.

The files in ``articles/demo_data/`` are made by ``scripts/make_demo_data.py`` from goodbooks-10k and the
IBM Watson Studio community articles (see ``NOTICE``). :func:`demo_data_load` imports them in one
transaction: tags, books, articles, one user per real reader (``gb_<goodbooks user id>`` and
``ibm_<12 hex characters of the e-mail hash>``, with unusable passwords), the goodbooks ratings, and reads.

What is real and what is synthetic
----------------------------------
Real: the books, articles, readers, who rated what with how many stars, and who viewed which article
how many times. Synthetic, because the data sets have no times and no reading measurements, all
derived deterministically from BLAKE2 hashes of (reader, item, view number), so every load gives the
same values:

* Article ``published_at``: spread over the two years before the manifest's ``time_anchor`` (set by the
  script). All times are moved by whole days so that the anchor falls on the day of loading, so the
  data always looks recent; nothing lands after the moment of loading.
* Article reads: one ``Read`` per real view. Its time falls between the article's publication and now,
  most of them soon after publication (``published + age * u**2``). Dwell time is log-normal around the
  article's reading time (its words at ``WORDS_PER_MINUTE``, at least half a minute), never below
  ``MIN_VIEW_SECONDS``, so no imported view looks like a bounce; a repeat view of the same article
  lasts half as long. Progress is dwell over reading time, capped at 1.
* Book ratings: each goodbooks reader is active from a day in the last two years until now; each
  rated book gets one ``Read`` at a time in that window (a rating implies the book was read: the
  visit's dwell is log-normal around a minute plus the description's reading time, progress grows
  with the stars, 0.5-1), and the ``Rating`` is made when that visit ends.
* Books are "added to the catalogue" (``created_at``) two to three years ago, before any reading.
* A reader's ``date_joined`` is a day before their first activity.

The demo account (``demo``) takes over the full history of two real readers named in
``manifest.json``: a goodbooks reader with about 50 varied ratings and an IBM reader with about 20
article views; those two readers get no account of their own.
"""
from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import IO

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from recommendations.db.bulk import rows_insert

from .demo_files import ArticleRow, BookRow, DemoData, DemoDataError, demo_data_read
from .models import WORDS_PER_MINUTE, Article, Book, NotInterested, Rating, Read, Tag
from .recommendation_adapter import served_results_invalidate

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "demo_data"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-reader"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-editor"
BOOK_READER_PREFIX = "gb_"
ARTICLE_READER_PREFIX = "ibm_"
READER_USERNAME_REGEX = r"^(gb_[0-9]+|ibm_[0-9a-f]{12})$"
BATCH_SIZE = 5000
SALT = "bre-demo-v1"
MIN_VIEW_SECONDS = 12.0

# --------------------------------------------------------------------------- synthetic, deterministic values


def _units(*parts: object, n: int = 1) -> list[float]:
    """Return ``n`` (at most 8) numbers in [0, 1) determined by ``parts`` (the same on every machine and run)."""
    digest = hashlib.blake2b("\x1f".join(map(str, (SALT, *parts))).encode(), digest_size=8 * n).digest()
    return [int.from_bytes(digest[i: i + 8], "big") / 2**64 for i in range(0, 8 * n, 8)]


def _unit(*parts: object) -> float:
    """Return one number in [0, 1) determined by ``parts``."""
    return _units(*parts)[0]


def _normal(u1: float, u2: float) -> float:
    """Return a standard normal number from two uniform ones (Box-Muller)."""
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@functools.lru_cache(maxsize=8192)  # called once per read, for a few thousand distinct texts
def _reading_seconds(text: str) -> float:
    return len(text.split()) / WORDS_PER_MINUTE * 60.0


def _article_view(user: str, article: ArticleRow, published: datetime, k: int, now: datetime
                  ) -> tuple[datetime, float, float]:
    """Return (created_at, dwell_seconds, progress) of view ``k`` of ``article`` by ``user``."""
    u_time, u1, u2, u_progress = _units("view", user, article.external_id, k, n=4)
    age = max((now - published).total_seconds(), 3600.0)
    created = published + timedelta(seconds=age * u_time**2)
    expected = max(30.0, _reading_seconds(article.body or article.summary))
    dwell = expected * math.exp(-0.35 + 0.6 * _normal(u1, u2))
    if k:
        dwell *= 0.5  # a repeat visit: the reader looks something up
    dwell = min(max(dwell, MIN_VIEW_SECONDS), 3 * 3600.0)
    progress = min(1.0, dwell / expected * (0.85 + 0.15 * u_progress))
    return min(created, now), round(dwell, 1), round(progress, 3)


def _book_read(user: str, book: BookRow, stars: int, start: datetime, now: datetime
               ) -> tuple[datetime, float, float]:
    """Return (created_at, dwell_seconds, progress) of the visit in which ``user`` rated ``book``."""
    u_time, u1, u2, u_progress = _units("read", user, book.external_id, n=4)
    created = start + (now - timedelta(hours=1) - start) * u_time
    expected = 60.0 + _reading_seconds(book.description)
    dwell = min(max(expected * math.exp(-0.2 + 0.5 * _normal(u1, u2)), 15.0), 1800.0)
    progress = min(1.0, 0.5 + 0.1 * stars + 0.2 * (u_progress - 0.5))
    return created, round(dwell, 1), round(progress, 3)


# --------------------------------------------------------------------------- database


def demo_data_is_loaded(*, demo_username: str = DEMO_USERNAME) -> bool:
    """Return whether the demo data has been loaded (demo books and the demo user exist)."""
    return (Book.objects.exclude(external_id="").exists()
            and get_user_model().objects.filter(username=demo_username).exists())


def _raw_delete(queryset) -> int:
    # Deliberately skips the per-row post_delete signals: they would queue one recommendation
    # refresh per row (hundreds of thousands); a reload is followed by a full build instead.
    return queryset._raw_delete(queryset.db)


def demo_data_delete(*, demo_username: str = DEMO_USERNAME) -> dict[str, int]:
    """Delete what the demo import made: imported items, their reads and ratings, imported readers, demo user."""
    User = get_user_model()
    readers = User.objects.filter(
        Q(username=demo_username) | Q(username__regex=READER_USERNAME_REGEX, password__startswith="!")
    )
    counts = {"interactions": 0}
    for model in (Read, Rating, NotInterested):
        counts["interactions"] += _raw_delete(model.objects.filter(user__in=readers.values("pk")))
        for item_model in (Book, Article):
            ct = ContentType.objects.get_for_model(item_model)
            imported = item_model.objects.exclude(external_id="").values("pk")
            counts["interactions"] += _raw_delete(model.objects.filter(content_type=ct, object_id__in=imported))
    counts["users"] = readers.delete()[1].get(User._meta.label, 0)
    counts["books"] = Book.objects.exclude(external_id="").delete()[1].get(Book._meta.label, 0)
    counts["articles"] = Article.objects.exclude(external_id="").delete()[1].get(Article._meta.label, 0)
    counts["tags"] = Tag.objects.filter(book=None, article=None).delete()[1].get(Tag._meta.label, 0)
    return counts


class _Progress:
    def __init__(self, stdout: IO[str] | None) -> None:
        self.stdout, self.started, self.cpu_started = stdout, time.monotonic(), time.process_time()

    def __call__(self, message: str) -> None:
        if self.stdout is not None:
            # CPU time too: on a shared machine the wall time says little about the loader itself.
            wall, cpu = time.monotonic() - self.started, time.process_time() - self.cpu_started
            self.stdout.write(f"[{wall:5.1f}s, cpu {cpu:4.1f}s] {message}\n")
            self.stdout.flush()


def _bulk(model, objects: Iterable, batch_size: int = BATCH_SIZE) -> int:
    """Insert ``objects`` in batches without holding them all in memory; return how many."""
    total, batch = 0, []
    for obj in objects:
        batch.append(obj)
        if len(batch) >= batch_size:
            model.objects.bulk_create(batch, batch_size=batch_size)
            total, batch = total + len(batch), []
    if batch:
        model.objects.bulk_create(batch, batch_size=batch_size)
        total += len(batch)
    return total


def _unique_slug(base: str, taken: set[str], fallback: str, max_length: int) -> str:
    base = (slugify(base)[:max_length].rstrip("-")) or fallback
    slug, n = base, 2
    while slug in taken:
        suffix = f"-{n}"
        slug, n = base[: max_length - len(suffix)] + suffix, n + 1
    taken.add(slug)
    return slug


def demo_data_load(
    *,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    demo_username: str = DEMO_USERNAME,
    demo_password: str = DEMO_PASSWORD,
    admin_username: str | None = ADMIN_USERNAME,
    admin_password: str = ADMIN_PASSWORD,
    force: bool = False,
    now: datetime | None = None,
    stdout: IO[str] | None = None,
) -> dict[str, int | bool]:
    """Load the demo data the first time only (or again with ``force``); return counts of what was made.

    Everything happens in one transaction: bad input raises DemoDataError (naming the file and
    line) before anything is stored, and a database error leaves nothing half-imported. When the data
    is already loaded and ``force`` is false, nothing changes and ``{"already_loaded": True}`` is
    returned. ``admin_username=None`` skips the staff account.
    """
    say = _Progress(stdout)
    try:
        loaded = not force and demo_data_is_loaded(demo_username=demo_username)
    except DatabaseError as exc:
        raise DemoDataError(f"cannot read the database ({exc}); is it running and migrated?") from exc
    if loaded:
        say(f"Demo data already loaded (user {demo_username!r} and the books exist); nothing to do.")
        return {"already_loaded": True}

    data = demo_data_read(data_dir=data_dir)
    say(f"Read {data_dir}: {len(data.books):,} books, {len(data.articles):,} articles, "
        f"{len(data.book_ratings):,} ratings, {len(data.article_reads):,} reader-article pairs")
    now = (now or timezone.now()).replace(microsecond=0)
    # Move the synthetic times by whole days so the anchor falls on the day of loading.
    shift = timedelta(days=(now.date() - data.time_anchor.astimezone(dt_timezone.utc).date()).days)

    try:
        with transaction.atomic():
            counts = _load(data, shift=shift, now=now, demo_username=demo_username, demo_password=demo_password,
                           admin_username=admin_username, admin_password=admin_password, force=force, say=say)
            # Bulk writes send no signals: forget every served result (stored picks, cached pages) here.
            served_results_invalidate()
    except DatabaseError as exc:
        raise DemoDataError(f"the database refused the demo data, nothing was stored ({exc})") from exc
    say("Done.")
    return counts


def _previous_check(*, demo_username: str, force: bool, say) -> None:
    """Delete the previous demo data with ``force``; otherwise refuse to load over half of it."""
    if force:
        deleted = demo_data_delete(demo_username=demo_username)
        say(f"Deleted the previous demo data: {deleted}")
    elif (Book.objects.exclude(external_id="").exists() or Article.objects.exclude(external_id="").exists()
          or get_user_model().objects.filter(username=demo_username).exists()):
        raise DemoDataError(
            "the database already holds imported books/articles or the demo user, but not both; "
            "run `manage.py load_demo_data --force` to replace them"
        )


def _tags_load(data: DemoData) -> tuple[dict[str, int], int]:
    """Create the missing tags; return every tag's id by name and how many were created."""
    names = list(dict.fromkeys(t for row in (*data.books, *data.articles) for t in row.tags))
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk")) if names else {}
    taken = set(Tag.objects.values_list("slug", flat=True))
    new_tags = [Tag(name=n, slug=_unique_slug(n, taken, "tag", 120)) for n in names if n not in tag_ids]
    Tag.objects.bulk_create(new_tags, batch_size=BATCH_SIZE)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "pk")) if names else {}
    return tag_ids, len(new_tags)


def _books_load(data: DemoData, tag_ids: dict[str, int], now: datetime) -> dict[str, int]:
    """Create the books and their tags; return their ids by external id."""
    catalogue_start = now - timedelta(days=730)  # books are older than every read
    Book.objects.bulk_create(
        [Book(external_id=b.external_id, title=b.title, authors=b.authors, year=b.year, isbn=b.isbn,
              description=b.description, cover_url=b.cover_url,
              created_at=catalogue_start - timedelta(days=365 * _unit("added", b.external_id)))
         for b in data.books],
        batch_size=BATCH_SIZE,
    )
    book_pk = dict(Book.objects.exclude(external_id="").values_list("external_id", "pk"))
    BookTag = Book.tags.through
    _bulk(BookTag, (BookTag(book_id=book_pk[b.external_id], tag_id=tag_ids[t]) for b in data.books for t in b.tags))
    return book_pk


def _articles_load(data: DemoData, tag_ids: dict[str, int], published: dict[str, datetime]) -> dict[str, int]:
    """Create the articles and their tags; return their ids by external id."""
    taken = set(Article.objects.values_list("slug", flat=True))
    Article.objects.bulk_create(
        [Article(external_id=a.external_id, title=a.title,
                 slug=_unique_slug(a.title[:80], taken, f"article-{slugify(a.external_id)}", 320),
                 summary=a.summary, body=a.body, author=a.author, published_at=published[a.external_id],
                 created_at=published[a.external_id])
         for a in data.articles],
        batch_size=BATCH_SIZE,
    )
    article_pk = dict(Article.objects.exclude(external_id="").values_list("external_id", "pk"))
    ArticleTag = Article.tags.through
    _bulk(ArticleTag, (ArticleTag(article_id=article_pk[a.external_id], tag_id=tag_ids[t])
                       for a in data.articles for t in a.tags))
    return article_pk


@dataclass(frozen=True)
class _Readers:
    """Who the demo readers are: their usernames, since when they read books, and their article views."""

    data: DemoData
    demo_username: str
    book_since: dict[str, datetime]  # goodbooks reader -> start of their active window
    views: list[tuple[str, str, tuple[datetime, float, float]]]  # (reader, article, (time, dwell, progress))

    @classmethod
    def make(cls, data: DemoData, demo_username: str, published: dict[str, datetime], now: datetime) -> _Readers:
        since: dict[str, datetime] = {}
        for user, _, _ in data.book_ratings:
            if user not in since:
                since[user] = now - timedelta(days=730 * (0.35 + 0.65 * _unit("since", user)))
        articles_by_id = {a.external_id: a for a in data.articles}
        views = [(user, article, _article_view(user, articles_by_id[article], published[article], k, now))
                 for user, article, n_views in data.article_reads for k in range(n_views)]
        return cls(data, demo_username, since, views)

    def book_reader(self, user: str) -> str:
        return self.demo_username if user == self.data.demo_book_reader else f"{BOOK_READER_PREFIX}{user}"

    def article_reader(self, user: str) -> str:
        return self.demo_username if user == self.data.demo_article_reader else f"{ARTICLE_READER_PREFIX}{user}"

    def first_seen(self) -> dict[str, datetime]:
        """Username -> the time of their first activity."""
        first: dict[str, datetime] = {}
        for user, start in self.book_since.items():
            name = self.book_reader(user)
            first[name] = min(first.get(name, start), start)
        for user, _, (when, _, _) in self.views:
            name = self.article_reader(user)
            first[name] = min(first.get(name, when), when)
        return first


def _readers_load(readers: _Readers, *, demo_password: str) -> tuple[dict[str, int], int]:
    """Create one account per reader and the demo account; return user ids by username and the readers made."""
    User = get_user_model()
    demo_username = readers.demo_username
    first_seen = readers.first_seen()
    existing = set(User.objects.filter(
        Q(username__startswith=BOOK_READER_PREFIX) | Q(username__startswith=ARTICLE_READER_PREFIX)
    ).values_list("username", flat=True))
    clash = sorted(existing & set(first_seen))
    if clash:
        raise DemoDataError(f"{len(clash)} reader account(s) already exist, e.g. {clash[0]!r}; "
                            "run `manage.py load_demo_data --force` or rename them")
    unusable = make_password(None)  # one "!"-prefixed value: nobody can log in as an imported reader
    _bulk(User, (User(username=name, password=unusable,
                      date_joined=when - timedelta(days=1) * (0.2 + 0.8 * _unit("joined", name)))
                 for name, when in sorted(first_seen.items()) if name != demo_username))
    demo_user = User.objects.create_user(username=demo_username, password=demo_password)
    if demo_username in first_seen:
        demo_user.date_joined = first_seen[demo_username] - timedelta(hours=3)
        demo_user.save(update_fields=["date_joined"])
    user_pk = dict(User.objects.filter(Q(username__regex=READER_USERNAME_REGEX) | Q(username=demo_username))
                   .values_list("username", "pk"))
    return user_pk, len(first_seen) - (demo_username in first_seen)


RATING_FIELDS = ("user", "content_type", "object_id", "stars", "created_at", "updated_at")
READ_FIELDS = ("user", "content_type", "object_id", "created_at", "dwell_seconds", "progress", "updated_at")


def _interactions_load(readers: _Readers, user_pk: dict[str, int], book_pk: dict[str, int],
                       article_pk: dict[str, int], now: datetime, counts: dict, say) -> None:
    """Insert the ratings, the read each rating implies, and the article views."""
    book_ct = ContentType.objects.get_for_model(Book).pk
    article_ct = ContentType.objects.get_for_model(Article).pk
    books_by_id = {b.external_id: b for b in readers.data.books}
    visits = [(user, book, stars, *_book_read(user, books_by_id[book], stars, readers.book_since[user], now))
              for user, book, stars in readers.data.book_ratings]
    counts["ratings"] = rows_insert(Rating, RATING_FIELDS, (
        (user_pk[readers.book_reader(user)], book_ct, book_pk[book], stars,
         when + timedelta(seconds=dwell), when + timedelta(seconds=dwell))
        for user, book, stars, when, dwell, _ in visits))
    say(f"Loading ratings… {counts['ratings']:,}")
    counts["book_reads"] = rows_insert(Read, READ_FIELDS, (
        (user_pk[readers.book_reader(user)], book_ct, book_pk[book], when, dwell, progress,
         when + timedelta(seconds=dwell))
        for user, book, _, when, dwell, progress in visits))
    say(f"Loading book reads… {counts['book_reads']:,}")
    counts["article_reads"] = rows_insert(Read, READ_FIELDS, (
        (user_pk[readers.article_reader(user)], article_ct, article_pk[article], when, dwell, progress,
         when + timedelta(seconds=dwell))
        for user, article, (when, dwell, progress) in readers.views))
    say(f"Loading article reads… {counts['article_reads']:,}")


def _load(data: DemoData, *, shift: timedelta, now: datetime, demo_username: str, demo_password: str,
          admin_username: str | None, admin_password: str, force: bool, say) -> dict[str, int | bool]:
    counts: dict[str, int | bool] = {"already_loaded": False}
    _previous_check(demo_username=demo_username, force=force, say=say)
    tag_ids, counts["tags"] = _tags_load(data)
    say(f"Loading tags… {counts['tags']:,}")
    book_pk = _books_load(data, tag_ids, now)
    counts["books"] = len(data.books)
    say(f"Loading books… {len(data.books):,}")
    published = {a.external_id: min(a.published_at + shift, now) for a in data.articles}
    article_pk = _articles_load(data, tag_ids, published)
    counts["articles"] = len(data.articles)
    say(f"Loading articles… {len(data.articles):,}")
    readers = _Readers.make(data, demo_username, published, now)
    user_pk, counts["readers"] = _readers_load(readers, demo_password=demo_password)
    say(f"Loading readers… {counts['readers']:,} (+ demo user {demo_username!r})")
    _interactions_load(readers, user_pk, book_pk, article_pk, now, counts, say)
    User = get_user_model()
    if admin_username and not User.objects.filter(username=admin_username).exists():
        User.objects.create_superuser(username=admin_username, email="", password=admin_password)
        counts["admin_created"] = True
        say(f"Created the staff account {admin_username!r}")
    return counts
