"""Compares `auto` with no flags against dense EASE^R and implicit's BM25, Cosine and ALS with their defaults.

Usage (from the repository root; smallest data sets first, each printed as it finishes)::

    nice -n 10 .venv/bin/python benchmarks/auto_vs_baselines.py
    nice -n 10 .venv/bin/python benchmarks/auto_vs_baselines.py --datasets ml-100k,ibm-articles --no-write

What a user of ``python -m recommendations recommend --algorithm auto`` gets (binary interactions, no
timestamps, ``Auto()`` with its defaults, which tunes itself on TRAIN) against the baselines a reader
would try first: our EASE^R with its registry defaults (lambda 500, dense weights) and implicit's
``BM25Recommender()``, ``CosineRecommender()`` and ``AlternatingLeastSquares(random_state=0)``, each
with implicit's defaults. Protocol: random leave-one-out (seed 0) of every user with 2+ interactions,
full ranking, TRAIN items excluded, each model's top-10 list; NDCG@10 = 1 / log2(position + 2) of the
held-out item in the list. The difference auto - baseline gets a paired bootstrap 95% interval over test
users (2,000 resamples): **win** when the interval is above 0, **loss** when below, else **tie**.

``candy`` is the course's candy ratings (``bre-candy/candy.csv``: item, user, review), read as binary pairs.
Data is read from ../shared/data (or $BRE_DATA_DIR) at run time and never copied into the repository
(MovieLens' terms forbid redistribution); an absent data set is skipped with a message. Results:
benchmarks/results/auto_vs_baselines.json and .md (assembled into BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accuracy import DATA_DIR, _csr, load_goodbooks, load_ibm  # noqa: E402

from recommendations.algorithms import get_estimator  # noqa: E402
from recommendations.algorithms.splits import leave_one_out_split  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BASELINES = ("ease", "implicit-bm25", "implicit-cosine", "implicit-als")
#: Smallest first, so a run cut short still reports the cheap sets.
DATASETS = ("candy", "ibm-articles", "ml-100k", "deskdrop", "ml-latest-small", "citeulike-t", "citeulike-a", "ml-1m",
            "goodbooks-10k", "pinterest")


def _pairs(users, items) -> sp.csr_matrix:
    _, u = np.unique(np.asarray(users), return_inverse=True)
    _, i = np.unique(np.asarray(items), return_inverse=True)
    return _csr(u, i, (int(u.max()) + 1, int(i.max()) + 1))


def _dat_lists(path: Path) -> sp.csr_matrix:
    """citeulike ``users.dat``: one line per user, "n item item ..."."""
    users, items = [], []
    for u, line in enumerate(path.read_text().splitlines()):
        for item in line.split()[1:]:
            users.append(u)
            items.append(int(item))
    return _pairs(users, items)


def _csv_pairs(path: Path, user: str, item: str, sep: str = ",", names=None) -> sp.csr_matrix:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=sep, fieldnames=names)
        rows = [(r[user], r[item]) for r in reader]
    return _pairs([r[0] for r in rows], [r[1] for r in rows])


def load(name: str) -> sp.csr_matrix | None:
    """The whole data set as a binary users x items matrix, or None (with a message) when absent."""
    d = DATA_DIR
    paths = {
        "candy": d / "bre-candy" / "candy.csv",
        "ml-100k": d / "movielens-100k" / "u.data",
        "ml-latest-small": d / "movielens-latest-small" / "ratings.csv",
        "ml-1m": d / "movielens-1m" / "ratings.csv.gz",
        "citeulike-a": d / "citeulike-a" / "users.dat",
        "citeulike-t": d / "citeulike-t" / "users.dat",
        "deskdrop": d / "deskdrop" / "users_interactions.csv.gz",
        "pinterest": d / "ncf-ml-1m-pinterest" / "pinterest-20.train.rating",
        "ibm-articles": d / "ibm-watson-community-articles" / "user-item-interactions.csv.gz",
        "goodbooks-10k": d / "goodbooks-10k" / "ratings_v1.csv.gz",
    }
    path = paths[name]
    if not path.exists():
        print(f"SKIP {name}: {path} not found", flush=True)
        return None
    if name == "ml-100k":
        return _csv_pairs(path, "u", "i", sep="\t", names=["u", "i", "r", "t"])
    if name == "candy":
        return _csv_pairs(path, "user", "item")
    if name == "ml-latest-small":
        return _csv_pairs(path, "userId", "movieId")
    if name == "ml-1m":
        return _csv_pairs(path, "user_id", "movie_id")
    if name in ("citeulike-a", "citeulike-t"):
        return _dat_lists(path)
    if name == "deskdrop":
        return _csv_pairs(path, "personId", "contentId")
    if name == "pinterest":
        return _csv_pairs(path, "u", "i", sep="\t", names=["u", "i", "r"])
    if name == "ibm-articles":
        ds = load_ibm(0)
    else:
        ds = load_goodbooks(0)
    return sp.csr_matrix(ds["splits"][0][1] + ds["splits"][0][2])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _exponent(info: dict) -> str:
    """The chosen popularity exponent after the blend's weights, when there is one."""
    return f", popularity exponent {info['popularity_exponent']}" if info.get("popularity_exponent") else ""


