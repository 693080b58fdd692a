"""Compares `auto` with no flags against every single algorithm of the registry with its defaults.

Usage (from the repository root; each split printed as it finishes)::

    nice -n 10 .venv/bin/python benchmarks/auto_vs_singles.py
    nice -n 10 .venv/bin/python benchmarks/auto_vs_singles.py --splits ibm-random --no-write
    nice -n 10 .venv/bin/python benchmarks/auto_vs_singles.py --algorithms auto   # reuse the cached singles

Issue 17's goal: with defaults and no flags, `auto` is at least as good (NDCG@10, full ranking) as the
best single algorithm of the registry with its defaults. Singles: ``toppop``, ``itemknn``, ``userknn``,
``p3alpha``, ``rp3beta``, ``ease`` and ``ials``, each ``get_estimator(name)`` with no parameters. ``auto``
is ``Auto()`` with its defaults, which tunes itself on TRAIN inside its fit (never on TEST). On a split
defined by time ``auto`` is fitted twice: with the TRAIN pairs' time (what the command line does with a
``timestamp`` column: it validates on each user's latest TRAIN interaction) and without it.

Splits (full ranking, TRAIN items excluded, tie-aware position = #higher + 0.5 x #tied, as
``evaluation.evaluate``): ``ibm-random`` and ``ibm-time`` (``benchmarks/accuracy.py``'s IBM articles
random leave-one-out and time-proxy leave-last-out, seed 0), ``citeulike-cmn`` (the CMN split of
CiteULike-a, ``benchmarks/citeulike_cmn.py``'s full-ranking protocol), ``citeulike-random`` (random
leave-one-out of the CMN train file plus its test positives, seed 0), ``candy``, ``ml-100k``, ``deskdrop``,
``ml-latest-small`` and ``citeulike-t`` (random leave-one-out, seed 0, of ``auto_vs_baselines.py``'s
data), ``ml1m-ncf-full``, ``goodbooks-random``
and ``goodbooks-time`` (``benchmarks/accuracy.py``'s splits; at most ``--max-test-users`` test users,
10,000 by default, sampled with seed 0). Each test user holds one item.
``auto`` - best single (by mean NDCG@10) gets a paired bootstrap 95% interval over test users
(``auto_vs_baselines.paired_interval``, 2,000 resamples) for NDCG@10 and HR@10.

Per-user scores are cached in $BRE_SINGLES_CACHE (default /tmp/bre_auto_vs_singles) so ``--algorithms``
can refit only some rows. Results: benchmarks/results/auto_vs_singles.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accuracy import load_goodbooks, load_ibm, load_ml1m_ncf  # noqa: E402
from auto_vs_baselines import load as load_whole, paired_interval, records_merge  # noqa: E402
from citeulike_cmn import DEFAULT_DATA as CMN_DATA, load as load_cmn  # noqa: E402

from recommendations.algorithms import get_estimator  # noqa: E402
from recommendations.algorithms.metrics import tie_aware_ranks  # noqa: E402
from recommendations.algorithms.splits import leave_one_out_split  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path(os.environ.get("BRE_SINGLES_CACHE", "/tmp/bre_auto_vs_singles"))
SINGLES = ("toppop", "itemknn", "userknn", "p3alpha", "rp3beta", "ease", "ials")
#: Whole data sets split by random leave-one-out (seed 0), as in ``benchmarks/auto_vs_baselines.py``.
WHOLE = ("candy", "ml-100k", "deskdrop", "ml-latest-small", "citeulike-t")
SPLITS = ("ibm-random", "ibm-time", "citeulike-cmn", "citeulike-random", *WHOLE, "ml1m-ncf-full",
          "goodbooks-random", "goodbooks-time")
TITLES = {
    "ibm-random": "IBM articles, random leave-one-out",
    "ibm-time": "IBM articles, time proxy (log row order) leave-last-out",
    "citeulike-cmn": "CiteULike-a, CMN split",
    "citeulike-random": "CiteULike-a, random leave-one-out",
    "ml1m-ncf-full": "MovieLens-1M, NCF split (reconstructed train file), full ranking",
    "goodbooks-random": "goodbooks-10k, random leave-one-out",
    "goodbooks-time": "goodbooks-10k, time proxy (latest publication year) leave-last-out",
    **{name: f"{name}, random leave-one-out" for name in WHOLE},
}


def load_split(name: str) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix | None]:
    """TRAIN, TEST and (for a split defined by time) the TRAIN pairs' time."""
    if name in WHOLE:
        train, test = leave_one_out_split(load_whole(name), random_state=0)
        return train, test, None
    if name == "ml1m-ncf-full":
        _, train, test, _ = load_ml1m_ncf()["splits"][1]
        return train, test, None
    if name.startswith(("ibm", "goodbooks")):
        ds = load_ibm(0) if name.startswith("ibm") else load_goodbooks(0)
        label, train, test, _ = ds["splits"][0 if name.endswith("random") else 1]
        # the split's time proxy (log row order, publication year): what it held out the latest of
        return train, test, ds["split_timestamps"].get(label)
    train, test, _ = load_cmn(Path(CMN_DATA))
    if name == "citeulike-cmn":
        return train, test, None
    train, test = leave_one_out_split(sp.csr_matrix(train + test), random_state=0)
    return train, test, None


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_user(est, train: sp.csr_matrix, test: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NDCG@10 and HR@10 of each test user's one held-out item, full ranking."""
    ndcg, hr = np.zeros(users.size), np.zeros(users.size)
    for a in range(0, users.size, 512):
        block = users[a:a + 512]
        S = np.array(est.score(train[block]), dtype=np.float64, copy=True)
        np.nan_to_num(S, copy=False, nan=-np.inf)
        rows = np.arange(block.size)
        held = test[block].indices
        positive = S[rows, held].copy()
        # candidates: every item outside the user's TRAIN, the held-out one excluded (NaN is not a candidate)
        Tr = train[block]
        S[np.repeat(rows, np.diff(Tr.indptr)), Tr.indices] = np.nan
        S[rows, held] = np.nan
        pos = tie_aware_ranks(positive, S)
        hit = pos < 10
        hr[a:a + block.size] = hit
        ndcg[a:a + block.size] = np.where(hit, 1.0 / np.log2(np.floor(pos) + 2.0), 0.0)
    return ndcg, hr


def measure(name: str, variant: str, train, test, times, users) -> dict:
    t0, c0 = time.perf_counter(), _cpu()
    est = get_estimator(name)
    if variant == "timestamps":
        est.fit(train, timestamps=times)
    else:
        est.fit(train)
    fit_wall, fit_cpu = time.perf_counter() - t0, _cpu() - c0
    ndcg, hr = per_user(est, train, test, users)
    row = {"algorithm": name, "variant": variant, "NDCG@10": float(ndcg.mean()), "HR@10": float(hr.mean()),
           "fit_wall": fit_wall, "fit_cpu": fit_cpu, "load": "/".join(f"{x:.1f}" for x in os.getloadavg()),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    tuning = getattr(est, "tuning_", None)
    if tuning:
        row["chosen"] = tuning.get("params", {}).get("weights")
        row["popularity_exponent"] = tuning.get("params", {}).get("popularity_exponent", 0.0)
        row["validation"] = tuning.get("blend")
        row["member_scores"] = tuning.get("member_scores")
        row["validation_kind"] = tuning.get("validation")
        row["tuning_seconds"] = tuning.get("seconds")
    return row, ndcg, hr


def run_split(split: str, algorithms: list[str], max_test_users: int | None) -> dict:
    train, test, times = load_split(split)
    train, test = sp.csr_matrix(train, dtype=np.float32), sp.csr_matrix(test, dtype=np.float32)
    train.sort_indices()
    test.sort_indices()
    users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0))
    assert (np.diff(test.indptr)[users] == 1).all(), "one held-out item per test user expected"
    if max_test_users and users.size > max_test_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_test_users, replace=False))
    print(f"== {TITLES[split]}: {train.shape[0]:,} users x {train.shape[1]:,} items, {train.nnz:,} TRAIN pairs, "
          f"{users.size:,} test users", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache_file = CACHE / f"{split}.json"
    cached = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    cached = {k: v for k, v in cached.items() if len(v["ndcg"]) == users.size}  # same test users only
    runs = [(a, "plain") for a in algorithms if a in SINGLES or a == "auto"]
    if "auto" in algorithms and times is not None:
        runs.append(("auto", "timestamps"))
    for name, variant in runs:
        try:
            row, ndcg, hr = measure(name, variant, train, test, times, users)
        except ValueError as exc:  # EASE^R refuses catalogues above its max_items
            print(f"   {name:8s} {variant:10s} skipped: {exc}", flush=True)
            continue
        cached[f"{name}/{variant}"] = {**row, "ndcg": ndcg.tolist(), "hr": hr.tolist()}
        cache_file.write_text(json.dumps(cached))
        print(f"   {name:8s} {variant:10s} NDCG@10 {row['NDCG@10']:.4f} HR@10 {row['HR@10']:.4f} "
              f"fit {row['fit_wall']:.0f}s wall / {row['fit_cpu']:.0f}s CPU"
              + (f"  chosen {row['chosen']} (validation {row['validation']}, members {row['member_scores']})"
                 if "chosen" in row else ""), flush=True)
    return compare(split, train, users, cached)


def compare(split: str, train, users, cached: dict) -> dict:
    singles = {k: v for k, v in cached.items() if k.split("/")[0] in SINGLES}
    best_key = max(singles, key=lambda k: singles[k]["NDCG@10"])
    best = singles[best_key]
    autos = []
    for key in ("auto/plain", "auto/timestamps"):
        if key not in cached:
            continue
        a = cached[key]
        cmp = {"variant": a["variant"]}
        for metric, field in (("NDCG@10", "ndcg"), ("HR@10", "hr")):
            diff = np.asarray(a[field]) - np.asarray(best[field])
            lo, hi = paired_interval(diff)
            cmp[metric] = {"diff": float(diff.mean()), "lo": lo, "hi": hi,
                           "verdict": "win" if lo > 0 else "loss" if hi < 0 else "tie"}
        print(f"   auto ({a['variant']}) - {best['algorithm']}: NDCG@10 {cmp['NDCG@10']['diff']:+.4f} "
              f"[{cmp['NDCG@10']['lo']:+.4f}, {cmp['NDCG@10']['hi']:+.4f}], HR@10 {cmp['HR@10']['diff']:+.4f} "
              f"[{cmp['HR@10']['lo']:+.4f}, {cmp['HR@10']['hi']:+.4f}]", flush=True)
        autos.append(cmp)
    rows = {k: {f: v for f, v in r.items() if f not in ("ndcg", "hr")} for k, r in cached.items()}
    return {"split": split, "title": TITLES[split], "shape": list(train.shape), "nnz": int(train.nnz),
            "test_users": int(users.size), "best_single": best["algorithm"], "rows": rows, "comparisons": autos,
            "command": "python benchmarks/auto_vs_singles.py " + " ".join(sys.argv[1:])}


def _cell(c: dict) -> str:
    return f"{c['diff']:+.4f} [{c['lo']:+.4f}, {c['hi']:+.4f}] **{c['verdict']}**"


def write(records: list[dict]) -> None:
    records = records_merge(RESULTS / "auto_vs_singles.json", records, "split", SPLITS)
    out = ["# `auto` with no flags against the registry's single algorithms with their defaults", "",
           "Command: `nice -n 10 python benchmarks/auto_vs_singles.py [--splits ...] [--algorithms ...]` (see its "
           "docstring; rows of one split may come from two invocations, each row dated). Full ranking, TRAIN items "
           "excluded, tie-aware positions as `evaluation.evaluate`. Singles: every single algorithm of the registry "
           "with no parameters. `auto` is `Auto()` with its defaults (tunes itself on TRAIN inside its fit); on the "
           "time-proxy split it is also given the TRAIN pairs' time proxy (`auto` + time), as the command line "
           "does with a `timestamp` column. Difference = auto - best single (by NDCG@10) with a paired bootstrap 95% "
           "interval over test users (win: above 0, loss: below 0, else tie). Machine: 2 cores shared with other "
           "engineers' jobs; fit seconds are wall / CPU (user + system, all threads); load = 1/5/15-minute load "
           "average after the fit and scoring.", ""]
    for r in records:
        out += [f"## {r['title']} ({r['shape'][0]:,} users x {r['shape'][1]:,} items, {r['nnz']:,} TRAIN pairs, "
                f"{r['test_users']:,} test users)", "",
                f"Last command on this split: `{r['command'].strip()}` (rows it did not measure come from the "
                "cache of an earlier run: see their dates).", "",
                "| algorithm | NDCG@10 | HR@10 | fit s (wall / CPU) | measured, load | `auto`'s choice (validation NDCG@10) |",
                "|---|---|---|---|---|---|"]
        order = [f"{s}/plain" for s in SINGLES] + ["auto/plain", "auto/timestamps"]
        for key in (k for k in order if k in r["rows"]):
            row = r["rows"][key]
            label = {"auto/plain": "**auto**", "auto/timestamps": "**auto + time**"}.get(key, row["algorithm"])
            if row["algorithm"] == r["best_single"] and key.endswith("plain"):
                label += " (best single)"
            exponent = f", popularity exponent {row['popularity_exponent']}" if row.get("popularity_exponent") else ""
            choice = (f"`{json.dumps(row['chosen'])}`{exponent} ({row['validation']:.4f}; members "
                      + ", ".join(f"{m} {v:.4f}" for m, v in (row.get("member_scores") or {}).items()) + ")"
                      if row.get("chosen") else "")
            out.append(f"| {label} | {row['NDCG@10']:.4f} | {row['HR@10']:.4f} | {row['fit_wall']:.0f} / "
                       f"{row['fit_cpu']:.0f} | {row['date']}, {row['load']} | {choice} |")
        out.append("")
        for c in r["comparisons"]:
            name = "auto + time" if c["variant"] == "timestamps" else "auto"
            out.append(f"- {name} - {r['best_single']}: NDCG@10 {_cell(c['NDCG@10'])}; HR@10 {_cell(c['HR@10'])}")
        out.append("")
    (RESULTS / "auto_vs_singles.md").write_text("\n".join(out))
    print(f"wrote {RESULTS / 'auto_vs_singles.md'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default=",".join(SPLITS[:3]))
    parser.add_argument("--algorithms", default=",".join((*SINGLES, "auto")))
    parser.add_argument("--max-test-users", type=int, default=10_000,
                        help="score a random sample of this many test users (all users still train)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    records = []
    for split in args.splits.split(","):
        records.append(run_split(split, args.algorithms.split(","), args.max_test_users))
        if not args.no_write:
            write(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
