"""Provides the site side of the online simulation: a throwaway database with goodbooks readers, and a real build.

``environment_set()`` must run before ``django.setup()``; everything else needs Django set up.
The sample is written as a demo data directory (the shipped books, the training ratings) and
loaded with the site's own loader (``articles.demo.demo_data_load``), then a full build runs in
this process (``manage.py recommendations build --sync``), as ``benchmarks/serving.py`` does.
"""
from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "articles" / "demo_data"
READER_PREFIX = "gb_"


def environment_set(var_dir: Path, database_url: str | None) -> None:
    """Point the site at a throwaway database and broker under ``var_dir`` (no worker runs there)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    for name in [k for k in os.environ if k.startswith("CELERY_") or k in ("DATABASE_URL", "CACHE_URL")]:
        del os.environ[name]
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bre_site.settings", BRE_VAR_DIR=str(var_dir), DEBUG="0",
        LOG_LEVEL="WARNING", BRE_LOG_LEVEL="WARNING",
        # Simulated readers act faster than people; the throttles would refuse them.
        BRE_WRITE_THROTTLE="1000000/minute", BRE_BEACON_THROTTLE="1000000/minute",
        # Reopening a page within this many seconds continues the earlier read: a simulated day is
        # seconds long, so a reader's pages on a later day would otherwise never be new reads.
        READ_REOPEN_SECONDS="0",
    )
    if database_url:
        os.environ["DATABASE_URL"] = database_url


def data_dir_write(dest: Path, train: list[tuple[str, str, int]], demo_reader: str) -> Path:
    """Write a demo data directory: the shipped books and articles with their readers, ``train`` as the ratings."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("books", "articles", "article_reads"):
        shutil.copyfile(DEMO_DATA / f"{name}.csv.gz", dest / f"{name}.csv.gz")
    with gzip.open(dest / "book_ratings.csv.gz", "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "book", "stars"])
        writer.writerows(train)
    manifest = json.loads((DEMO_DATA / "manifest.json").read_text())
    manifest["demo"]["goodbooks_user"] = demo_reader
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def books_of_catalogue() -> set[str]:
    """Return the goodbooks ids of the shipped catalogue's books (the demo data's 2,000)."""
    with gzip.open(DEMO_DATA / "books.csv.gz", "rt", newline="") as handle:
        return {row["external_id"] for row in csv.DictReader(handle)}
