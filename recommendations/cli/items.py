"""Provides the ITEMS.csv input of the command line (``item,text[,tags][,authors]``) and its feature matrix."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import scipy.sparse as sp

from recommendations.algorithms.encoders import ItemRecord, make_encoder

from .inputs import CSVError, IdIndex, csv_text

__all__ = [
    "ItemsFile", "read_items", "item_features", "item_texts", "default_encoder_spec", "fit_with_items",
    "LIST_SEPARATOR",
]

#: Separator of the tags and authors inside their column.
LIST_SEPARATOR = "|"


@dataclass
class ItemsFile:
    """Rows of ITEMS.csv: one record per item id, in file order."""

    path: str
    keys: list[str]
    records: list[ItemRecord]
    columns: tuple[str, ...]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(LIST_SEPARATOR) if part.strip()]


def read_items(path: str) -> ItemsFile:
    """Read ITEMS.csv (header ``item,text`` plus optional ``tags``, ``authors``).

    Raises
    ------
    CSVError
        ``"<path>:<line>: <problem>"`` for a missing file or column, an empty file, a row with the
        wrong number of fields, an empty or repeated item id, or a non-UTF-8 byte.
    """
    text = csv_text(path, "item,text")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader)]
    for column in ("item", "text"):
        if column not in header:
            raise CSVError(f"{path}:1: missing column '{column}' (header has: {', '.join(header)})")
    index = {name: header.index(name) for name in ("item", "text", "tags", "authors") if name in header}
    keys: list[str] = []
    records: list[ItemRecord] = []
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            records.append(_record(path, reader.line_num, row, header, index, first_line))
            keys.append(records[-1].key)
    except csv.Error as exc:
        raise CSVError(f"{path}:{reader.line_num}: {exc}") from None
    if not records:
        raise CSVError(f"{path}:2: no data rows after the header")
    return ItemsFile(path, keys, records, tuple(index))


def _record(path: str, line: int, row: list[str], header: list[str], index: dict[str, int],
            first_line: dict[str, int]) -> ItemRecord:
    if len(row) != len(header):
        raise CSVError(f"{path}:{line}: expected {len(header)} fields, found {len(row)}")
    key = row[index["item"]].strip()
    if not key:
        raise CSVError(f"{path}:{line}: empty item")
    if key in first_line:
        raise CSVError(f"{path}:{line}: item '{key}' repeats line {first_line[key]}")
    first_line[key] = line
    return ItemRecord(
        key=key,
        text=row[index["text"]],
        tags=_split(row[index["tags"]]) if "tags" in index else [],
        authors=_split(row[index["authors"]]) if "authors" in index else [],
    )


def default_encoder_spec(items: ItemsFile, sentence_model: str | None = None) -> dict[str, Any]:
    """TF-IDF of the text, plus tags and authors at half weight when the file has them, plus sentences."""
    spec: dict[str, Any] = {"tfidf": 1.0}
    for column in ("tags", "authors"):
        if column in items.columns:
            spec[column] = 0.5
    if sentence_model:
        spec["sentence"] = {"weight": 1.0, "model": sentence_model}
    return spec


def item_features(items: ItemsFile, item_index: IdIndex, encoder: str | None = None,
                  sentence_model: str | None = None) -> sp.csr_matrix:
    """Features of every indexed item (column order); an item missing from ITEMS.csv gets an empty row.

    ``encoder`` is a spec for :func:`make_encoder` (e.g. ``"tfidf:1,tags:0.5"``); by default,
    :func:`default_encoder_spec`.
    """
    by_key = dict(zip(items.keys, items.records))
    records = [by_key.get(key) or ItemRecord(key=key) for key in item_index.keys]
    try:
        spec = encoder if encoder else default_encoder_spec(items, sentence_model)
        if encoder and sentence_model:
            spec = f"{encoder},sentence"
        model = make_encoder(spec)
        if sentence_model:
            _set_sentence_model(model, sentence_model)
        return model.fit_transform(records)
    except (ValueError, OSError) as exc:
        raise CSVError(f"{items.path}: cannot encode the items ({exc})") from None


def _set_sentence_model(model: Any, path: str) -> None:
    for encoder, _ in getattr(model, "blocks", [(model, 1.0)]):
        if hasattr(encoder, "batch_size"):
            encoder.model = path


def fit_with_items(est: Any, name: str, X: sp.csr_matrix, features: sp.csr_matrix | None,
                   texts: list[str] | None) -> None:
    """Fit ``est`` with what it can use of the items: features (cold_hybrid), texts (hybrid) or nothing."""
    if name == "cold_hybrid":
        est.fit(X, features)
    elif name == "hybrid" and texts is not None:
        est.fit(X, item_texts=texts)
    else:
        est.fit(X)


def item_texts(items: ItemsFile, item_index: IdIndex) -> list[str]:
    by_key = dict(zip(items.keys, items.records))
    return [by_key[key].text if key in by_key else "" for key in item_index.keys]

