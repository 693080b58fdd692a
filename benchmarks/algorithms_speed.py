"""Speed and memory benchmark: our ItemKNN and iALS against implicit's CosineRecommender and ALS.

Usage::

    python benchmarks/algorithms_speed.py                 # CiteULike-a + 138,000 x 20,000 (7.5M)
    python benchmarks/algorithms_speed.py --scale small   # quick check on a smaller synthetic matrix
    python benchmarks/algorithms_speed.py --skip-synthetic --methods ours_itemknn_history implicit_cosine \
        --repeat 3 --output /tmp/speed.md                 # iterate on CiteULike-a's item-kNN rows only

Each measurement (fit + top-10 for every user) runs in a fresh subprocess, so its peak memory
(``VmHWM``) is its own. Results are printed as a markdown table and written to
``benchmarks/results/algorithms_speed.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("BRE_DATA_DIR", REPO.parent / "shared" / "data"))
CITEULIKE = DATA_DIR / "citeulike-a-cmn" / "citeulike-a.npz"
RESULTS = REPO / "benchmarks" / "results" / "algorithms_speed.md"
SCALES = {"full": (138_000, 20_000, 7_500_000), "small": (20_000, 5_000, 500_000)}
METHODS = ("ours_itemknn_history", "ours_itemknn", "implicit_cosine", "ours_ials", "implicit_als")


def synthetic_user_items(n_users: int, n_items: int, n_interactions: int, seed: int = 0) -> sp.csr_matrix:
    """Binary matrix with power-law item popularity and user activity, exactly ``n_interactions`` cells."""
    rng = np.random.default_rng(seed)
    item_p = 1.0 / np.arange(1, n_items + 1) ** 0.6  # Zipf-like; top item ~ 40% of users
    item_p = rng.permutation(item_p / item_p.sum())
    user_p = rng.pareto(1.5, n_users) + 1.0
    # Cap the heaviest users (at most ~10% of the catalogue each) so sampling converges fast.
    user_p = np.minimum(user_p, 0.1 * n_items * user_p.sum() / n_interactions)
    user_p /= user_p.sum()
    keys = np.zeros(0, dtype=np.int64)
    while keys.size < n_interactions:
        need = int((n_interactions - keys.size) * 1.3) + 1000
        users = rng.choice(n_users, size=need, p=user_p)
        items = rng.choice(n_items, size=need, p=item_p)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
    keys = rng.choice(keys, size=n_interactions, replace=False)
    rows, cols = np.divmod(keys, n_items)
    X = sp.csr_matrix((np.ones(n_interactions, dtype=np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sort_indices()
    return X


def load_citeulike() -> sp.csr_matrix:
    data = np.load(CITEULIKE, allow_pickle=True)
    pairs = data["train_data"].astype(np.int64)
    shape = (int(pairs[:, 0].max()) + 1, int(pairs[:, 1].max()) + 1)
    X = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (pairs[:, 0], pairs[:, 1])), shape=shape)
    X.data[:] = 1.0
    return X


def _peak_rss_kib() -> float:
    """Peak resident memory of this process in KiB.

    ``VmHWM`` from /proc is used when available: ``ru_maxrss`` survives ``exec`` on Linux, so
    a worker started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _scoring_multiply_adds(X: sp.csr_matrix, similarity: sp.spmatrix) -> int:
    """Multiply-adds of ``X @ similarity`` done sparsely: sum over stored (user, item j) of the
    stored entries in row ``j`` of the item-item matrix (both libraries score this way)."""
    row_nnz = np.diff(sp.csr_matrix(similarity).indptr).astype(np.int64)
    return int(row_nnz[X.indices].sum())


