"""Tests of articles/imports.py and the import_csv command: upserts, and bad input that stores nothing."""
from __future__ import annotations

import gzip
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from articles.models import Article, Book, Rating, Read, Tag


def _file(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    raw = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


def _import(kind: str, path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_csv", kind, str(path), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def catalogue(db):
    reader = get_user_model().objects.create_user(username="ada", password="x")
    book = Book.objects.create(title="Dune", external_id="b1")
    article = Article.objects.create(title="Spark", slug="spark", external_id="a1")
    return reader, book, article


@pytest.mark.django_db
class TestImportItems:
    def test_creates_then_updates_books_with_tags(self, tmp_path):
        path = _file(tmp_path, "books.csv.gz",
                     "external_id,title,year,tags\nb1,Dune,1965,science fiction|classics\nb2,Emma,,romance\n")
        assert "2 books created, 0 updated" in _import("books", path)
        assert Book.objects.get(external_id="b1").year == 1965
        assert sorted(Book.objects.get(external_id="b1").tags.values_list("name", flat=True)) == [
            "classics", "science fiction"]

        path = _file(tmp_path, "more.csv", "external_id,title,tags\nb1,Dune (1965),classics\nb3,Ulysses,\n")
        assert "1 books created, 1 updated" in _import("books", path)
        dune = Book.objects.get(external_id="b1")
        assert dune.title == "Dune (1965)" and dune.year == 1965  # columns not in the file are kept
        assert list(dune.tags.values_list("name", flat=True)) == ["classics"]
        assert Tag.objects.count() == 3

    def test_articles_get_unique_slugs_and_dates(self, tmp_path):
        Article.objects.create(title="Old", slug="intro-to-r", external_id="")
        path = _file(tmp_path, "articles.csv",
                     "external_id,title,published_at\n1,Intro to R,2025-01-02T03:04:05\n2,Intro to R,\n")
        _import("articles", path)
        first, second = Article.objects.get(external_id="1"), Article.objects.get(external_id="2")
        assert {first.slug, second.slug} == {"intro-to-r-2", "intro-to-r-3"}
        assert first.published_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.django_db
class TestImportInteractions:
    def test_ratings_upsert_and_reads_append(self, tmp_path, catalogue):
        reader, book, article = catalogue
        Rating.objects.create(user=reader, item=book, stars=2)
        path = _file(tmp_path, "ratings.csv", "username,item_type,item,stars\nada,book,b1,5\nada,article,a1,4\n")
        assert "1 ratings created, 1 updated" in _import("ratings", path)
        assert Rating.objects.get(user=reader, object_id=book.pk, content_type__model="book").stars == 5

        path = _file(tmp_path, "reads.csv",
                     "username,item_type,item,dwell_seconds,progress\nada,article,a1,95.5,0.8\nada,article,a1,,\n")
        _import("reads", path)
        assert sorted(Read.objects.values_list("dwell_seconds", "progress")) == [(0.0, 0.0), (95.5, 0.8)]

    def test_dry_run_stores_nothing(self, tmp_path, catalogue):
        path = _file(tmp_path, "ratings.csv", "username,item_type,item,stars\nada,book,b1,5\n")
        assert "dry run" in _import("ratings", path, "--dry-run")
        assert Rating.objects.count() == 0


@pytest.mark.django_db
class TestImportBadInput:
    @pytest.mark.parametrize(
        ("kind", "text", "message"),
        [
            ("ratings", "username,item_type,item,stars\nada,book,b1,5\nada,article,a1,6\n",
             r"line 3: stars must be between 1 and 5"),
            ("ratings", "username,item_type,item,stars\nada,book,b1,5\nbob,book,b1,4\n",
             r"line 3: there is no user 'bob'"),
            ("ratings", "username,item_type,item,stars\nada,book,b1,5\nada,book,zz,4\n",
             r"line 3: there is no book with external_id 'zz'"),
            ("ratings", "username,item_type,item,stars\nada,movie,b1,5\n",
             r"line 2: item_type must be 'book' or 'article'"),
            ("reads", "username,item_type,item,dwell_seconds\nada,book,b1,-3\n",
             r"line 2: dwell_seconds must be between"),
            ("reads", "username,item_type,item,progress\nada,book,b1,nan\n", r"line 2: progress must be between"),
            ("reads", "username,item_type,item\n", r"line 2: the file has a header but no rows"),
            ("reads", "", r"line 1: the file is empty"),
            ("reads", "username,item\nada,b1\n", r"line 1: missing column\(s\) item_type"),
            ("books", "external_id,title\nb9,Fine\nb10,\"unclosed\n", r"line 3: malformed CSV"),
            ("books", "external_id,title\nb9,Fine\nb9,Again\n", r"line 3: duplicate external_id 'b9'"),
            ("books", "external_id,title\nb9,Fine\nb10," + "x" * 301 + "\n", r"line 3: title is longer than 300"),
        ],
    )
    def test_bad_row_names_the_line_and_stores_nothing(self, tmp_path, catalogue, kind, text, message):
        path = _file(tmp_path, f"{kind}.csv", text)
        with pytest.raises(CommandError, match=message):
            _import(kind, path)
        assert Rating.objects.count() == 0 and Read.objects.count() == 0 and Book.objects.count() == 1

    def test_wrong_encoding_names_the_line(self, tmp_path, catalogue):
        path = _file(tmp_path, "books.csv", "external_id,title\nb9,Fine\nb10,Caf\u00e9\n".encode("latin-1"))
        with pytest.raises(CommandError, match=r"books\.csv, line 3: not valid UTF-8"):
            _import("books", path)
        assert Book.objects.count() == 1

    def test_missing_file(self, tmp_path, catalogue):
        with pytest.raises(CommandError, match="no such file"):
            _import("books", tmp_path / "nope.csv")
