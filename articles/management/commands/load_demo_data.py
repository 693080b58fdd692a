"""Provides ``manage.py load_demo_data``: the shipped books, articles and real readers, the first time only."""
from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from articles.demo import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    DEFAULT_DATA_DIR,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    DemoDataError,
    demo_data_load,
)


class Command(BaseCommand):
    help = (
        "Load the demo data shipped in articles/demo_data (goodbooks-10k books and ratings, IBM community "
        "articles and views; see NOTICE) the first time only: if it is already loaded, say so and do "
        "nothing. Creates one account per real reader (no usable password), the demo reader "
        f"'{DEMO_USERNAME}' / '{DEMO_PASSWORD}' with a real reader's history, and, for LOCAL DEMOS ONLY, "
        f"the superuser '{ADMIN_USERNAME}' / '{ADMIN_PASSWORD}' (skip it with --no-admin; never run this "
        "command on a public site). Times, dwell and progress of the imported reads are synthetic but "
        "deterministic (see articles/demo.py). Bad input stops the import with an error naming the file "
        "and line, and nothing is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                            help="Directory with the demo CSV files and manifest.json (default: %(default)s).")
        parser.add_argument("--force", action="store_true",
                            help="Delete the previously imported demo rows (items, readers, the demo user and "
                                 "their reads and ratings) and load again.")
        parser.add_argument("--no-admin", action="store_true", help="Do not create the admin superuser.")

    def handle(self, *args, data_dir: Path, force: bool, no_admin: bool, **options) -> None:
        started = time.monotonic()
        try:
            counts = demo_data_load(
                data_dir=data_dir, force=force, admin_username=None if no_admin else ADMIN_USERNAME,
                stdout=self.stdout if options["verbosity"] > 0 else None,
            )
        except DemoDataError as exc:
            raise CommandError(f"Demo data not loaded: {exc}") from exc
        if counts.get("already_loaded"):
            return
        reads = counts["book_reads"] + counts["article_reads"]
        self.stdout.write(self.style.SUCCESS(
            f"Loaded {counts['books']:,} books, {counts['articles']:,} articles, {counts['tags']:,} tags, "
            f"{counts['readers']:,} readers, {counts['ratings']:,} ratings and {reads:,} reads "
            f"in {time.monotonic() - started:.1f} s."
        ))
        self.stdout.write(f"Demo reader: username '{DEMO_USERNAME}', password '{DEMO_PASSWORD}'")
        if counts.get("admin_created"):
            self.stdout.write(f"Admin (local demo only): username '{ADMIN_USERNAME}', password '{ADMIN_PASSWORD}'")
