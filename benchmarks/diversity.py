"""Diversity benchmark: how often top-N lists repeat one author, and what the author cap costs in accuracy.

Two parts, each printed and written to ``benchmarks/results/diversity.md`` (with the command,
machine, date and load average):

``--part demo`` (the site): loads the shipped demo data into a throwaway SQLite database
(``manage.py migrate``, ``load_demo_data``, ``recommendations build --sync``), then, for every
reader the build stored picks for, asks ``recommendations.selectors.recommended_for(user, n=12)``
(the home page's "Top picks": both item models) three times: with ``DIVERSITY_CAPS = []`` (caps
off), with the default caps and ``DIVERSITY_PENALTY = 0``, and with the defaults (caps and
penalty). The key of an item is ``ArticlesAdapter.diversity_key()`` (a book's first author, an
article's author). Reported, for readers who rated books (the goodbooks readers) and for every
reader: the share of lists holding 3 or more items of one key, the share holding more than 3,
the largest count, and how many lists are shorter than 12. Goal: at most 10% hold 3, none more.

``--part offline`` (goodbooks-10k, no database): the default algorithm (``auto``, registry
defaults) fitted on the random leave-one-out train split of ``benchmarks/accuracy.py``, scored by
full ranking (train items excluded) for ``--max-test-users`` random test users. Each user's top
``--pool`` items are cut to a list of 10 either as they are or by the cap
(``recommendations.algorithms.diversity.capped_top_n``: the default caps with penalties of 0, 8,
12 (the default) and 16 places; key = first author of books.csv). Reported for each: HR@10,
NDCG@10 (of the list served), catalogue coverage, intra-list diversity by author, novelty (mean
self-information, bits) and the popularity share
(slots taken by the most popular 20% of books), plus the lists with 3+ books of one author.
Goal: at most 2% relative loss of NDCG@10.

Run: ``.venv/bin/python benchmarks/diversity.py`` (both parts; ``--part demo`` or
``--part offline`` for one).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA_DIR = Path(os.environ.get("BRE_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "diversity.md"
LIST_LENGTH = 12


def log(message: str) -> None:
    print(f"[{dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)


def loadavg() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


# --- demo site -------------------------------------------------------------------------------------

def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def demo(args: argparse.Namespace) -> list[str]:
    """Load the demo data into a throwaway SQLite database, build, and count repeated authors per list."""
    workdir = Path(tempfile.mkdtemp(prefix="bre_diversity_"))
    db = args.sqlite or workdir / "demo.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "DJANGO_SETTINGS_MODULE": "bre_site.settings",
           "DEBUG": "0", "DJANGO_ENV": "development", "LOG_LEVEL": "WARNING", "BRE_LOG_LEVEL": "WARNING",
           "CELERY_TASK_ALWAYS_EAGER": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    if not (args.sqlite and Path(args.sqlite).exists()):
        log(f"Migrating {db}")
        _manage(env, "migrate", "--no-input", "-v", "0")
        log("Loading the demo data")
        _manage(env, "load_demo_data", "--no-admin")
        log("Full build (recommendations build --sync)")
        started = time.monotonic()
        _manage(env, "recommendations", "build", "--sync")
        log(f"Build done in {time.monotonic() - started:.0f} s")
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "DJANGO_ENV",
                                           "LOG_LEVEL", "BRE_LOG_LEVEL")})
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType
    from django.test import override_settings

    from recommendations import selectors
    from recommendations.adapters import get_adapter
    from recommendations.algorithms.diversity import DEFAULT_CAPS, DEFAULT_PENALTY
    from recommendations.models import UserRecommendation

    from articles.models import Book, Rating

    user_ids = sorted(set(UserRecommendation.objects.filter(build__is_active=True).values_list("user_id", flat=True)))
    users = list(get_user_model().objects.filter(pk__in=user_ids).order_by("pk"))
    book_readers = set(Rating.objects.filter(content_type=ContentType.objects.get_for_model(Book))
                       .values_list("user_id", flat=True))
    is_book_reader = np.array([user.pk in book_readers for user in users])
    log(f"{len(users)} readers with stored picks, {int(is_book_reader.sum())} of them rated books")
    rows = []
    variants = (("caps off", {"DIVERSITY_CAPS": []}),
                (f"caps {list(DEFAULT_CAPS)}, no penalty", {"DIVERSITY_PENALTY": 0}),
                (f"caps {list(DEFAULT_CAPS)} + penalty {DEFAULT_PENALTY:g} (the defaults)", {}))
    for label, overrides in variants:
        conf = {key: value for key, value in settings.RECOMMENDATIONS.items()
                if key not in ("DIVERSITY_CAPS", "DIVERSITY_PENALTY")}
        with override_settings(RECOMMENDATIONS={**conf, **overrides}):
            adapter = get_adapter()
            started = time.perf_counter()
            worst, short = [], []
            for user in users:
                items = selectors.recommended_for(user, n=LIST_LENGTH)
                short.append(len(items) < LIST_LENGTH)
                keys = Counter(k for k in map(adapter.diversity_key, items) if k is not None)
                worst.append(max(keys.values(), default=0))
            ms = 1000 * (time.perf_counter() - started) / max(1, len(users))
        worst, short = np.asarray(worst), np.asarray(short)
        everyone = np.ones_like(is_book_reader)
        for readers, mask in (("readers who rated books", is_book_reader), ("every reader", everyone)):
            w = worst[mask]
            row = (label, readers, int(mask.sum()), float(np.mean(w >= 3)), float(np.mean(w > 3)),
                   int(w.max(initial=0)), int(short[mask].sum()), ms)
            rows.append(row)
            log(f"{label}, {readers}: {row[3]:.1%} of lists hold 3+ of one author, {row[4]:.1%} more than 3, "
                f"max {row[5]}, {row[6]} lists shorter than {LIST_LENGTH}, {ms:.1f} ms per list")
    lines = [
        f"### Demo site: readers' top-{LIST_LENGTH} picks (`selectors.recommended_for(user, n={LIST_LENGTH})`, "
        "the home page's Top picks, both item models)",
        "",
        "Readers who rated books are the goodbooks readers (and the demo account); the others read IBM articles, "
        "most of which have no author.",
        "",
        "| settings | readers | lists | with 3+ of one author | with more than 3 | max of one author "
        "| shorter than 12 | ms per list (all readers) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, readers, n, share3, share4, top, short, ms in rows:
        lines.append(f"| {label} | {readers} | {n:,} | {share3:.1%} | {share4:.1%} | {top} | {short} | {ms:.1f} |")
    lines += ["", "Goal (issue 17): at most 10% of readers' top-12 lists hold 3 books by one author, none holds more.",
              "", "ms per list: wall time of the computed path (no stored body) over every reader, in process on a "
              "shared machine; the variants ran one after the other, so load differences show. Served requests "
              "read the stored body (`benchmarks/serving.py`)."]
    return lines


# --- goodbooks-10k, offline --------------------------------------------------------------------------

def _goodbooks(seed: int):
    from recommendations.algorithms import evaluation as ev

    base = DATA_DIR / "goodbooks-10k"
    rpath, bpath = base / "ratings_v1.csv.gz", base / "books.csv"
    if not rpath.exists() or not bpath.exists():
        sys.exit(f"goodbooks-10k not found under {base}")
    with gzip.open(rpath, "rt") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[int(v) for v in r] for r in reader], dtype=np.int64)
    book, user = data[:, header.index("book_id")], data[:, header.index("user_id")]
    author: dict[int, str] = {}
    with open(bpath, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            author[int(r["book_id"])] = r["authors"].split(",")[0].strip().casefold()
    _, u = np.unique(user, return_inverse=True)
    books, i = np.unique(book, return_inverse=True)
    import scipy.sparse as sp

    X = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(int(u.max()) + 1, int(i.max()) + 1))
    X.sum_duplicates()
    X.data[:] = 1.0
    names = [author.get(int(b), "") for b in books]
    codes = {name: code for code, name in enumerate(sorted(set(names) - {""}))}
    item_keys = np.array([codes.get(name, -1) for name in names], dtype=np.int64)
    train, test = ev.leave_one_out_split(X, random_state=seed)
    return train, test, item_keys


def offline(args: argparse.Namespace) -> list[str]:
    """Fit the default algorithm on goodbooks-10k and compare the plain and the capped top 10."""
    from recommendations.algorithms import get_estimator
    from recommendations.algorithms import diversity as dv
    from recommendations.algorithms import evaluation as ev

    log("Loading goodbooks-10k")
    train, test, item_keys = _goodbooks(args.seed)
    n_users, n_items = train.shape
    test_users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0))
    rng = np.random.default_rng(args.seed)
    if args.max_test_users and test_users.size > args.max_test_users:
        test_users = np.sort(rng.choice(test_users, args.max_test_users, replace=False))
    log(f"Fitting auto (its defaults) on {n_users:,} users x {n_items:,} items")
    estimator = get_estimator("auto")
    started = time.perf_counter()
    estimator.fit(train)
    fit_seconds = time.perf_counter() - started
    log(f"Fitted in {fit_seconds:.0f} s; scoring {test_users.size:,} test users")
    k = 10
    caps = f"caps {list(dv.DEFAULT_CAPS)}"
    variants = {"no cap": None, f"{caps}, no penalty": 0.0, f"{caps} + penalty 8": 8.0,
                f"{caps} + penalty {dv.DEFAULT_PENALTY:g} (the defaults)": dv.DEFAULT_PENALTY,
                f"{caps} + penalty 16": 16.0}
    lists: dict[str, list] = {label: [] for label in variants}
    positives = []
    for start in range(0, test_users.size, 512):
        block = test_users[start:start + 512]
        S = np.asarray(estimator.score(train[block]), dtype=np.float64)
        seen = train[block]
        np.nan_to_num(S, copy=False, nan=-np.inf)
        S[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)), seen.indices] = -np.inf  # seen books never listed
        pool = np.argpartition(-S, args.pool - 1, axis=1)[:, :args.pool]
        order = np.argsort(-np.take_along_axis(S, pool, axis=1), axis=1, kind="stable")
        pool = np.take_along_axis(pool, order, axis=1)
        pool = np.where(np.isfinite(np.take_along_axis(S, pool, axis=1)), pool, -1)
        for label, penalty in variants.items():
            capped = pool[:, :k] if penalty is None else dv.capped_top_n(pool, item_keys, k, penalty=penalty)
            lists[label].append(capped)
        positives.append(test.indices[test.indptr[block]])  # one held-out book per user
    positives = np.concatenate(positives)
    popularity = np.diff(train.tocsc().indptr)

    def metrics(lists: np.ndarray) -> dict[str, float]:
        hit = lists == positives[:, None]
        position = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        ndcg = np.where(position >= 0, 1.0 / np.log2(np.maximum(position, 0) + 2.0), 0.0)
        worst = dv.max_key_counts(lists, item_keys)
        return {
            "HR@10": float(np.mean(position >= 0)),
            "NDCG@10": float(np.mean(ndcg)),
            "coverage": dv.catalogue_coverage(lists, n_items),
            "ILD (author)": dv.intra_list_diversity(lists, item_keys=item_keys),
            "novelty (bits)": dv.novelty(lists, popularity, n_users),
            "popularity share": dv.popularity_share(lists, popularity),
            "3+ of one author": float(np.mean(worst >= 3)),
            "max of one author": float(worst.max(initial=0)),
        }

    results = {label: metrics(np.vstack(parts)) for label, parts in lists.items()}
    base = results["no cap"]["NDCG@10"]
    for label, m in results.items():
        m["NDCG@10 change"] = (m["NDCG@10"] - base) / base if base else float("nan")
        log(f"{label}: " + ", ".join(f"{name} {value:.4f}" for name, value in m.items()))
    loss = -results[f"{caps} + penalty {dv.DEFAULT_PENALTY:g} (the defaults)"]["NDCG@10 change"]
    names = list(next(iter(results.values())))
    lines = [
        f"### goodbooks-10k, random leave-one-out, full ranking ({test_users.size:,} random test users of "
        f"{int(((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0)).sum()):,}; "
        "`auto` with its defaults (it tunes itself in `fit`), "
        f"fit {fit_seconds:.0f} s; lists cut from each user's top {args.pool})",
        "",
        "| list | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, m in results.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{m[name]:.0f}" if name == "max of one author" else f"{m[name]:+.2%}" if name == "NDCG@10 change"
            else f"{m[name]:.4f}" for name in names) + " |")
    lines += ["", f"Relative NDCG@10 loss of the default cap: **{loss:.2%}** (goal: at most 2%; negative is a gain)."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("demo", "offline", "both"), default="both")
    parser.add_argument("--sqlite", type=Path,
                        help="Reuse (or create and keep) this SQLite database for the demo part.")
    parser.add_argument("--max-test-users", type=int, default=10000, help="Random test users of goodbooks (0: all).")
    parser.add_argument("--pool", type=int, default=100, help="Candidates per user the capped list is cut from.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = " ".join(["python", "benchmarks/diversity.py", *sys.argv[1:]])

    def measured(part) -> list[str]:
        started = dt.datetime.now(dt.timezone.utc)
        lines = part(args)
        return lines + ["", f"Command: `{command}` · machine: {os.cpu_count()} cores, Python "
                        f"{platform.python_version()}, shared with other jobs (load average {loadavg()} at the end) "
                        f"· run started {started:%Y-%m-%d %H:%M} UTC.", ""]

    sections = []
    if args.part in ("offline", "both"):
        sections += measured(offline)
    if args.part in ("demo", "both"):
        sections += measured(demo)
    header = [
        "# Diversity: repeated authors in top-N lists, and the cost of the cap",
        "",
        "`DIVERSITY_CAPS` (default `[(6, 2), (12, 3)]`: at most 2 items of one author among the first 6, 3 in "
        "a list of 12) and `DIVERSITY_PENALTY` (default 12: below the caps, a repeat of an author competes 12 "
        "places further down per book of that author already listed), applied by "
        "`recommendations.algorithms.diversity.capped_ranking`.",
        "",
    ]
    text = "\n".join(header + sections)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if args.results.exists() and args.part != "both":
        # Keep the other part's section of an earlier run.
        old = args.results.read_text().split("### ")
        keep = [s for s in old[1:] if s.startswith("Demo site") == (args.part == "offline")]
        text = text.rstrip() + "\n\n" + "".join("### " + s for s in keep)
    args.results.write_text(text.rstrip() + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
