"""Loads the cold-item benchmark data sets as (users x items interactions, one ItemRecord per item).

Data is read at run time from ../shared/data (or $BRE_DATA_DIR) and never committed; a loader returns None
(with a message) when its files are absent.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommendations.algorithms.encoders import ItemRecord

DATA_DIR = Path(os.environ.get("BRE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
if not DATA_DIR.exists():
    DATA_DIR = Path("/work/shared/data")


def _lists(path: Path) -> list[list[int]]:
    """Lines "n id id ..." (the CiteULike .dat format) -> lists of ids (the count is dropped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return [[int(t) for t in line.split()[1:]] for line in fh]


def _matrix(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int32, count=int(indptr[-1]))
    X = sp.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr), shape=(len(rows), n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def _keep_users(X: sp.csr_matrix, at_least: int = 1) -> sp.csr_matrix:
    return X[np.diff(X.indptr) >= at_least]


def _citations(path: Path, n_items: int) -> list[list[str]]:
    """Undirected neighbours: an item's citations and the items citing it."""
    links: list[set[str]] = [set() for _ in range(n_items)]
    for item, cited in enumerate(_lists(path)):
        for other in cited:
            links[item].add(str(other))
            links[other].add(str(item))
    return [sorted(s) for s in links]


def load_citeulike_a() -> dict | None:
    base = DATA_DIR / "citeulike-a"
    if not (base / "users.dat").exists():
        print(f"SKIP citeulike-a: {base} not found", file=sys.stderr)
        return None
    names = (base / "tags.dat").read_text(encoding="utf-8", errors="replace").splitlines()
    item_tags = _lists(base / "item-tag.dat.gz")
    n_items = len(item_tags)
    links = _citations(base / "citations.dat", n_items)
    records = [ItemRecord(key=str(i), tags=[names[t] for t in tags], links=links[i])
               for i, tags in enumerate(item_tags)]
    X = _keep_users(_matrix(_lists(base / "users.dat"), n_items))
    return {"name": "citeulike-a", "X": X, "records": records, "features": "tags + citation graph",
            "encoder": {"tags": 1.0, "graph": 0.7}}


def load_citeulike_t() -> dict | None:
    base = DATA_DIR / "citeulike-t"
    if not (base / "users.dat").exists():
        print(f"SKIP citeulike-t: {base} not found", file=sys.stderr)
        return None
    vocabulary = (base / "vocabulary.dat").read_text(encoding="utf-8", errors="replace").split()
    texts = []
    with gzip.open(base / "mult.dat.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            words = []
            for pair in line.split()[1:]:
                word, _, count = pair.partition(":")
                words.extend([vocabulary[int(word)]] * int(count))
            texts.append(" ".join(words))
    n_items = len(texts)
    names = (base / "tags.dat").read_text(encoding="utf-8", errors="replace").splitlines()
    tags: list[list[str]] = [[] for _ in range(n_items)]
    for tag, items in enumerate(_lists(base / "tag-item.dat.gz")):
        for item in items:
            tags[item].append(names[tag])
    records = [ItemRecord(key=str(i), text=texts[i], tags=tags[i]) for i in range(n_items)]
    X = _keep_users(_matrix(_lists(base / "users.dat"), n_items))
    return {"name": "citeulike-t", "X": X, "records": records, "features": "words (bag of words) + tags",
            "encoder": {"tfidf": {"weight": 1.0, "ngram_range": (1, 1), "stop_words": None, "min_df": 2},
                        "tags": 0.7}}


def _book_tags(base: Path, goodreads_to_row: dict[int, int], n_items: int, per_book: int) -> list[list[str]]:
    """The ``per_book`` most used tags of each book (minus Goodreads shelf names like to-read)."""
    names = {}
    with open(base / "tags.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names[int(row["tag_id"])] = row["tag_name"]
    shelves = re.compile(r"^(to-read|currently-reading|owned|default|favorites|favourites|books-i-own|my-books|"
                         r"library|wish-list|kindle|ebook|ebooks|to-buy|owned-books|i-own|own|audiobook.*)$")
    counted: dict[int, list[tuple[int, str]]] = defaultdict(list)
    with gzip.open(base / "book_tags.csv.gz", "rt", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            item = goodreads_to_row.get(int(row["goodreads_book_id"]))
            name = names.get(int(row["tag_id"]), "")
            if item is not None and name and not shelves.match(name):
                counted[item].append((int(row["count"]), name))
    return [[name for _, name in sorted(counted[i], reverse=True)[:per_book]] for i in range(n_items)]


def goodbooks_records() -> tuple[list[dict], list[ItemRecord]]:
    """The rows of books.csv and one record per book (title + description, top 30 tags, authors), in file order."""
    base = DATA_DIR / "goodbooks-10k"
    with open(base / "books.csv", encoding="utf-8") as fh:
        books = list(csv.DictReader(fh))
    descriptions: dict[int, str] = {}
    described = DATA_DIR / "goodbooks-10k-descriptions-openlibrary" / "book_descriptions.csv.gz"
    if described.exists():
        with gzip.open(described, "rt", encoding="utf-8") as fh:
            descriptions = {int(r["book_id"]): r["description"] or "" for r in csv.DictReader(fh)}
    tags = _book_tags(base, {int(b["goodreads_book_id"]): i for i, b in enumerate(books)}, len(books), 30)
    records = [
        ItemRecord(key=b["book_id"], text=f"{b['title']} {descriptions.get(int(b['book_id']), '')}",
                   tags=tags[i], authors=[a.strip() for a in b["authors"].split(",") if a.strip()])
        for i, b in enumerate(books)
    ]
    return books, records


def load_goodbooks(max_users: int = 15_000, seed: int = 0) -> dict | None:
    base = DATA_DIR / "goodbooks-10k"
    if not (base / "ratings_v1.csv.gz").exists():
        print(f"SKIP goodbooks-10k: {base} not found", file=sys.stderr)
        return None
    books, records = goodbooks_records()
    row_of = {int(b["book_id"]): i for i, b in enumerate(books)}
    users: dict[str, int] = {}
    rows, cols = [], []
    with gzip.open(base / "ratings_v1.csv.gz", "rt", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append(users.setdefault(row["user_id"], len(users)))
            cols.append(row_of[int(row["book_id"])])
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(books)))
    X.sum_duplicates()
    X.data[:] = 1.0
    X = _keep_users(X, 2)
    if X.shape[0] > max_users:
        X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], max_users, replace=False))]
    return {"name": "goodbooks-10k", "X": X, "records": records,
            "features": "tags (top 30 per book), authors, title + Open Library description (1,830 books)",
            "encoder": {"tags": 1.0, "authors": 0.7, "tfidf": 0.5}}