def run_worker(method: str, matrix_path: str, k: int, factors: int, iterations: int) -> dict:
    """Fit one method and compute the top-10 of every user; return timings and peak memory."""
    from threadpoolctl import threadpool_limits

    X = sp.load_npz(matrix_path).tocsr().astype(np.float32)
    users = np.arange(X.shape[0])
    base_rss = _peak_rss_kib()
    similarity = None
    # Every cell imports both libraries before its clocks start, so CPU time and peak memory
    # count the same libraries in each row.
    import implicit.cpu.als  # noqa: F401
    import implicit.nearest_neighbours  # noqa: F401

    import recommendations.algorithms  # noqa: F401

    cpu_start = time.process_time()
    if method in ("ours_itemknn", "ours_itemknn_history"):
        from recommendations.algorithms.knn import ItemKNN

        neighbourhood = "history" if method == "ours_itemknn_history" else "candidate"
        start = time.perf_counter()
        model = ItemKNN(top_k=k, neighbourhood=neighbourhood).fit(X)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        indices, _ = model.recommend_all(X, n=10)
        rec = time.perf_counter() - start
        similarity = model.similarity_
    elif method == "ours_ials":
        from recommendations.algorithms.factorization import IALS

        start = time.perf_counter()
        model = IALS(factors=factors, iterations=iterations, regularization=0.01, random_state=0).fit(X)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        indices, _ = model.recommend_all(X, n=10)
        rec = time.perf_counter() - start
    elif method == "implicit_cosine":
        from implicit.nearest_neighbours import CosineRecommender

        start = time.perf_counter()
        model = CosineRecommender(K=k)
        model.fit(X, show_progress=False)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        indices, _ = model.recommend(users, X, N=10, filter_already_liked_items=True)
        rec = time.perf_counter() - start
        similarity = model.similarity
    elif method == "implicit_als":
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            start = time.perf_counter()
            model = AlternatingLeastSquares(
                factors=factors, iterations=iterations, regularization=0.01, random_state=0,
                calculate_training_loss=False,
            )
            model.fit(X, show_progress=False)
            fit = time.perf_counter() - start
        start = time.perf_counter()
        indices, _ = model.recommend(users, X, N=10, filter_already_liked_items=True)
        rec = time.perf_counter() - start
    else:
        raise ValueError(method)
    cpu_s = time.process_time() - cpu_start
    peak_mb = _peak_rss_kib() / 1024
    multiply_adds = None if similarity is None else _scoring_multiply_adds(X, similarity)
    return {
        "method": method,
        "fit_s": fit,
        "top10_s": rec,
        "cpu_s": cpu_s,
        "multiply_adds": multiply_adds,
        "peak_mb": peak_mb,
        "data_mb": base_rss / 1024,
        "rows": int(np.asarray(indices).shape[0]),
    }


