"""Provides the CSV input of the command line: interactions read with errors that name the file and line."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "WEIGHTINGS",
    "CSVError",
    "Interactions",
    "IdIndex",
    "csv_text",
    "read_interactions",
    "parse_columns",
    "interaction_weights",
    "parse_event_weights",
    "interaction_matrix",
    "timestamp_matrix",
]

WEIGHTINGS = ("binary", "count", "rating", "event")
#: The columns an interactions file may have; ``--columns`` names the header of each that is spelled otherwise.
ROLES = ("user", "item", "rating", "timestamp", "event")


class CSVError(ValueError):
    """An input file is unusable; the message names the file (and the line when there is one)."""


@dataclass
class Interactions:
    """Rows of a user/item CSV file, ids kept as strings."""

    path: str
    users: list[str]
    items: list[str]
    ratings: np.ndarray | None
    timestamps: np.ndarray | None
    lines: np.ndarray
    events: list[str] | None = None

    def __len__(self) -> int:
        return len(self.users)


def _parse_timestamp(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


def csv_text(path: str, expected: str) -> str:
    """Return the text of the CSV file ``path``, or raise ``CSVError`` naming the file (and line) of the problem.

    ``expected`` names the header's columns for the message of an empty file.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise CSVError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CSVError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CSVError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise CSVError(f"{path}:1: file is empty (expected a header row with columns {expected})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise CSVError(f"{path}:{line}: not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8") from None
    return text


def parse_columns(text: str | None) -> dict[str, str]:
    """``"rating=review,user=reviewer"`` -> ``{"rating": "review", "user": "reviewer"}`` (``--columns``)."""
    columns: dict[str, str] = {}
    for entry in (e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        role, sep, header = (part.strip() for part in entry.partition("="))
        if not sep or not header:
            raise CSVError(f"--columns: '{entry}' is not ROLE=HEADER (e.g. rating=review)")
        if role.lower() not in ROLES:
            raise CSVError(f"--columns: '{role}' is not one of {', '.join(ROLES)}")
        columns[role.lower()] = header.lower()
    return columns


def read_interactions(
    path: str,
    required: Sequence[str] = ("user", "item"),
    optional: Sequence[str] = ("rating", "timestamp", "event"),
    columns: dict[str, str] | None = None,
) -> Interactions:
    """Read a CSV with a header row; ``required`` columns must exist, ``optional`` ones are parsed if present.

    Column names are matched case-insensitively after stripping spaces; ``columns`` maps a role (``rating``)
    to the header that holds it (``review``), and a column named that way must exist. Ids are strings.
    ``rating`` must be a finite number; ``timestamp`` a number (e.g. unix seconds) or an ISO 8601 date;
    ``event`` is a non-empty event type (view, like, ...).

    Raises
    ------
    CSVError
        ``"<path>:<line>: <problem>"`` for a missing file, an empty file, a missing column, a
        row with the wrong number of fields, an empty id, a bad number or a non-UTF-8 byte.
    """
    text = csv_text(path, ",".join(required))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise CSVError(f"{path}:1: {exc}") from None
    parsed = _Columns(path, _column_index(path, header, required, optional, columns or {}), len(header))
    try:
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip()):  # blank lines are skipped
                parsed.add(row, reader.line_num)
    except csv.Error as exc:
        raise CSVError(f"{path}:{reader.line_num}: {exc}") from None
    if not parsed.users:
        raise CSVError(f"{path}:2: no data rows after the header")
    return parsed.interactions()


def _column_index(
    path: str, header: list[str], required: Sequence[str], optional: Sequence[str], columns: dict[str, str]
) -> dict[str, int]:
    """The header position of each role read: ``required`` ones and ``optional`` ones present (``columns`` renames)."""
    names = [h.strip().lower() for h in header]
    for role in [*required, *(o for o in optional if o in columns)]:
        name = columns.get(role, role)
        if name not in names:
            given = f" (--columns {role}={name})" if role in columns else ""
            # a spreadsheet's users x items table starts its header with an empty cell above the user names
            wide = ("; this looks like a users x items table: write one row per rating, user,item,rating"
                    if not names[0] and len(names) > 2 else "")
            raise CSVError(f"{path}:1: missing column '{name}'{given} "
                           f"(header has: {', '.join(h.strip() for h in header)}){wide}")
    roles = [*required, *(o for o in optional if columns.get(o, o) in names)]
    col_idx = {role: names.index(columns.get(role, role)) for role in roles}
    taken: dict[int, str] = {}
    for role, at in col_idx.items():
        if at in taken:
            raise CSVError(f"{path}:1: column '{header[at].strip()}' would be both {taken[at]} and {role} "
                           "(see --columns)")
        taken[at] = role
    return col_idx