def load_ibm() -> dict | None:
    base = DATA_DIR / "ibm-watson-community-articles"
    if not (base / "user-item-interactions.csv.gz").exists():
        print(f"SKIP ibm-articles: {base} not found", file=sys.stderr)
        return None
    csv.field_size_limit(10**8)
    bodies: dict[int, str] = {}
    with gzip.open(base / "articles_community.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            bodies[int(row["article_id"])] = " ".join(
                [row["doc_full_name"] or "", row["doc_description"] or "", row["doc_body"] or ""])
    titles: dict[int, str] = {}
    users: dict[str, int] = {}
    pairs = []
    with gzip.open(base / "user-item-interactions.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["email"]:
                continue
            article = int(float(row["article_id"]))
            titles.setdefault(article, row["title"])
            pairs.append((users.setdefault(row["email"], len(users)), article))
    articles = sorted(titles)
    col = {a: i for i, a in enumerate(articles)}
    rows = [u for u, _ in pairs]
    cols = [col[a] for _, a in pairs]
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(articles)))
    X.sum_duplicates()
    X.data[:] = 1.0
    records = [ItemRecord(key=str(a), text=bodies.get(a, titles[a])) for a in articles]
    return {"name": "ibm-articles", "X": _keep_users(X), "records": records,
            "features": "full text (title, description, body) for 437 of 714 articles, else the title",
            "encoder": {"tfidf": {"weight": 1.0, "ngram_range": (1, 1), "min_df": 2, "max_df": 0.5,
                                  "max_features": 10_000}}}


def ml1m_ncf_records() -> list[ItemRecord] | None:
    """One record per NCF item id of MovieLens-1M: its title as text and its genres as tags."""
    mapping = DATA_DIR / "ncf-ml-1m-pinterest" / "ml-1m.ncf_item_to_movielens_id.csv"
    movies = DATA_DIR / "movielens-1m" / "movies.dat"
    if not mapping.exists() or not movies.exists():
        print(f"SKIP ml-1m-ncf features: {mapping} or {movies} not found", file=sys.stderr)
        return None
    by_id = {}
    for line in movies.read_text(encoding="latin-1").splitlines():
        movie_id, title, genres = line.split("::")
        by_id[int(movie_id)] = (title, genres.split("|"))
    with open(mapping, encoding="utf-8") as fh:
        ncf = {int(r["ncf_item_id"]): int(r["movie_id"]) for r in csv.DictReader(fh)}
    records = [ItemRecord(key=str(i)) for i in range(max(ncf) + 1)]
    for item, movie in ncf.items():
        title, genres = by_id.get(movie, ("", []))
        records[item] = ItemRecord(key=str(item), text=title, tags=genres)
    return records


LOADERS = {
    "citeulike-a": load_citeulike_a,
    "citeulike-t": load_citeulike_t,
    "goodbooks-10k": load_goodbooks,
    "ibm-articles": load_ibm,
}
