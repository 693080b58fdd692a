"""Measures what `auto`'s self-tuning costs: `Auto()` against `Auto(tune=False)` on one data set, wall and CPU seconds.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/auto_tuning_cost.py                 # MovieLens-1M, as a build sees it
    nice -n 10 .venv/bin/python benchmarks/auto_tuning_cost.py --repeat 2      # the determinism check too

The fit a full build runs, in process (no database, no Celery): MovieLens-1M's 1,000,209 ratings as
binary interactions with each pair's time (``benchmarks/pipeline.py``'s loader), so ``auto`` validates on
every user's latest rating. CPU seconds (user + system, all threads, ``getrusage``) are printed beside wall
seconds because the machine is shared; the goal line is the ratio of tuned to untuned (issue 17: <= 3x).
With ``--repeat 2`` the tuned fit runs twice and the two choices must be identical (the search is a count of
fits, not seconds). Data is read from ../shared/data at run time and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from recommendations.algorithms import get_estimator  # noqa: E402
from recommendations.algorithms.splits import last_timestamp_matrix  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def movielens() -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    from pipeline import MOVIELENS_DIR, movielens_ratings

    data = movielens_ratings(MOVIELENS_DIR)
    if data is None:
        print(f"SKIP: MovieLens-1M not found under {MOVIELENS_DIR}")
        return None
    users, movies, _, stamps = data
    _, u = np.unique(users, return_inverse=True)
    _, i = np.unique(movies, return_inverse=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    X = sp.csr_matrix((np.ones(u.size, dtype=np.float32), (u, i)), shape=shape)
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, last_timestamp_matrix(u, i, np.asarray(stamps, dtype=np.float64), shape)


def timed_fit(params: dict, X: sp.csr_matrix, T: sp.csr_matrix) -> tuple[object, float, float]:
    t0, c0 = time.perf_counter(), _cpu()
    est = get_estimator("auto", **params).fit(X, timestamps=T)
    return est, time.perf_counter() - t0, _cpu() - c0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="tuned fits to run (2: check they choose the same)")
    args = parser.parse_args(argv)
    data = movielens()
    if data is None:
        return 0
    X, T = data
    print(f"MovieLens-1M: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} pairs; load {os.getloadavg()}",
          flush=True)
    _, wall0, cpu0 = timed_fit({"tune": False}, X, T)
    print(f"untuned  wall {wall0:6.1f} s  cpu {cpu0:6.1f} s  load {os.getloadavg()[0]:.1f}", flush=True)
    choices = []
    for r in range(args.repeat):
        est, wall, cpu = timed_fit({}, X, T)
        t = est.tuning_
        choices.append(json.dumps(t["params"], sort_keys=True))
        print(f"tuned #{r + 1} wall {wall:6.1f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}  fits {t['fits']}  "
              f"candidates {t['candidates']}  budget cut {t['budget_cut']}", flush=True)
        print(f"   chosen {t['params']['weights']}  validation {t['blend']:.4f}  members "
              f"{ {k: round(v, 4) for k, v in t['member_scores'].items()} }  registry defaults "
              f"{ {k: round(v, 4) for k, v in t['default_scores'].items()} }", flush=True)
        print(f"GOAL tuned / untuned fit <= 3x: wall {wall / wall0:.2f}x, cpu {cpu / cpu0:.2f}x -> "
              f"{'met' if cpu / cpu0 <= 3 else 'NOT met'} (on CPU seconds)", flush=True)
    if args.repeat > 1:
        print("GOAL same choice on every run:", "met" if len(set(choices)) == 1 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
