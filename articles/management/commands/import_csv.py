"""Provides ``manage.py import_csv KIND FILE``: books, articles, ratings or reads from CSV, all rows or none."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from articles.csv_input import CsvInputError
from articles.imports import KINDS, csv_import


class Command(BaseCommand):
    help = (
        "Import books, articles, ratings or reads from a UTF-8 CSV file (.csv or .csv.gz) with a header row. "
        "Columns: books: external_id, title, [authors, year, isbn, description, cover_url, tags]; "
        "articles: external_id, title, [summary, body, author, tags, published_at]; "
        "ratings: username, item_type (book|article), item (external_id), stars, [created_at]; "
        "reads: username, item_type, item, [created_at, dwell_seconds, progress]. "
        "Items are matched on external_id (updated if they exist); a new rating of a rated item replaces it. "
        "Every row is checked first; a bad row stops the import with an error naming the line, and nothing "
        "is stored. Run `manage.py recommendations build` afterwards."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Check everything, store nothing.")

    def handle(self, *args, kind: str, file: Path, dry_run: bool, **options) -> None:
        try:
            counts = csv_import(kind=kind, path=file, dry_run=dry_run)
        except CsvInputError as exc:
            raise CommandError(f"Nothing imported: {exc}") from exc
        verb = "Checked (dry run, nothing stored)" if dry_run else "Imported"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} {file}: {counts['created']:,} {kind} created, {counts['updated']:,} updated."
        ))
        if kind in ("ratings", "reads") and not dry_run:
            self.stdout.write("Run `manage.py recommendations build` to update the recommendations.")
