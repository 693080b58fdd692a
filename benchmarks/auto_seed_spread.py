"""How far `auto`'s own randomness moves its test score: the same split, `Auto(random_state=s)` for several seeds.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/auto_seed_spread.py --datasets ml-100k,deskdrop --seeds 0,1,2,3,4

The seed draws `auto`'s validation carvings, its validation users and iALS's start; the data split is
``auto_vs_baselines.py``'s (random leave-one-out, seed 0, full ranking, TRAIN items excluded, NDCG@10 of
the top-10 list). The spread over seeds is the size of a change to `auto` that a single run cannot tell
from chance. Results are printed, and appended as one JSON line per data set to
benchmarks/results/auto_seed_spread.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from auto_vs_baselines import load, ndcg_per_user, split  # noqa: E402

from recommendations.algorithms import get_estimator  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "auto_seed_spread.jsonl"


def spread(name: str, seeds: list[int]) -> dict | None:
    X = load(name)
    if X is None:
        return None
    train, users, held = split(X)
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        est = get_estimator("auto", random_state=seed).fit(train)
        ids, _ = est.recommend_all(train, n=10, exclude_seen=True, users=users)
        ndcg = float(ndcg_per_user(np.asarray(ids), held).mean())
        runs.append({"seed": seed, "ndcg": ndcg, "weights": est.tuning_["params"]["weights"],
                     "popularity_exponent": est.tuning_["params"].get("popularity_exponent", 0.0),
                     "seconds": time.perf_counter() - t0})
        print(f"   {name} seed {seed}: NDCG@10 {ndcg:.4f} {runs[-1]['weights']} "
              f"exp {runs[-1]['popularity_exponent']} ({runs[-1]['seconds']:.0f} s)", flush=True)
    values = np.array([r["ndcg"] for r in runs])
    record = {"dataset": name, "test_users": int(users.size), "runs": runs, "mean": float(values.mean()),
              "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
              "min": float(values.min()), "max": float(values.max()),
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cores": os.cpu_count(),
              "load_after": list(os.getloadavg())}
    print(f"== {name}: mean {record['mean']:.4f}, sd {record['sd']:.4f}, range {record['min']:.4f}-{record['max']:.4f}",
          flush=True)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,deskdrop,ibm-articles")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for name in (d.strip() for d in args.datasets.split(",") if d.strip()):
        record = spread(name, seeds)
        if record is not None and not args.no_write:
            with open(RESULTS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