def top10(name: str, train: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, dict]:
    """Fit ``name`` on ``train``; return the top-10 unseen items of ``users`` and what it cost."""
    t0, c0 = time.perf_counter(), _cpu()
    info: dict = {}
    if name.startswith("implicit-"):
        from implicit.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
        from threadpoolctl import threadpool_limits

        model = {"implicit-bm25": BM25Recommender, "implicit-cosine": CosineRecommender}.get(name)
        model = model() if model else AlternatingLeastSquares(random_state=0)
        with threadpool_limits(1, "blas"):
            model.fit(train, show_progress=False)
            ids, _ = model.recommend(users, train[users], N=10, filter_already_liked_items=True)
    else:
        est = get_estimator(name) if name == "auto" else get_estimator("ease", top_k=None)
        est.fit(train)
        ids, _ = est.recommend_all(train, n=10, exclude_seen=True, users=users)
        if name == "auto":
            t = est.tuning_
            info = {"chosen": t.get("params", {}).get("weights"), "validation": t.get("blend"),
                    "popularity_exponent": t.get("params", {}).get("popularity_exponent", 0.0),
                    "members": t.get("member_scores"), "candidates": t.get("candidates"),
                    "tuning_seconds": t.get("seconds"), "folds": t.get("folds")}
    info.update(wall_seconds=time.perf_counter() - t0, cpu_seconds=_cpu() - c0)
    return np.asarray(ids), info


def ndcg_per_user(ids: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    hit = ids == held_out[:, None]
    pos = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), 1.0 / np.log2(pos + 2.0), 0.0)


def paired_interval(diff: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, diff.size, diff.size)].mean() for _ in range(n_boot)])
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def split(X: sp.csr_matrix, max_users: int | None = None):
    """Random leave-one-out (seed 0): TRAIN, the test users (at most ``max_users``, seed 0) and their held-out item."""
    train, test = leave_one_out_split(X, random_state=0)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    users = users[np.diff(train.indptr)[users] > 0]
    if max_users and users.size > max_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
    return train, users, test.indices[test.indptr[users]]


