"""Provides strict reading of UTF-8 CSV files, with errors that name the file and the line."""
from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterable, Iterator
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
    value = row[column].strip()
    if required and not value:
        raise CsvInputError(f"{column} is empty", path=path, line=line)
    if max_length is not None and len(value) > max_length:
        raise CsvInputError(f"{column} is longer than {max_length} characters ({len(value)})", path=path, line=line)
    if "\x00" in value:
        raise CsvInputError(f"{column} contains a NUL character", path=path, line=line)
    return value


def cell_int(row: dict[str, str], column: str, *, path: Path, line: int, low: int | None = None,
         high: int | None = None, required: bool = True) -> int | None:
    value = row[column].strip()
    if not value and not required:
        return None
    try:
        number = int(value)
    except ValueError:
        raise CsvInputError(f"{column} must be an integer, not {value!r}", path=path, line=line) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise CsvInputError(f"{column} must be between {low} and {high}, not {number}", path=path, line=line)
    return number


def cell_tags(row: dict[str, str], *, path: Path, line: int) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in row["tags"].split("|") if t.strip()))
    for name in names:
        if len(name) > 100 or not slugify(name):
            raise CsvInputError(f"bad tag {name!r} (1-100 characters, with a letter or digit)", path=path, line=line)
    return names


def check_unique(seen: set, key, what: str, *, path: Path, line: int) -> None:
    if key in seen:
        raise CsvInputError(f"duplicate {what} {key!r}", path=path, line=line)
    seen.add(key)
