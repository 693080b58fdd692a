"""Provides the reading and checking of the demo data files: ``demo_data_read`` returns them parsed, or names the bad line."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

from django.utils import timezone

from .csv_input import CsvInputError, cell_datetime, cell_int, cell_tags, cell_text, cell_url, check_unique, csv_rows

FILES = {
    "books": ("external_id", "title", "authors", "year", "isbn", "description", "cover_url", "tags"),
    "articles": ("external_id", "title", "summary", "body", "author", "tags", "published_at"),
    "book_ratings": ("user", "book", "stars"),
    "article_reads": ("user", "article", "views"),
}


DemoDataError = CsvInputError  # bad demo data is reported like any other bad CSV input


@dataclass(frozen=True)
class BookRow:
    line: int
    external_id: str
    title: str
    authors: str
    year: int | None
    isbn: str
    description: str
    cover_url: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ArticleRow:
    line: int
    external_id: str
    title: str
    summary: str
    body: str
    author: str
    tags: tuple[str, ...]
    published_at: datetime


@dataclass(frozen=True)
class DemoData:
    """The parsed, checked content of a demo data directory."""

    books: list[BookRow]
    articles: list[ArticleRow]
    book_ratings: list[tuple[str, str, int]]  # (user, book external id, stars)
    article_reads: list[tuple[str, str, int]]  # (user, article external id, views)
    time_anchor: datetime
    demo_book_reader: str
    demo_article_reader: str


def _data_file(data_dir: Path, name: str) -> Path:
    for candidate in (data_dir / f"{name}.csv.gz", data_dir / f"{name}.csv"):
        if candidate.is_file():
            return candidate
    raise DemoDataError(f"missing file (expected {name}.csv.gz or {name}.csv)", path=data_dir / f"{name}.csv.gz")


def _manifest_read(data_dir: Path) -> tuple[datetime, str, str]:
    """Return the manifest's time anchor and the two readers the demo account takes over."""
    manifest_path = data_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        anchor = datetime.fromisoformat(manifest["time_anchor"])
        demo = manifest["demo"]
        demo_book_reader, demo_article_reader = str(demo["goodbooks_user"]), str(demo["ibm_user"])
    except FileNotFoundError:
        raise DemoDataError("missing file", path=manifest_path) from None
    except json.JSONDecodeError as exc:
        raise DemoDataError(f"not valid JSON ({exc.msg})", path=manifest_path, line=exc.lineno) from None
    except (UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DemoDataError(f"needs time_anchor (ISO date) and demo.goodbooks_user, demo.ibm_user ({exc!r})",
                            path=manifest_path) from None
    if timezone.is_naive(anchor):
        anchor = anchor.replace(tzinfo=dt_timezone.utc)
    return anchor, demo_book_reader, demo_article_reader


def _books_read(data_dir: Path) -> list[BookRow]:
    books: list[BookRow] = []
    path = _data_file(data_dir, "books")
    seen: set = set()
    for line, row in csv_rows(path, FILES["books"]):
        external_id = cell_text(row, "external_id", path=path, line=line, max_length=64, required=True)
        check_unique(seen, external_id, "book external_id", path=path, line=line)
        cover = cell_url(row, "cover_url", path=path, line=line)
        books.append(BookRow(
            line=line, external_id=external_id,
            title=cell_text(row, "title", path=path, line=line, max_length=300, required=True),
            authors=cell_text(row, "authors", path=path, line=line, max_length=500),
            year=cell_int(row, "year", path=path, line=line, low=-5000, high=3000, required=False),
            isbn=cell_text(row, "isbn", path=path, line=line, max_length=20),
            description=cell_text(row, "description", path=path, line=line),
            cover_url=cover, tags=cell_tags(row, path=path, line=line),
        ))
    return books


def _articles_read(data_dir: Path) -> list[ArticleRow]:
    articles: list[ArticleRow] = []
    path = _data_file(data_dir, "articles")
    seen: set = set()
    for line, row in csv_rows(path, FILES["articles"]):
        external_id = cell_text(row, "external_id", path=path, line=line, max_length=64, required=True)
        check_unique(seen, external_id, "article external_id", path=path, line=line)
        published = cell_datetime(row, "published_at", path=path, line=line)
        articles.append(ArticleRow(
            line=line, external_id=external_id,
            title=cell_text(row, "title", path=path, line=line, max_length=300, required=True),
            summary=cell_text(row, "summary", path=path, line=line),
            body=cell_text(row, "body", path=path, line=line),
            author=cell_text(row, "author", path=path, line=line, max_length=200),
            tags=cell_tags(row, path=path, line=line), published_at=published,
        ))
    return articles


def _ratings_read(data_dir: Path, book_ids: set[str]) -> list[tuple[str, str, int]]:
    ratings: list[tuple[str, str, int]] = []
    path = _data_file(data_dir, "book_ratings")
    seen: set = set()
    for line, row in csv_rows(path, FILES["book_ratings"]):
        user = cell_text(row, "user", path=path, line=line, max_length=40, required=True)
        if not user.isdigit():
            raise DemoDataError(f"user must be a goodbooks user id (digits), not {user!r}", path=path, line=line)
        book = cell_text(row, "book", path=path, line=line, required=True)
        if book not in book_ids:
            raise DemoDataError(f"book {book!r} is not in books", path=path, line=line)
        stars = cell_int(row, "stars", path=path, line=line, low=1, high=5)
        check_unique(seen, (user, book), "rating of (user, book)", path=path, line=line)
        ratings.append((user, book, stars))
    return ratings


def _reads_read(data_dir: Path, article_ids: set[str]) -> list[tuple[str, str, int]]:
    reads: list[tuple[str, str, int]] = []
    path = _data_file(data_dir, "article_reads")
    seen: set = set()
    for line, row in csv_rows(path, FILES["article_reads"]):
        user = cell_text(row, "user", path=path, line=line, required=True).lower()
        if len(user) != 12 or any(c not in "0123456789abcdef" for c in user):
            raise DemoDataError(f"user must be 12 hex characters, not {user!r}", path=path, line=line)
        article = cell_text(row, "article", path=path, line=line, required=True)
        if article not in article_ids:
            raise DemoDataError(f"article {article!r} is not in articles", path=path, line=line)
        views = cell_int(row, "views", path=path, line=line, low=1, high=10_000)
        check_unique(seen, (user, article), "row of (user, article)", path=path, line=line)
        reads.append((user, article, views))
    return reads


def demo_data_read(*, data_dir: Path | str) -> DemoData:
    """Parse and check every file of ``data_dir``; raise DemoDataError naming the file and line."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DemoDataError("the demo data directory does not exist", path=data_dir)
    anchor, demo_book_reader, demo_article_reader = _manifest_read(data_dir)
    books = _books_read(data_dir)
    articles = _articles_read(data_dir)
    ratings = _ratings_read(data_dir, {b.external_id for b in books})
    reads = _reads_read(data_dir, {a.external_id for a in articles})
    manifest_path = data_dir / "manifest.json"
    if demo_book_reader and demo_book_reader not in {u for u, _, _ in ratings}:
        raise DemoDataError(f"demo.goodbooks_user {demo_book_reader!r} has no ratings in book_ratings",
                            path=manifest_path)
    if demo_article_reader and demo_article_reader not in {u for u, _, _ in reads}:
        raise DemoDataError(f"demo.ibm_user {demo_article_reader!r} has no views in article_reads",
                            path=manifest_path)
    return DemoData(books, articles, ratings, reads, anchor, demo_book_reader, demo_article_reader)
