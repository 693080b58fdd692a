"""Tests of articles/demo.py and the load_demo_data command: counts, idempotence, bad input, shipped files."""
from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from articles.demo import DEFAULT_DATA_DIR, demo_data_load, demo_data_read
from articles.models import Article, Book, NotInterested, Rating, Read, Tag

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)

BOOKS = [
    ["external_id", "title", "authors", "year", "isbn", "description", "cover_url", "tags"],
    ["1", "The Hunger Games (The Hunger Games, #1)", "Suzanne Collins", "2008", "0439023483",
     "A girl fights for her life on television.", "https://images.example.org/1.jpg", "young adult|dystopia"],
    ["2", "Harry Potter and the Sorcerer's Stone", "J.K. Rowling, Mary GrandPré", "1997", "",
     "", "", "fantasy|young adult"],
    ["3", "The Odyssey", "Homer", "-720", "", "Multi-line\ndescription, with \"quotes\".", "", ""],
]
ARTICLES = [
    ["external_id", "title", "summary", "body", "author", "tags", "published_at"],
    ["0", "Detect Malfunctioning IoT Sensors", "Detect bad readings.", "Body text " * 200, "", "iot|python",
     "2026-10-01T10:00:00+00:00"],
    ["1", "Communicating data science", "See the forest.", "", "Megan Risdal", "",
     "2025-06-01T08:00:00+00:00"],
]
RATINGS = [
    ["user", "book", "stars"],
    ["10", "1", "5"], ["10", "2", "3"], ["10", "3", "1"],  # the demo reader
    ["11", "1", "4"], ["12", "3", "2"],
]
READS = [
    ["user", "article", "views"],
    ["aaaaaaaaaaaa", "0", "3"], ["aaaaaaaaaaaa", "1", "1"],  # the demo reader
    ["bbbbbbbbbbbb", "0", "2"],
]
MANIFEST = {"time_anchor": "2026-11-01T12:00:00+00:00", "demo": {"goodbooks_user": "10", "ibm_user": "aaaaaaaaaaaa"}}


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _write(data_dir: Path, name: str, rows: list[list[str]] | bytes, *, gz: bool = True) -> Path:
    for stale in (data_dir / f"{name}.csv.gz", data_dir / f"{name}.csv"):
        stale.unlink(missing_ok=True)
    raw = rows if isinstance(rows, bytes) else _csv_bytes(rows)
    path = data_dir / (f"{name}.csv.gz" if gz else f"{name}.csv")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    _write(tmp_path, "books", BOOKS)
    _write(tmp_path, "articles", ARTICLES, gz=False)  # plain CSV is accepted too
    _write(tmp_path, "book_ratings", RATINGS)
    _write(tmp_path, "article_reads", READS)
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    return tmp_path