class _Columns:
    """The parsed columns of a CSV file, one row at a time (errors name the file and line)."""

    def __init__(self, path: str, col_idx: dict[str, int], n_fields: int) -> None:
        self.path, self.col_idx, self.n_fields = path, col_idx, n_fields
        self.users: list[str] = []
        self.items: list[str] = []
        self.ratings: list[float] = []
        self.stamps: list[float] = []
        self.events: list[str] = []
        self.lines: list[int] = []

    def add(self, row: list[str], line: int) -> None:
        idx, path = self.col_idx, self.path
        if len(row) != self.n_fields:
            raise CSVError(f"{path}:{line}: expected {self.n_fields} fields, found {len(row)}")
        for col in ("user", "item"):
            if col in idx and not row[idx[col]].strip():
                raise CSVError(f"{path}:{line}: empty {col}")
        self.users.append(row[idx["user"]].strip() if "user" in idx else "")
        self.items.append(row[idx["item"]].strip() if "item" in idx else "")
        if "rating" in idx:
            self.ratings.append(self._number(row[idx["rating"]], line, _finite_float, "is not a number"))
        if "event" in idx:
            if not row[idx["event"]].strip():
                raise CSVError(f"{path}:{line}: empty event")
            self.events.append(row[idx["event"]].strip().lower())
        if "timestamp" in idx:
            self.stamps.append(self._number(row[idx["timestamp"]], line, _parse_timestamp,
                                            "is neither a number nor an ISO 8601 date"))
        self.lines.append(line)

    def _number(self, value: str, line: int, parse: Any, problem: str) -> float:
        value = value.strip()
        try:
            number = parse(value)
        except (ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            column = "rating" if parse is _finite_float else "timestamp"
            raise CSVError(f"{self.path}:{line}: {column} '{value}' {problem}")
        return number

    def interactions(self) -> Interactions:
        return Interactions(
            path=self.path,
            users=self.users,
            items=self.items,
            ratings=np.asarray(self.ratings, dtype=np.float64) if "rating" in self.col_idx else None,
            timestamps=np.asarray(self.stamps, dtype=np.float64) if "timestamp" in self.col_idx else None,
            events=self.events if "event" in self.col_idx else None,
            lines=np.asarray(self.lines, dtype=np.int64),
        )


def _finite_float(value: str) -> float:
    return float(value)


class IdIndex:
    """String id <-> position, in order of first appearance."""

    def __init__(self) -> None:
        self.pos: dict[str, int] = {}
        self.keys: list[str] = []

    def add_all(self, ids: Sequence[str]) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.int64)
        pos, keys = self.pos, self.keys
        for j, key in enumerate(ids):
            p = pos.get(key)
            if p is None:
                p = pos[key] = len(keys)
                keys.append(key)
            out[j] = p
        return out

    def __len__(self) -> int:
        return len(self.keys)


def interaction_weights(
    data: Interactions, weighting: str, event_weights: dict[str, float] | None = None
) -> np.ndarray:
    """One weight per row: the rating (``--weight rating``), its event's weight (``--weight event``) or 1."""
    if weighting == "rating":
        if data.ratings is None:
            raise CSVError(f"{data.path}:1: --weight rating needs a 'rating' column (or --columns rating=HEADER)")
        return data.ratings.astype(np.float32)
    if weighting == "event":
        if data.events is None:
            raise CSVError(f"{data.path}:1: --weight event (or --event-weights) needs an 'event' column "
                           "(or --columns event=HEADER)")
        weights = event_weights or {}
        out = np.ones(len(data), dtype=np.float32)
        for j, event in enumerate(data.events):
            if event_weights is not None:
                if event not in weights:
                    raise CSVError(f"{data.path}:{data.lines[j]}: event '{event}' has no weight in --event-weights "
                                   f"(given: {', '.join(sorted(weights))})")
                out[j] = weights[event]
        return out
    return np.ones(len(data), dtype=np.float32)


def parse_event_weights(text: str) -> dict[str, float]:
    """``"view=1,like=4"`` -> ``{"view": 1.0, "like": 4.0}``; a bad entry is a CSVError naming it."""
    weights: dict[str, float] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, value = entry.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not math.isfinite(number):
            raise CSVError(f"--event-weights: '{entry}' is not TYPE=NUMBER (e.g. view=1,like=4)")
        weights[name.strip().lower()] = number
    if not weights:
        raise CSVError("--event-weights: give at least one TYPE=NUMBER")
    return weights


def interaction_matrix(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], weighting: str
) -> sp.csr_matrix:
    """The users x items matrix: 1 per pair (binary), the pair's rows summed (count, event), or
    the mean of its ratings (rating: a level, which repeats must not inflate)."""
    X = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=shape, dtype=np.float32)
    X.sum_duplicates()
    if weighting == "binary":
        X.data[:] = 1.0
    elif weighting == "rating":
        # summed duplicates of a rating would inflate it: keep the mean rating of the pair instead
        counts = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)
        counts.sum_duplicates()
        X.data /= counts.data
    X.eliminate_zeros()
    return X


def timestamp_matrix(
    data: Interactions, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix | None:
    """The latest timestamp of each (user, item) pair, or None when the file has no timestamp column."""
    from recommendations.algorithms.splits import last_timestamp_matrix

    return None if data.timestamps is None else last_timestamp_matrix(rows, cols, data.timestamps, shape)
