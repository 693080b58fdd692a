"""Provides strict reading of UTF-8 CSV files, with errors that name the file and the line."""
from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

from django.utils.text import slugify


class CsvInputError(Exception):
    """Bad input in a CSV (or JSON) file: the message names the file and, where known, the line."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        self.message, self.path, self.line = message, path, line
        where = str(path) if path is not None else ""
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}" if where else message)


def csv_rows(path: Path, columns: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a UTF-8 CSV file (gzip if it ends in .gz), checking its shape."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise CsvInputError(f"not a valid gzip file ({exc})", path=path) from None
    if not raw.strip():
        raise CsvInputError("the file is empty", path=path, line=1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CsvInputError(f"not valid UTF-8 (byte {raw[exc.start]:#04x}); save the file as UTF-8",
                            path=path, line=line) from None
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvInputError(f"missing column(s) {', '.join(missing)} in the header {header}", path=path, line=1)
        n_rows = 0
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise CsvInputError(f"expected {len(header)} fields, found {len(row)}", path=path, line=line)
            n_rows += 1
            yield line, dict(zip(header, row))
    except csv.Error as exc:
        raise CsvInputError(f"malformed CSV ({exc})", path=path, line=reader.line_num or 1) from None
    if n_rows == 0:
        raise CsvInputError("the file has a header but no rows", path=path, line=2)


def cell_text(row: dict[str, str], column: str, *, path: Path, line: int, max_length: int | None = None,
              required: bool = False) -> str:
    """Return the stripped text of ``column`` (empty if the column is absent), checking length and NULs."""
    value = row.get(column, "").strip()
    if required and not value:
        raise CsvInputError(f"{column} is empty", path=path, line=line)
    if max_length is not None and len(value) > max_length:
        raise CsvInputError(f"{column} is longer than {max_length} characters ({len(value)})", path=path, line=line)
    if "\x00" in value:
        raise CsvInputError(f"{column} contains a NUL character", path=path, line=line)
    return value


def cell_int(row: dict[str, str], column: str, *, path: Path, line: int, low: int | None = None,
             high: int | None = None, required: bool = True) -> int | None:
    """Return ``column`` as an int in [low, high], or None when empty and not required."""
    value = row.get(column, "").strip()
    if not value and not required:
        return None
    try:
        number = int(value)
    except ValueError:
        raise CsvInputError(f"{column} must be an integer, not {value!r}", path=path, line=line) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise CsvInputError(f"{column} must be between {low} and {high}, not {number}", path=path, line=line)
    return number


def cell_float(row: dict[str, str], column: str, *, path: Path, line: int, low: float, high: float,
               default: float | None = None) -> float | None:
    """Return ``column`` as a finite float in [low, high], or ``default`` when empty."""
    value = row.get(column, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise CsvInputError(f"{column} must be a number, not {value!r}", path=path, line=line) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise CsvInputError(f"{column} must be between {low:g} and {high:g}, not {value}", path=path, line=line)
    return number


def cell_datetime(row: dict[str, str], column: str, *, path: Path, line: int,
                  default: datetime | None = None) -> datetime | None:
    """Return ``column`` as an aware datetime (ISO 8601; UTC when no offset is given), or ``default``."""
    value = row.get(column, "").strip()
    if not value:
        if default is None:
            raise CsvInputError(f"{column} is empty", path=path, line=line)
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CsvInputError(f"{column} is not an ISO 8601 date-time: {value!r}", path=path, line=line) from None
    return parsed.replace(tzinfo=dt_timezone.utc) if parsed.tzinfo is None else parsed


def cell_url(row: dict[str, str], column: str, *, path: Path, line: int, max_length: int = 500) -> str:
    """Return ``column`` as an http(s) URL, or ''."""
    value = cell_text(row, column, path=path, line=line, max_length=max_length)
    if value and (not value.startswith(("http://", "https://")) or any(c.isspace() for c in value)):
        raise CsvInputError(f"{column} is not an http(s) URL: {value!r}", path=path, line=line)
    return value


def cell_tags(row: dict[str, str], *, path: Path, line: int, column: str = "tags") -> tuple[str, ...]:
    """Return the ``|``-separated tag names of ``column``, without duplicates."""
    names = tuple(dict.fromkeys(t.strip() for t in row.get(column, "").split("|") if t.strip()))
    for name in names:
        if len(name) > 100 or not slugify(name):
            raise CsvInputError(f"bad tag {name!r} (1-100 characters, with a letter or digit)", path=path, line=line)
    return names


def check_unique(seen: set, key, what: str, *, path: Path, line: int) -> None:
    """Raise if ``key`` was seen on an earlier line; remember it."""
    if key in seen:
        raise CsvInputError(f"duplicate {what} {key!r}", path=path, line=line)
    seen.add(key)