def run_dataset(name: str, max_users: int | None) -> dict | None:
    X = load(name)
    if X is None:
        return None
    train, users, held = split(X, max_users)
    print(f"== {name}: {X.shape[0]:,} users, {X.shape[1]:,} items, {X.nnz:,} pairs; {users.size:,} test users",
          flush=True)
    scores, infos = {}, {}
    for algo in ("auto", *BASELINES):
        if algo == "ease" and X.shape[1] > 20_000:
            print(f"   {algo}: skipped ({X.shape[1]:,} items > 20,000)", flush=True)
            continue
        ids, info = top10(algo, train, users)
        scores[algo], infos[algo] = ndcg_per_user(ids, held), info
        print(f"   {algo:16s} NDCG@10 {scores[algo].mean():.4f}  wall {info['wall_seconds']:.1f}s "
              f"cpu {info['cpu_seconds']:.1f}s" + (f"  {info.get('chosen')}{_exponent(info)}" if algo == "auto" else ""), flush=True)
    rows = []
    for base in (b for b in BASELINES if b in scores):
        lo, hi = paired_interval(scores["auto"] - scores[base])
        verdict = "win" if lo > 0 else "loss" if hi < 0 else "tie"
        rows.append({"baseline": base, "ndcg": float(scores[base].mean()), "diff": float((scores["auto"] - scores[base]).mean()),
                     "lo": lo, "hi": hi, "verdict": verdict})
        print(f"   auto vs {base:16s} {rows[-1]['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}] {verdict.upper()}", flush=True)
    return {"dataset": name, "shape": list(X.shape), "nnz": int(X.nnz), "test_users": int(users.size),
            "auto": float(scores["auto"].mean()), "auto_info": infos["auto"], "baselines": rows,
            "baseline_info": {k: v for k, v in infos.items() if k != "auto"},
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": "/".join(f"{x:.1f}" for x in os.getloadavg()), "command": " ".join(sys.argv)}


def records_merge(store: Path, records: list[dict], key: str, order: Sequence[str]) -> list[dict]:
    """Replace the stored rows of ``store`` (JSON) that ``records`` measured again, keep the others, sort by
    ``order`` (rows of names it does not know last) and write them back; return them."""
    old = json.loads(store.read_text()) if store.exists() else []
    done = {r[key] for r in records}
    merged = [r for r in old if r[key] not in done] + records
    merged.sort(key=lambda r: order.index(r[key]) if r[key] in order else len(order))
    store.write_text(json.dumps(merged, indent=1))
    return merged


def write(records: list[dict]) -> None:
    records = records_merge(RESULTS / "auto_vs_baselines.json", records, "dataset", DATASETS)
    out = ["# `auto` with no flags against simple baselines with their defaults", "",
           "Command: `nice -n 10 python benchmarks/auto_vs_baselines.py [--datasets ...]` (see its docstring). "
           "Random leave-one-out (seed 0), full ranking, TRAIN items excluded, NDCG@10 of each model's top-10 list; "
           "auto - baseline with a paired bootstrap 95% interval over test users (win: above 0, loss: below 0, "
           "else tie). Baselines: our EASE^R (lambda 500, dense), implicit 0.7.3 `BM25Recommender()`, "
           "`CosineRecommender()`, `AlternatingLeastSquares(random_state=0)`. `auto` is `Auto()` with its defaults "
           "(what `recommend --algorithm auto` fits on a CSV without a timestamp column). Machine: 2 cores, shared "
           "with other engineers' jobs (load average 1/5/15 min after each data set in its row); seconds are wall "
           "and CPU (user + system, all threads, `getrusage`) of fit + top-10 for every test user.", ""]
    out += ["| data set | users x items, pairs | test users | auto NDCG@10 | auto chosen blend | EASE^R | BM25 | "
            "Cosine | ALS | auto vs each (diff [95% interval]) | auto wall / CPU s | measured, load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        by = {b["baseline"]: b for b in r["baselines"]}
        cell = lambda b: f"{by[b]['ndcg']:.4f}" if b in by else "—"  # noqa: E731
        vs = "; ".join(f"{b['baseline'].replace('implicit-', '')} {b['diff']:+.4f} [{b['lo']:+.4f}, {b['hi']:+.4f}] "
                       f"**{b['verdict']}**" for b in r["baselines"])
        info = r["auto_info"]
        out.append(f"| {r['dataset']} | {r['shape'][0]:,} x {r['shape'][1]:,}, {r['nnz']:,} | {r['test_users']:,} | "
                   f"{r['auto']:.4f} | `{json.dumps(info.get('chosen'))}`{_exponent(info)} | {cell('ease')} | {cell('implicit-bm25')} | "
                   f"{cell('implicit-cosine')} | {cell('implicit-als')} | {vs} | {info['wall_seconds']:.0f} / "
                   f"{info['cpu_seconds']:.0f} | {r['date']}, {r['load']} |")
    verdicts = [b["verdict"] for r in records for b in r["baselines"]]
    out += ["", f"Totals: {verdicts.count('win')} wins, {verdicts.count('tie')} ties, {verdicts.count('loss')} losses "
            f"over {len(records)} data sets. Goal (win or tie on every set): "
            + ("**met** on the sets measured." if "loss" not in verdicts else "**not met**."), ""]
    (RESULTS / "auto_vs_baselines.md").write_text("\n".join(out))
    print(f"wrote {RESULTS / 'auto_vs_baselines.md'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--max-test-users", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    records = []
    for name in args.datasets.split(","):
        rec = run_dataset(name, args.max_test_users)
        if rec is not None:
            records.append(rec)
            if not args.no_write:
                write(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
