"""Measures the command line with its defaults on CiteULike-a (CMN split): what a new user gets.

Usage (from the repository root)::

    .venv/bin/python benchmarks/citeulike_cli.py                 # recommend (timed), evaluate full and sampled
    .venv/bin/python benchmarks/citeulike_cli.py --algorithms auto,rp3beta --skip-recommend

The CMN npz (../shared/data/citeulike-a-cmn, or $BRE_DATA_DIR) is written as TRAIN.csv, TEST.csv and
NEGATIVES.csv in a temporary folder; then, with no other flags,
``python -m recommendations recommend --train TRAIN.csv`` is timed end to end and its written lists are
scored against TEST (full ranking: HR@10, NDCG@10), and
``python -m recommendations evaluate`` scores the algorithms by full ranking and by the sampled
protocol (1 positive against its 100 negatives). ``auto`` tunes itself inside its fit on TRAIN only.
Results are printed and appended to benchmarks/results/citeulike_cli.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.citeulike_cmn import DEFAULT_DATA, load  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "citeulike_cli.jsonl"


def write_csvs(folder: Path, data: Path) -> dict[str, Path]:
    """Write the split as the CLI's CSV files (user and item ids are the npz indices)."""
    train, test, negatives = load(data)
    paths = {}
    for name, matrix in (("TRAIN", train), ("TEST", test), ("NEGATIVES", negatives)):
        rows, cols = matrix.nonzero()
        path = folder / f"{name}.csv"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("user,item\n")
            fh.writelines(f"u{r},i{c}\n" for r, c in zip(rows.tolist(), cols.tolist()))
        paths[name] = path
    return paths


def score_lists(lists_csv: Path, test_csv: Path, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k of the written top-k lists against TEST (one held-out item per user), full ranking.

    A test item whose score ties others within the first k takes the mean of their positions; the lists are
    scored as written, so a tie cut off at position k is a miss.
    """
    with open(test_csv, encoding="utf-8") as fh:
        held = dict(line.rstrip("\n").split(",") for line in list(fh)[1:])
    lists: dict[str, list[tuple[str, float]]] = {}
    with open(lists_csv, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lists.setdefault(row["user"], []).append((row["item"], float(row["score"])))
    hits, gains = [], []
    for user, item in held.items():
        ranked = lists.get(user, [])[:k]
        score = next((sc for it, sc in ranked if it == item), None)
        if score is None:
            hits.append(0.0)
            gains.append(0.0)
            continue
        tied = [pos for pos, (_, sc) in enumerate(ranked) if sc == score]
        hits.append(1.0)
        gains.append(float(np.mean([1.0 / np.log2(pos + 2) for pos in tied])))
    return {f"HR@{k}": float(np.mean(hits)), f"NDCG@{k}": float(np.mean(gains)), "users": len(held)}


def run_cli(*args: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run the command line; return its result, wall seconds and CPU seconds (user + system, all threads)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "recommendations", *args], capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res, time.perf_counter() - t0, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.path.join(os.environ.get("BRE_DATA_DIR", ""), "citeulike-a-cmn",
                                                       "citeulike-a.npz") if os.environ.get("BRE_DATA_DIR")
                        else str(DEFAULT_DATA))
    parser.add_argument("--algorithms", default="auto")
    parser.add_argument("--protocols", default="full,sampled")
    parser.add_argument("--skip-recommend", action="store_true")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        print(f"{args.data}: not found; nothing to measure")
        return 0
    record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": platform.machine(),
              "cores": len(os.sched_getaffinity(0)), "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_csvs(Path(tmp), Path(args.data))
        if not args.skip_recommend:
            res, seconds, cpu = run_cli("recommend", "--train", str(paths["TRAIN"]), "--output",
                                        str(Path(tmp) / "R.csv"))
            print(res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode, flush=True)
            record["recommend"] = {"seconds": seconds, "cpu_seconds": cpu, "returncode": res.returncode,
                                   "stderr_tail": res.stderr[-2000:], "load_after": os.getloadavg()}
            if res.returncode == 0:
                # what a user of ``recommend`` gets: its own written lists, scored against TEST
                record["recommend"]["lists"] = score_lists(Path(tmp) / "R.csv", paths["TEST"])
                print(f"recommend's lists: HR@10 {record['recommend']['lists']['HR@10']:.4f} "
                      f"NDCG@10 {record['recommend']['lists']['NDCG@10']:.4f}", flush=True)
        for protocol in [p for p in args.protocols.split(",") if p]:  # --protocols "": recommend only
            extra = ["--negatives", str(paths["NEGATIVES"])] if protocol == "sampled" else []
            res, seconds, cpu = run_cli("evaluate", "--train", str(paths["TRAIN"]), "--test", str(paths["TEST"]),
                                        *extra, "--algorithms", args.algorithms, "--k", "5,10", "--json", "--quiet")
            entry = {"seconds": seconds, "cpu_seconds": cpu, "returncode": res.returncode,
                     "load_after": os.getloadavg()}
            if res.returncode == 0:
                payload = json.loads(res.stdout)
                entry["results"] = [
                    {k: r[k] for k in ("algorithm", "HR@10", "NDCG@10", "HR@5", "NDCG@5", "fit_seconds", "params")}
                    for r in payload["results"]]
                entry["skipped"] = payload["skipped"]
                for r in entry["results"]:
                    print(f"{protocol} {r['algorithm']}: HR@10 {r['HR@10']:.4f} NDCG@10 {r['NDCG@10']:.4f} "
                          f"(fit {r['fit_seconds']:.0f}s; command {seconds:.0f}s wall, {cpu:.0f}s CPU)", flush=True)
            else:
                entry["stderr_tail"] = res.stderr[-2000:]
                print(f"{protocol}: exit {res.returncode}: {res.stderr[-500:]}")
            record[protocol] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