def _load(data_dir: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("load_demo_data", "--data-dir", str(data_dir), *args, stdout=out)
    return out.getvalue()


def _db_counts() -> dict[str, int]:
    User = get_user_model()
    return {"books": Book.objects.count(), "articles": Article.objects.count(), "tags": Tag.objects.count(),
            "users": User.objects.count(), "ratings": Rating.objects.count(), "reads": Read.objects.count()}


@pytest.mark.django_db
class TestDemoDataLoad:
    def test_loads_everything_with_real_readers_and_demo_account(self, data_dir):
        output = _load(data_dir)
        User = get_user_model()

        assert _db_counts() == {
            "books": 3, "articles": 2, "tags": 5,
            "users": 5,  # gb_11, gb_12, ibm_bbbbbbbbbbbb, demo, admin
            "ratings": 5, "reads": 5 + 3 + 1 + 2,  # one per rating + one per article view
        }
        assert "demo-reader" in output and "admin-editor" in output
        assert sorted(User.objects.filter(password__startswith="!").values_list("username", flat=True)) == [
            "gb_11", "gb_12", "ibm_bbbbbbbbbbbb"]
        assert not User.objects.filter(username__in=["gb_10", "ibm_aaaaaaaaaaaa"]).exists()

        demo = User.objects.get(username="demo")
        assert demo.check_password("demo-reader") and not demo.is_staff and not demo.is_superuser
        assert sorted(Rating.objects.filter(user=demo).values_list("stars", flat=True)) == [1, 3, 5]
        assert Read.objects.filter(user=demo, content_type__model="book").count() == 3
        assert Read.objects.filter(user=demo, content_type__model="article").count() == 4
        admin = User.objects.get(username="admin")
        assert admin.is_superuser and admin.check_password("admin-editor")

        book = Book.objects.get(external_id="1")
        assert book.year == 2008 and book.isbn == "0439023483" and book.cover_url.endswith("1.jpg")
        assert sorted(book.tags.values_list("name", flat=True)) == ["dystopia", "young adult"]
        assert Book.objects.get(external_id="3").year == -720
        assert Book.objects.get(external_id="3").description == 'Multi-line\ndescription, with "quotes".'
        article = Article.objects.get(external_id="1")
        assert article.slug == "communicating-data-science" and article.author == "Megan Risdal"

    def test_the_builds_column_reader_agrees_with_the_rows(self, data_dir):
        """Generic keys (content type + integer id), dwell, progress, stars and times: packed on PostgreSQL."""
        from recommendations.adapters import get_adapter
        from tests.recommendations.columns import assert_columns_match_rows

        demo_data_load(data_dir=data_dir, now=NOW)
        NotInterested.objects.create(user=get_user_model().objects.get(username="demo"), item=Book.objects.first())
        assert assert_columns_match_rows(get_adapter()) == Read.objects.count() + Rating.objects.count() + 1

    def test_synthetic_values_are_plausible_and_deterministic(self, data_dir):
        demo_data_load(data_dir=data_dir, now=NOW)
        first = sorted(Read.objects.values_list("dwell_seconds", "progress", "created_at"))
        # Dates move by whole days so that the anchor (1 Nov) falls on the day of loading (20 Nov).
        assert Article.objects.get(external_id="0").published_at == datetime(2026, 10, 20, 10, tzinfo=timezone.utc)
        for read in Read.objects.all():
            assert read.created_at <= NOW and 12 <= read.dwell_seconds <= 3 * 3600 and 0 <= read.progress <= 1
        for article_read in Read.objects.filter(content_type__model="article"):
            assert article_read.created_at >= Article.objects.get(pk=article_read.object_id).published_at
        for rating in Rating.objects.all():
            read = Read.objects.get(user=rating.user, content_type=rating.content_type, object_id=rating.object_id)
            assert read.created_at < rating.created_at <= NOW
            assert Book.objects.get(pk=rating.object_id).created_at < read.created_at

        demo_data_load(data_dir=data_dir, now=NOW, force=True)
        assert sorted(Read.objects.values_list("dwell_seconds", "progress", "created_at")) == first

    def test_second_run_does_nothing_and_force_reloads(self, data_dir):
        _load(data_dir)
        counts = _db_counts()
        # Someone rates an imported book; --force removes it along with the imported rows.
        other = get_user_model().objects.create_user(username="visitor", password="x")
        Rating.objects.create(user=other, item=Book.objects.first(), stars=4)

        output = _load(data_dir)
        assert "already loaded" in output
        assert _db_counts() == {**counts, "users": counts["users"] + 1, "ratings": counts["ratings"] + 1}

        _load(data_dir, "--force")
        assert _db_counts() == {**counts, "users": counts["users"] + 1}
        assert get_user_model().objects.filter(username="visitor").exists()

    def test_refuses_to_mix_with_leftover_imported_rows(self, data_dir):
        Book.objects.create(title="Left over", external_id="1")
        with pytest.raises(CommandError, match="--force"):
            _load(data_dir)
        assert Book.objects.count() == 1 and Rating.objects.count() == 0


def _assert_nothing_loaded() -> None:
    assert _db_counts() == {"books": 0, "articles": 0, "tags": 0, "users": 0, "ratings": 0, "reads": 0}


@pytest.mark.django_db
class TestDemoDataBadInput:
    def test_malformed_row_names_file_and_line_and_loads_nothing(self, data_dir):
        _write(data_dir, "book_ratings", [*RATINGS[:3], ["10", "3", "7"], *RATINGS[4:]])
        with pytest.raises(CommandError, match=r"book_ratings\.csv\.gz, line 4: stars must be between 1 and 5"):
            _load(data_dir)
        _assert_nothing_loaded()

    def test_database_error_late_in_the_load_rolls_back_everything(self, data_dir, monkeypatch):
        from django.db import IntegrityError

        import articles.demo as demo

        def fail(*args, **kwargs):
            raise IntegrityError("simulated failure while inserting reads")

        monkeypatch.setattr(demo, "rows_insert", fail)  # after tags, books, articles and users exist
        with pytest.raises(CommandError, match="nothing was stored"):
            _load(data_dir)
        _assert_nothing_loaded()

    @pytest.mark.parametrize(
        ("name", "content", "message"),
        [
            ("books", b"", r"books\.csv\.gz, line 1: the file is empty"),
            ("books", _csv_bytes(BOOKS[:1]), r"books\.csv\.gz, line 2: the file has a header but no rows"),
            ("books", _csv_bytes([*BOOKS[:2], ["2", "Short row"]]), r"books\.csv\.gz, line 3: expected 8 fields"),
            ("books", _csv_bytes(BOOKS).replace("GrandPré".encode(), "GrandPré".encode("latin-1")),
             r"books\.csv\.gz, line 3: not valid UTF-8"),
            ("books", _csv_bytes([*BOOKS[:3], ["1", "Again", "", "", "", "", "", ""]]),
             r"line 4: duplicate book external_id '1'"),
            ("books", _csv_bytes([[c for c in BOOKS[0] if c != "title"]]), r"line 1: missing column\(s\) title"),
            ("books", _csv_bytes([*BOOKS[:2], ["9", "T", "", "19x", "", "", "", ""]]),
             r"line 3: year must be an integer"),
            ("articles", _csv_bytes([*ARTICLES[:2], ["5", "T", "", "", "", "", "yesterday"]]),
             r"articles\.csv\.gz, line 3: published_at is not an ISO 8601"),
            ("article_reads", _csv_bytes([*READS, ["cccccccccccc", "99", "1"]]),
             r"article_reads\.csv\.gz, line 5: article '99' is not in articles"),
            ("book_ratings", _csv_bytes([*RATINGS, ["13", "1", "four"]]),
             r"book_ratings\.csv\.gz, line 7: stars must be an integer"),
        ],
    )
    def test_bad_file_gives_clear_error_and_loads_nothing(self, data_dir, name, content, message):
        _write(data_dir, name, content)
        with pytest.raises(CommandError, match=message):
            _load(data_dir)
        _assert_nothing_loaded()

    def test_not_gzip(self, data_dir):
        (data_dir / "books.csv.gz").write_bytes(_csv_bytes(BOOKS))
        with pytest.raises(CommandError, match=r"books\.csv\.gz: not a valid gzip file"):
            _load(data_dir)
        _assert_nothing_loaded()

    def test_missing_file(self, data_dir):
        (data_dir / "article_reads.csv.gz").unlink()
        with pytest.raises(CommandError, match=r"article_reads\.csv\.gz: missing file"):
            _load(data_dir)
        _assert_nothing_loaded()


class TestShippedDemoData:
    """The files committed in articles/demo_data parse and have plausible sizes (no database needed)."""

    def test_shipped_files_parse_with_plausible_sizes(self):
        data = demo_data_read(data_dir=DEFAULT_DATA_DIR)
        assert 1900 <= len(data.books) <= 2100
        assert 1000 <= len(data.articles) <= 1100
        assert len(data.book_ratings) >= 50_000
        assert len({user for user, _, _ in data.book_ratings}) >= 2000
        assert len(data.article_reads) >= 10_000
        assert sum(1 for b in data.books if b.description) >= 1000
        assert sum(1 for b in data.books if b.tags) >= 1900
        assert all(1 <= stars <= 5 for _, _, stars in data.book_ratings)
        demo_ratings = [r for r in data.book_ratings if r[0] == data.demo_book_reader]
        assert 40 <= len(demo_ratings) <= 60 and len({s for _, _, s in demo_ratings}) >= 4
        demo_articles = [r for r in data.article_reads if r[0] == data.demo_article_reader]
        assert 15 <= len(demo_articles) <= 25
        now = datetime.now(timezone.utc)
        assert all(now - timedelta(days=4 * 365) < a.published_at for a in data.articles)

    def test_shipped_data_stays_small(self):
        total = sum(p.stat().st_size for p in DEFAULT_DATA_DIR.iterdir() if p.is_file())
        assert total < 8 * 1024 * 1024
