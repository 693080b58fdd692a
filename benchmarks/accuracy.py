"""Measures top-N accuracy of every algorithm on MovieLens-1M (NCF protocol), goodbooks-10k and the IBM articles.

Usage (from the repository root)::

    .venv/bin/python benchmarks/accuracy.py                       # all data sets, tuned parameters
    .venv/bin/python benchmarks/accuracy.py --datasets ml-1m-ncf  # one data set
    .venv/bin/python benchmarks/accuracy.py --no-tune             # registry defaults, no tuning

Data is read at run time from ../shared/data (or $BRE_DATA_DIR) and never committed; an absent data set is
skipped with a message. Results: benchmarks/results/accuracy.md, benchmarks/results/accuracy.json and the
plot benchmarks/results/accuracy_vs_fit_time.png (needs matplotlib).

Protocols (scoring rule of issue 3 everywhere: train items score -inf, rank = #higher + 0.5 x #tied):

* ml-1m-ncf: the NCF split of He et al. (WWW 2017): each user's latest rating is the test positive, ranked
  against the 99 sampled negatives of ``ml-1m.test.negative`` (sampled protocol), and also against every
  item not in the user's train data (full ranking). The train file is a RECONSTRUCTION
  (``ml-1m.train.rating.reconstructed.gz``, see its SOURCE.md), so figures are approximate.
* goodbooks-10k and ibm-articles: full ranking, with (a) random leave-one-out and (b) a time-based
  leave-last-out. Neither file has timestamps: goodbooks uses the book's original publication year as the
  time proxy (hold out the most recently published book a user rated; same-year ties broken at random),
  and the IBM log uses the row order of ``user-item-interactions.csv`` (hold out the article of the user's
  last row).

Hyperparameters: unless --no-tune, every algorithm is tuned on a validation split carved out of the
(random-split) TRAIN only (random leave-one-out), once per protocol the data set's tables use (99 sampled
negatives for the NCF sampled table, full ranking on at most --tune-users validation users otherwise), best
validation NDCG@10; the choice is reused for the time-based split. ItemKNN, RP3beta, EASE^R and iALS are tuned
as the members of `auto` (``evaluation.tune_auto_protocols``: --tune-iter random points of
``evaluation.DEFAULT_SEARCH_SPACES`` each, --ease-iter for EASE^R above 5,000 items, plus ``AUTO_DEFAULTS``), so each tuned
baseline had the same candidates as auto's member; auto then searches its blend weights on cached validation
scores. P3alpha gets --tune-iter points of its own space. The test split is never read while tuning.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import shlex
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from recommendations.algorithms import evaluation as ev  # noqa: E402

import warm_blend  # noqa: E402

DATA_DIR = Path(os.environ.get("BRE_DATA_DIR", ROOT.parent / "shared" / "data"))
RESULTS_DIR = ROOT / "benchmarks" / "results"
ALGORITHMS = ["toppop", "itemknn", "userknn", "p3alpha", "rp3beta", "ease", "ials", "auto"]
csv.field_size_limit(1 << 27)


def _csr(rows, cols, shape) -> sp.csr_matrix:
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def load_ml1m_ncf() -> dict | None:
    base = DATA_DIR / "ncf-ml-1m-pinterest"
    files = [base / "ml-1m.train.rating.reconstructed.gz", base / "ml-1m.test.rating", base / "ml-1m.test.negative"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"SKIP ml-1m-ncf: missing {', '.join(missing)}")
        return None
    with gzip.open(files[0], "rt") as fh:
        tr = np.loadtxt(fh, dtype=np.int64, usecols=(0, 1))
    te = np.loadtxt(files[1], dtype=np.int64, usecols=(0, 1))
    neg_u, neg_i = [], []
    with open(files[2]) as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            u = int(parts[0].strip("()").split(",")[0])
            negs = [int(x) for x in parts[1:] if x.strip()]
            neg_u += [u] * len(negs)
            neg_i += negs
    n_users = int(max(tr[:, 0].max(), te[:, 0].max()) + 1)
    n_items = int(max(tr[:, 1].max(), te[:, 1].max(), max(neg_i)) + 1)
    shape = (n_users, n_items)
    train = _csr(tr[:, 0], tr[:, 1], shape)
    return {
        "name": "ml-1m-ncf",
        "item_keys": [str(i) for i in range(n_items)],
        "title": "MovieLens-1M, NCF split (reconstructed train file)",
        "train_for_tuning": train,
        "tune_negatives": 99,
        "splits": [
            ("NCF leave-latest-out, 99 sampled negatives", train, _csr(te[:, 0], te[:, 1], shape), _csr(neg_u, neg_i, shape)),
            ("NCF leave-latest-out, full ranking", train, _csr(te[:, 0], te[:, 1], shape), None),
        ],
        "published": {"ease": (0.7192, 0.4494)},
    }


def _train_times(T: sp.csr_matrix, train: sp.csr_matrix) -> sp.csr_matrix:
    """The time (proxy) of each TRAIN pair: what ``auto`` may validate on with ``--auto-timestamps``."""
    times = sp.csr_matrix(T.multiply(train != 0), dtype=np.float64)
    times.sort_indices()
    return times


def load_goodbooks(seed: int) -> dict | None:
    base = DATA_DIR / "goodbooks-10k"
    rpath, bpath = base / "ratings_v1.csv.gz", base / "books.csv"
    if not rpath.exists() or not bpath.exists():
        print(f"SKIP goodbooks-10k: {rpath} or {bpath} not found")
        return None
    with gzip.open(rpath, "rt") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        data = np.array([[int(v) for v in r] for r in reader], dtype=np.int64)
    book = data[:, header.index("book_id")]
    user = data[:, header.index("user_id")]
    year: dict[int, float] = {}
    with open(bpath, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            try:
                year[int(r["book_id"])] = float(r["original_publication_year"])
            except ValueError:
                year[int(r["book_id"])] = float("nan")
    _, u = np.unique(user, return_inverse=True)
    books, i = np.unique(book, return_inverse=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    X = _csr(u, i, shape)
    item_year = np.array([year.get(int(b), np.nan) for b in books])
    item_year = np.where(np.isnan(item_year), -1e9, item_year)  # unknown year: never the "latest"
    T = ev.last_timestamp_matrix(u, i, item_year[i], shape)
    rnd = ev.leave_one_out_split(X, random_state=seed)
    tim = ev.leave_last_out_split(X, T, random_state=seed)
    return {
        "split_timestamps": {
            "time proxy (latest publication year) leave-last-out, full ranking": _train_times(T, tim[0]),
        },
        "name": "goodbooks-10k",
        "item_keys": [str(int(b)) for b in books],
        "title": "goodbooks-10k (v1 ratings, every rating = an interaction)",
        "train_for_tuning": rnd[0],
        "tune_negatives": None,
        "splits": [
            ("random leave-one-out, full ranking", rnd[0], rnd[1], None),
            ("time proxy (latest publication year) leave-last-out, full ranking", tim[0], tim[1], None),
        ],
        "published": {},
    }


def load_ibm(seed: int) -> dict | None:
    path = DATA_DIR / "ibm-watson-community-articles" / "user-item-interactions.csv.gz"
    if not path.exists():
        print(f"SKIP ibm-articles: {path} not found")
        return None
    users, items = [], []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            if not r["email"]:
                continue  # 17 rows without a user
            users.append(r["email"])
            items.append(int(float(r["article_id"])))
    _, u = np.unique(np.array(users), return_inverse=True)
    articles, i = np.unique(np.array(items), return_inverse=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    X = _csr(u, i, shape)
    T = ev.last_timestamp_matrix(u, i, np.arange(u.size, dtype=np.float64), shape)
    rnd = ev.leave_one_out_split(X, random_state=seed)
    tim = ev.leave_last_out_split(X, T, random_state=seed)
    return {
        "split_timestamps": {"time proxy (log row order) leave-last-out, full ranking": _train_times(T, tim[0])},
        "name": "ibm-articles",
        "item_keys": [str(int(a)) for a in articles],
        "title": "IBM Watson Studio community articles (read events, repeats collapsed)",
        "train_for_tuning": rnd[0],
        "tune_negatives": None,
        "splits": [
            ("random leave-one-out, full ranking", rnd[0], rnd[1], None),
            ("time proxy (log row order) leave-last-out, full ranking", tim[0], tim[1], None),
        ],
        "published": {},
    }


def run(args: argparse.Namespace) -> int:
    from recommendations.algorithms import ALGORITHMS as REGISTRY, get_estimator

    names = [a for a in args.algorithms.split(",") if a]
    missing = [a for a in names if a not in REGISTRY]
    if missing:
        print(f"NOTE: not in the registry, skipped: {', '.join(missing)}")
    names = [a for a in names if a in REGISTRY]
    loaders = {
        "ml-1m-ncf": lambda: load_ml1m_ncf(),
        "goodbooks-10k": lambda: load_goodbooks(args.seed),
        "ibm-articles": lambda: load_ibm(args.seed),
    }
    results: list[dict] = []
    blend_rows: list[dict] = []
    for ds_name in args.datasets.split(","):
        t_load = time.perf_counter()
        ds = loaders[ds_name]()
        if ds is None:
            continue
        X = ds["train_for_tuning"]
        print(f"== {ds['title']}: {X.shape[0]} users, {X.shape[1]} items, loaded in {time.perf_counter() - t_load:.1f}s",
              flush=True)
        if args.reuse_params:
            params_by_algo, validation = {}, {}
        else:
            params_by_algo, validation = tune_dataset(ds, names, args)
        features = warm_blend.item_features(ds) if args.cold_blend else None
        for split_label, train, test, negatives in ds["splits"]:
            if args.splits and args.splits not in split_label:
                continue
            cold = warm_blend.cold_model(train, features, args.cold_params) if features is not None else None
            base_label = split_label
            test_users = np.flatnonzero(np.diff(test.indptr))
            if args.max_test_users and test_users.size > args.max_test_users:
                rng = np.random.default_rng(args.seed)
                keep = np.zeros(test.shape[0], dtype=np.float32)
                keep[rng.choice(test_users, size=args.max_test_users, replace=False)] = 1
                test = sp.csr_matrix(sp.diags(keep) @ test)
                test.eliminate_zeros()
                split_label += f" (random {args.max_test_users:,} of {test_users.size:,} test users)"
            protocol = "sampled" if negatives is not None else "full"
            for name in names:
                params = (warm_blend.stored_params(ds["name"], base_label, name) or {} if args.reuse_params
                          else params_by_algo[(name, protocol)])
                est = get_estimator(name, **params)
                times = ds.get("split_timestamps", {}).get(split_label.split(" (random ")[0])
                try:
                    if name == "auto" and args.auto_timestamps and times is not None:
                        # auto validates on each user's latest TRAIN item by the split's own time proxy
                        t0 = time.perf_counter()
                        est.fit(train, timestamps=times)
                        fit_seconds = time.perf_counter() - t0
                        res = ev.evaluate(est, train, test, ks=(10,), negatives=negatives, name=name, params=params,
                                          fit=False)
                        res.fit_seconds, res.params = fit_seconds, {**params, "timestamps": "train time proxy"}
                    else:
                        res = ev.evaluate(est, train, test, ks=(10,), negatives=negatives, name=name, params=params)
                except (ValueError, MemoryError) as exc:
                    print(f"   {split_label} {name}: FAILED {exc}", flush=True)
                    continue
                if cold is not None:
                    on = warm_blend.evaluate_on(est, cold[0], features, train, test, negatives)
                    blend_rows.append(warm_blend.row(ds, split_label, name, params, res, on, cold[1],
                                                     "python benchmarks/accuracy.py " + shlex.join(sys.argv[1:])))
                    print(f"   {split_label} | {name}: NDCG@10 blend off {res.metrics['NDCG@10']:.4f} on "
                          f"{on.metrics['NDCG@10']:.4f} ({100 * blend_rows[-1]['relative']:+.2f}%)", flush=True)
                m = res.metrics
                pub = ds["published"].get(name) if negatives is not None else None
                results.append({
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": "python benchmarks/accuracy.py " + shlex.join(sys.argv[1:]),
                    "dataset": ds["name"], "title": ds["title"], "split": split_label, "algorithm": name,
                    "params": params, "HR@10": m["HR@10"], "NDCG@10": m["NDCG@10"], "Recall@10": m["Recall@10"],
                    "MAP@10": m["MAP@10"], "Coverage@10": m["Coverage@10"], "fit_seconds": res.fit_seconds,
                    "score_seconds": res.score_seconds, "n_users": res.n_users, "published": pub,
                    "validation_NDCG@10": validation.get((name, protocol)),
                    "load": "/".join(f"{x:.1f}" for x in os.getloadavg()),
                })
                print(f"   {split_label} | {name}: HR@10 {m['HR@10']:.4f} NDCG@10 {m['NDCG@10']:.4f} "
                      f"Coverage@10 {m['Coverage@10']:.4f} fit {res.fit_seconds:.1f}s score {res.score_seconds:.1f}s"
                      + (f" (published {pub[0]:.4f}/{pub[1]:.4f})" if pub else ""), flush=True)
                del est
    if blend_rows and not args.no_write:
        warm_blend.write(blend_rows, args.cold_params)
    if results and not args.no_write and not args.cold_blend:
        store = RESULTS_DIR / "accuracy.json"
        if args.merge and store.exists():
            # keep rows of earlier runs that this run did not redo (same data set, split and algorithm)
            done = {(r["dataset"], r["split"], r["algorithm"]) for r in results}
            old = [r for r in json.loads(store.read_text(encoding="utf-8"))
                   if (r["dataset"], r["split"], r["algorithm"]) not in done]
            by_key = {(r["dataset"], r["split"], r["algorithm"]): r for r in results}
            order = old + list(by_key.values())
            results = sorted(order, key=lambda r: ([d for d in DEFAULT_DATASETS.split(",")].index(r["dataset"])
                                                    if r["dataset"] in DEFAULT_DATASETS else 99,
                                                    r["split"], ALGORITHMS.index(r["algorithm"])
                                                    if r["algorithm"] in ALGORITHMS else 99))
        write(results, args)
    return 0


#: Members of `auto`; their tuned-baseline rows reuse auto's member search (same candidates, same budget).
AUTO_MEMBERS = ("itemknn", "rp3beta", "ease", "ials")


def tune_dataset(ds: dict, names: list[str], args: argparse.Namespace) -> tuple[dict, dict]:
    """Tune every algorithm on a validation split carved out of the data set's TRAIN, once per protocol in use.

    Returns ``params[(name, protocol)]`` and ``validation_score[(name, protocol)]``; protocol is "sampled" for
    splits with sampled negatives, else "full". With --no-tune every algorithm gets its defaults.
    """
    protocols = {("sampled" if neg is not None else "full"): (ds["tune_negatives"] if neg is not None else None)
                 for _, _, _, neg in ds["splits"]}
    params = {(n, p): {} for n in names for p in protocols}
    scores: dict = {}
    if args.no_tune:
        if "auto" in names and protocols.get("sampled"):
            # what `evaluate --negatives` does: auto tunes itself for the protocol it is scored by
            params[("auto", "sampled")] = {"tune_negatives": protocols["sampled"]}
        return params, scores
    X = ds["train_for_tuning"]
    if "auto" in names or any(n in AUTO_MEMBERS for n in names):
        t0 = time.perf_counter()
        res = ev.tune_auto_protocols(X, protocols, metric="NDCG@10", ks=(10,), n_iter=args.tune_iter,
                                     member_iter={"ease": args.ease_iter} if X.shape[1] > 5000 else None,
                                     max_users=args.tune_users,
                                     random_state=args.seed, log=lambda line: print("     " + line, flush=True))
        for p, r in res.items():
            params[("auto", p)], scores[("auto", p)] = r.best_params, r.best_score
            for m, mr in r.members.items():
                params[(m, p)], scores[(m, p)] = mr.best_params, mr.best_score
            if "ease" in r.members:
                # the EASE^R baseline row: the tuned lambda with EASE^R's own dense weights (pruning is a storage
                # detail of auto's blend; on a small catalogue the member was dense already)
                params[("ease", p)] = {k: v for k, v in r.members["ease"].best_params.items() if k != "top_k"}
            print(f"   tuned auto [{p}]: {r.best_params} (validation NDCG@10 {r.best_score:.4f}; members "
                  + ", ".join(f"{m} {mr.best_score:.4f}" for m, mr in r.members.items())
                  + f"; {time.perf_counter() - t0:.0f}s)", flush=True)
    for name in names:
        if name == "auto" or name in AUTO_MEMBERS or not ev.DEFAULT_SEARCH_SPACES.get(name):
            continue
        for p, n_neg in protocols.items():
            t0 = time.perf_counter()
            tr = ev.tune(name, X, metric="NDCG@10", ks=(10,), n_negatives=n_neg, n_iter=args.tune_iter,
                         max_users=args.tune_users, random_state=args.seed)
            params[(name, p)], scores[(name, p)] = tr.best_params, tr.best_score
            print(f"   tuned {name} [{p}]: {tr.best_params} (validation NDCG@10 {tr.best_score:.4f}, "
                  f"{len(tr.trials)} trials, {time.perf_counter() - t0:.0f}s)", flush=True)
    return params, scores


def write(results: list[dict], args: argparse.Namespace, run_time: float | None = None) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if run_time is None:
        tmp = RESULTS_DIR / "accuracy.json.tmp"
        tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
        tmp.replace(RESULTS_DIR / "accuracy.json")
    now = datetime.fromtimestamp(run_time or time.time(), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "python benchmarks/accuracy.py" + (" --no-tune" if args.no_tune else
                                             f" --tune-iter {args.tune_iter} --ease-iter {args.ease_iter}")
    if args.max_test_users:
        cmd += f" --max-test-users {args.max_test_users}"
    if args.datasets != DEFAULT_DATASETS and "--datasets" not in cmd:
        cmd += f" --datasets {args.datasets}"
    if args.algorithms != ",".join(ALGORITHMS):
        cmd += f" --algorithms {args.algorithms}"
    if args.merge:
        cmd += " --merge"
    commands = list(dict.fromkeys(r.get("command", FIRST_RUN_COMMAND) for r in results))
    if not args.report_only and not commands:
        commands = [cmd]
    if args.datasets != DEFAULT_DATASETS:
        cmd += f" --datasets {args.datasets}"
    out = [
        "# Top-N accuracy: MovieLens-1M (NCF protocol), goodbooks-10k, IBM articles",
        "",
        "Commands (rows merged through `benchmarks/results/accuracy.json`; the measured column dates each row): "
        + "; ".join(f"`{c}`" for c in commands) + ".",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, shared with other jobs during the runs "
        f"(the 1/5/15-minute load averages when each row was measured are in its measured column), so seconds are "
        f"inflated · file written {now}.",
        "",
        "Scoring rule (issue 3): train items score -inf; rank = #higher + 0.5 × #tied; HR@10 = [rank < 10]; "
        "NDCG@10 = [rank < 10] / log2(floor(rank) + 2). Coverage@10 = share of the catalogue in some evaluated "
        "user's top 10.",
        "",
        "Hyperparameters: each row's `params` column. Rows with a validation score were tuned per data set on a "
        "validation split carved out of that data set's (random-split) TRAIN only: random leave-one-out, scored "
        "with the protocol of the table (99 sampled negatives for the NCF sampled table, full ranking otherwise; at "
        "most `--tune-users` validation users), best validation NDCG@10, and the choice reused for the time-based "
        "split. ItemKNN, RP3beta, EASE^R and iALS are tuned once as the members of `auto` (`evaluation.tune_auto_protocols`: "
        "`--tune-iter` random points of `evaluation.DEFAULT_SEARCH_SPACES` each (`--ease-iter` for EASE^R above "
        "5,000 items, where each fit costs minutes), plus `AUTO_DEFAULTS`), so a tuned baseline and `auto`'s member "
        "had the same candidates (the EASE^R row uses the tuned lambda with dense weights; `auto`'s member keeps "
        "the top 1,000 per item above 5,000 items); `auto` then also "
        "searches its blend weights on the cached validation scores. P3alpha gets `--tune-iter` points of its own "
        "space; TopPop has nothing to tune. Rows with `{}` and no validation score use registry defaults.",
        "",
        "Notes: the MovieLens-1M train file is a **reconstruction** of NCF's `ml-1m.train.rating` (see "
        "`../shared/data/ncf-ml-1m-pinterest/SOURCE.md`: 849 rare-item ids may be permuted), so its figures are "
        "approximate. goodbooks-10k ratings carry **no timestamps**: its time-based split holds out the most recently "
        "*published* book a user rated (original publication year from books.csv; ties at random). The IBM log "
        "has **no timestamps** either: its time-based split holds out the article of each user's last row in the file. "
        "goodbooks-10k v1 has at most 100 ratings per book (6,248 of the 10,000 books have exactly 100), so popularity "
        "is almost flat: under the tie rule TopPop's candidates tie by the thousand and its HR@10 is 0 there.",
        "",
        "The plot `accuracy_vs_fit_time.png` shows NDCG@10 against fit seconds for every algorithm and split.",
        "",
    ]
    seen_ds = []
    for r in results:
        if r["dataset"] not in seen_ds:
            seen_ds.append(r["dataset"])
    for ds in seen_ds:
        rows = [r for r in results if r["dataset"] == ds]
        out += [f"## {rows[0]['title']}", ""]
        for split in dict.fromkeys(r["split"] for r in rows):
            srows = [r for r in rows if r["split"] == split]
            heading = split if "test users" in split else f"{split} ({srows[0]['n_users']:,} test users)"
            out += [f"### {heading}", "",
                    "| algorithm | HR@10 | NDCG@10 | Recall@10 | MAP@10 | Coverage@10 | fit s | score s | params "
                    "| validation NDCG@10 | measured |",
                    "|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in srows:
                out.append(f"| {r['algorithm']} | {r['HR@10']:.4f} | {r['NDCG@10']:.4f} | {r['Recall@10']:.4f} | "
                           f"{r['MAP@10']:.4f} | {r['Coverage@10']:.4f} | {r['fit_seconds']:.1f} | {r['score_seconds']:.1f} | "
                           f"`{json.dumps(r['params'])}` | {_fmt_val(r.get('validation_NDCG@10'))} | "
                           f"{r.get('date', now)}{' · load ' + r['load'] if r.get('load') else ''} |")
                if r["published"]:
                    p = r["published"]
                    out.append(f"| {r['algorithm']} (published, Ferrari Dacrema et al.) | {p[0]:.4f} | {p[1]:.4f} | | | | | | | | |")
            out.append("")
    tmp = RESULTS_DIR / "accuracy.md.tmp"
    tmp.write_text("\n".join(out), encoding="utf-8")
    tmp.replace(RESULTS_DIR / "accuracy.md")
    print(f"wrote {RESULTS_DIR / 'accuracy.md'}")
    plot(results)


def _fmt_val(x) -> str:
    return "" if x is None else f"{x:.4f}"


def plot(results: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("NOTE: matplotlib not installed; no plot (pip install matplotlib)")
        return
    panels = list(dict.fromkeys((r["dataset"], r["split"]) for r in results))
    ncols = 2
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.2 * nrows), squeeze=False)
    colors = {a: plt.cm.tab10(j) for j, a in enumerate(ALGORITHMS)}
    for ax, (ds, split) in zip(axes.ravel(), panels):
        for r in (r for r in results if r["dataset"] == ds and r["split"] == split):
            x = max(r["fit_seconds"], 1e-3)
            ax.scatter(x, r["NDCG@10"], color=colors.get(r["algorithm"], "k"), s=40)
            ax.annotate(r["algorithm"], (x, r["NDCG@10"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("fit seconds (log scale, 2 cores)")
        ax.set_ylabel("NDCG@10")
        ax.set_title(textwrap.fill(f"{ds}: {split}", 70), fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle("Accuracy vs fit time (benchmarks/accuracy.py)")
    fig.tight_layout()
    path = RESULTS_DIR / "accuracy_vs_fit_time.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


DEFAULT_DATASETS = "ml-1m-ncf,goodbooks-10k,ibm-articles"
#: Command of the first full run, for rows stored before commands were recorded per row.
FIRST_RUN_COMMAND = (
    "python benchmarks/accuracy.py --no-tune --max-test-users 10000 --datasets ibm-articles,ml-1m-ncf,goodbooks-10k"
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DEFAULT_DATASETS)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--tune-iter", type=int, default=4)
    parser.add_argument("--tune-users", type=int, default=3000)
    parser.add_argument("--ease-iter", type=int, default=1, help="random points for EASE^R (slow on big catalogues)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-test-users", type=int, default=None,
                        help="evaluate a random sample of this many test users per split (all users still train)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--splits", default=None, help="measure only the splits whose label contains this text")
    parser.add_argument("--auto-timestamps", action=argparse.BooleanOptionalAction, default=True,
                        help="on time-based splits, give auto's fit the TRAIN pairs' time (proxy) for its validation, "
                             "as the command line does with a timestamp column (default: on)")
    parser.add_argument("--merge", action="store_true",
                        help="replace only the rows this run measures in accuracy.json, keep the others")
    parser.add_argument("--cold-blend", action="store_true",
                        help="score each fitted model with the cold-item blend off and on (issue 19's warm-accuracy "
                             "goal); writes benchmarks/results/cold_warm.md and .json instead of the accuracy tables")
    parser.add_argument("--cold-params", type=json.loads, default={},
                        help="ColdStartHybrid parameters of the blend as JSON (default {}: the site's COLD_START_PARAMS)")
    parser.add_argument("--reuse-params", action="store_true",
                        help="no tuning: each row's parameters from benchmarks/results/accuracy.json")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild accuracy.md and the plot from benchmarks/results/accuracy.json (no fitting)")
    args = parser.parse_args(argv)
    if args.report_only:
        store = RESULTS_DIR / "accuracy.json"
        write(json.loads(store.read_text(encoding="utf-8")), args, run_time=store.stat().st_mtime)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