def measure(method: str, matrix_path: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--worker", method, "--matrix", matrix_path,
        "--k", str(args.k), "--factors", str(args.factors), "--iterations", str(args.iterations),
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--k", type=int, default=100, help="neighbours for both item-kNNs")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--skip-citeulike", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="rows to measure (default: all; a ratio needs both rows of its pair)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each row this many times, interleaved, and report each row's "
                             "median run by total time")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--matrix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args.worker, args.matrix, args.k, args.factors, args.iterations)))
        return 0

    datasets: list[tuple[str, sp.csr_matrix]] = []
    if not args.skip_citeulike:
        if CITEULIKE.exists():
            datasets.append(("CiteULike-a (CMN train)", load_citeulike()))
        else:
            print(f"skipping CiteULike-a: {CITEULIKE} not found")
    if not args.skip_synthetic:
        n_users, n_items, n_interactions = SCALES[args.scale]
        start = time.perf_counter()
        datasets.append(
            (f"synthetic {n_users:,} x {n_items:,} power-law", synthetic_user_items(n_users, n_items, n_interactions))
        )
        print(f"synthetic matrix built in {time.perf_counter() - start:.1f}s")
    methods = [method for method in METHODS if method in args.methods]
    repeat = max(1, args.repeat)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, X in datasets:
            path = os.path.join(tmp, "matrix.npz")
            sp.save_npz(path, X, compressed=False)
            runs: dict[str, list[dict]] = {method: [] for method in methods}
            for _ in range(repeat):  # interleaved, so a busy spell hits every row alike
                for method in methods:
                    r = measure(method, path, args)
                    runs[method].append(r)
                    print(f"{name}: {method}: fit {r['fit_s']:.2f}s, top-10 {r['top10_s']:.2f}s, "
                          f"peak {r['peak_mb']:.0f} MB, load {r['load']}", flush=True)
            results = {}
            for method, measured in runs.items():
                ordered = sorted(measured, key=lambda r: r["fit_s"] + r["top10_s"])
                results[method] = dict(ordered[(len(ordered) - 1) // 2])  # the median run (lower middle)
                results[method]["peak_mb"] = max(r["peak_mb"] for r in measured)
                results[method]["totals"] = [r["fit_s"] + r["top10_s"] for r in measured]
            rows.append((name, X, results))

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    command = "python benchmarks/algorithms_speed.py" + (f" --scale {args.scale}" if args.scale != "full" else "")
    command += " --skip-citeulike" * args.skip_citeulike + " --skip-synthetic" * args.skip_synthetic
    if methods != list(METHODS):
        command += " --methods " + " ".join(methods)
    if repeat > 1:
        command += f" --repeat {repeat}"
    lines = [
        "# Algorithm speed and memory: ours vs implicit",
        "",
        f"Command: `{command}` (k={args.k}, factors={args.factors}, iterations={args.iterations})  ",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; date {now}; commit {commit or 'unknown'}.  ",
        "Each cell is one fresh subprocess: fit, then the top-10 (seen items excluded) for every user. "
        "Peak memory is that subprocess's peak RSS (`VmHWM`, data included). Other jobs may have shared the "
        "2 cores (the 1-minute load average before/after each cell is shown), so compare the ratios "
        "within one run."
        + (f" Each row is the median of {repeat} interleaved runs by total time (the other columns are that "
           f"run's; peak MB is the highest of the {repeat}); every run's total is listed after the table."
           if repeat > 1 else ""),
        "",
        "| data | users x items | interactions | model | fit s | top-10 all users s | total s | ours / implicit (total) | CPU s | ours / implicit (CPU) | scoring multiply-adds (M) | peak MB | load before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    pairs = {"ours_itemknn_history": "implicit_cosine", "ours_itemknn": "implicit_cosine", "ours_ials": "implicit_als"}
    labels = {
        "ours_itemknn_history": f"ours ItemKNN (K={args.k}, neighbourhood=history: implicit's model)",
        "ours_itemknn": f"ours ItemKNN (K={args.k}, default neighbourhood=candidate)",
        "implicit_cosine": f"implicit CosineRecommender (K={args.k})",
        "ours_ials": f"ours IALS ({args.factors} f, {args.iterations} it)",
        "implicit_als": f"implicit ALS ({args.factors} f, {args.iterations} it)",
    }
    for name, X, results in rows:
        for method in methods:
            r = results[method]
            total = r["fit_s"] + r["top10_s"]
            ratio = cpu_ratio = ""
            if method in pairs and pairs[method] in results:
                other = results[pairs[method]]
                ratio = f"{total / (other['fit_s'] + other['top10_s']):.2f}x"
                cpu_ratio = f"{r['cpu_s'] / other['cpu_s']:.2f}x"
            madds = "" if r.get("multiply_adds") is None else f"{r['multiply_adds'] / 1e6:,.0f}"
            lines.append(
                f"| {name} | {X.shape[0]:,} x {X.shape[1]:,} | {X.nnz:,} | {labels[method]} | {r['fit_s']:.2f} | "
                f"{r['top10_s']:.2f} | {total:.2f} | {ratio} | {r['cpu_s']:.1f} | {cpu_ratio} | {madds} | "
                f"{r['peak_mb']:.0f} | {r.get('load', '')} |"
            )
    if repeat > 1:
        lines += ["", "Total seconds of every run, in the order run:", ""]
        for name, X, results in rows:
            for method in methods:
                totals = ", ".join(f"{total:.2f}" for total in results[method]["totals"])
                lines.append(f"- {name}, {method}: {totals}")
    lines += ["", "Goals (checked by the script on this run's figures):", ""]
    for name, X, results in rows:
        if "implicit_cosine" not in results:
            continue
        theirs = results["implicit_cosine"]
        for method, what in (("ours_itemknn_history", "same model (neighbourhood=history), judged"),
                             ("ours_itemknn", "default model (neighbourhood=candidate), for information")):
            if method not in results:
                continue
            ours = results[method]
            ratio = (ours["fit_s"] + ours["top10_s"]) / (theirs["fit_s"] + theirs["top10_s"])
            verdict = ("met" if ratio <= 1.0 else "**not met**") if method == "ours_itemknn_history" else (
                "under 1.0x" if ratio <= 1.0 else "over 1.0x")
            lines.append(f"- {name}: our ItemKNN, {what} / implicit CosineRecommender, fit + top-10, wall "
                         f"time: {ratio:.2f}x (goal <= 1.0x): {verdict}.")
    big = [(name, X, results) for name, X, results in rows if X.nnz >= 5_000_000]
    for name, X, results in big:
        worst = max(results.values(), key=lambda r: r["peak_mb"])
        verdict = "met" if worst["peak_mb"] <= 3 * 1024 else "**not met**"
        lines.append(f"- {name}: highest peak memory {worst['peak_mb']:.0f} MB ({worst['method']}) "
                     f"(goal <= 3 GB at the 7.5M scale): {verdict}.")
    lines += [
        "",
        "How the comparison is made (written by the script):",
        "",
        "- The item-kNN goal is judged on the like-for-like row: `ItemKNN(neighbourhood=\"history\")` "
        "is implicit's model (the K best neighbours of every history item, row-wise) with the same K, "
        "so both compute the same similarity matrix and the same top-10 (a unit test checks this "
        "against implicit). implicit counts the item itself among its K (its diagonal is 1), so at "
        f"K={args.k} it keeps {args.k - 1} real neighbours and ours {args.k}: ours does slightly more work. "
        "The default model (`neighbourhood=\"candidate\"`, column-wise top-K, the model of the "
        "CiteULike-a reproduction) is a different, costlier model and is shown for information.",
        f"- Same model size: both item-kNNs keep K={args.k} neighbours per item, plain cosine, no "
        "shrink, no weighting; both ALS runs use the same factors, iterations and regularisation 0.01.",
        "- Same output: the top-10 unseen items of every user (seen items excluded), as an array "
        "of (users, 10).",
        f"- Threads: all {os.cpu_count()} cores where each library uses them. Ours: `ItemKNN` fit and "
        "`recommend_all` run blocks in a thread pool (scipy and numpy release the GIL). implicit: "
        "`CosineRecommender.fit` runs its C++ all-pairs k-NN on all cores; its `recommend` for many "
        "users loops over users in Python and C++, one core. ALS: implicit's fit, with BLAS "
        "limited to one thread as implicit asks, in both rows (ours wraps it).",
        "- CPU s is the process's user+system CPU time (all threads), less sensitive than wall "
        "time to other jobs on the machine; the goal is stated on wall time.",
        "- Scoring multiply-adds: the two item-kNNs differ in how neighbours are kept. Ours keeps "
        "the K best neighbours of every candidate item (column-wise, as in Ferrari Dacrema et al.'s "
        "reference code), implicit keeps the K best of every history item (row-wise). Scoring sums "
        "one similarity row per history item; with column-wise top-K the rows of popular items "
        "hold entries for most of the catalogue, so on power-law data ours has many more "
        "multiply-adds to do for the same K. The default keeps that model (its results are "
        "unchanged); the history row has implicit's multiply-adds.",
    ]
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".tmp")
    partial.write_text(table, encoding="utf-8")
    os.replace(partial, args.output)  # never a half-written results file
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
