"""Cold items: ColdStartHybrid against LightFM, Cornac's CTR and two content baselines, on four data sets.

Usage (from the repository root)::

    .venv/bin/python benchmarks/cold_start.py                          # every data set, fold 0
    .venv/bin/python benchmarks/cold_start.py --datasets ibm-articles --folds 5
    .venv/bin/python benchmarks/cold_start.py --models ours,lightfm,content_knn --no-mixed

Cold-item protocol: the items are shuffled (seed 0) and cut in 5 folds; fold f (20% of the items) is held out
with all its interactions, every model trains on the rest; each user with a held-out item and a training
history ranks only the held-out items: Recall@20, Recall@50 (hits / the user's held-out items, as in Wang &
Blei 2011) and NDCG@20, averaged over users. Mixed protocol: the same cold items plus a random 20% of the
remaining interactions are held out, and each user ranks every item not in their training data, warm and cold
together. Ties are broken at random (seed 0).

Tuning: each tunable model picks its parameters from a small grid by Recall@50 of the same cold-item protocol
on a validation fold carved from the TRAINING items (20% of them, seed 1); the held-out fold is never read
while tuning. Results: benchmarks/results/cold_start.md and benchmarks/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cold_data import LOADERS  # noqa: E402
from cold_models import MODELS  # noqa: E402

from recommendations.algorithms.encoders import make_encoder  # noqa: E402

#: What each data set's items carry (for tables rebuilt from logs).
LOADER_FEATURES = {
    "citeulike-a": "tags + citation graph",
    "citeulike-t": "words (bag of words) + tags",
    "goodbooks-10k": "tags (top 30 per book), authors, title + Open Library description (1,830 books)",
    "ibm-articles": "full text (title, description, body) for 437 of 714 articles, else the title",
}
RESULTS = Path(__file__).resolve().parent / "results"
KS = (20, 50)
BLOCK = 512

#: Candidates per tunable model (the first is the default); untuned models use their one entry.
GRIDS = {
    "ours": [{"target": "interactions", "l2": l2, "factors": 128} for l2 in (1000.0, 10_000.0)]
    + [{"target": "factors", "l2": 1.0, "factors": 128}],
    "ials": [{"factors": 128}],
    "lightfm": [{"no_components": 64, "epochs": 20, "learning_rate": 0.05}],
    "lightfm_id": [{"no_components": 64, "epochs": 20, "learning_rate": 0.05}],
    "ctr": [{"k": 50, "lambda_u": 0.01, "lambda_v": 100.0, "a": 1.0, "b": 0.01, "max_iter": 10}],
    "content_knn": [{"k": k} for k in (100, 20, 500)],
    "content_pop": [{"k": k} for k in (50,)],
}


def item_folds(n_items: int, n_folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n_items)
    return [np.sort(order[f::n_folds]) for f in range(n_folds)]


def without_items(X: sp.csr_matrix, items: np.ndarray) -> sp.csr_matrix:
    """``X`` with the columns of ``items`` emptied (shape kept, so cold items keep their index)."""
    keep = np.ones(X.shape[1], dtype=np.float32)
    keep[items] = 0
    Y = sp.csr_matrix(X @ sp.diags(keep))
    Y.eliminate_zeros()
    return Y


def cold_task(X: sp.csr_matrix, cold: np.ndarray) -> dict:
    train = without_items(X, cold)
    test = sp.csr_matrix(X[:, cold])
    users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0))
    return {"train": train, "test": test, "users": users, "candidates": cold, "exclude_seen": False}


def mixed_task(X: sp.csr_matrix, cold: np.ndarray, seed: int = 0) -> dict:
    """Cold items held out whole, plus 20% of the other interactions; candidates are all items."""
    warm = without_items(X, cold).tocoo()
    held = np.random.default_rng(seed).random(warm.nnz) < 0.2
    train = sp.csr_matrix((warm.data[~held], (warm.row[~held], warm.col[~held])), shape=X.shape)
    test = sp.csr_matrix(X - train)
    test.eliminate_zeros()
    users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0))
    return {"train": train, "test": test, "users": users, "candidates": np.arange(X.shape[1]),
            "exclude_seen": True}


def evaluate(model, task: dict, seed: int = 0) -> dict:
    """Recall@20/50 and NDCG@20 of ``model`` (fitted on ``task["train"]``) over the task's users."""
    rng = np.random.default_rng(seed)
    train, test, users, candidates = task["train"], task["test"], task["users"], task["candidates"]
    sums = {f"Recall@{k}": 0.0 for k in KS} | {"NDCG@20": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, 22))
    for start in range(0, users.size, BLOCK):
        block = users[start:start + BLOCK]
        scores = np.asarray(model.scores(block, candidates, train), dtype=np.float64)
        scores += rng.random(scores.shape) * 1e-9 * (np.abs(scores).max() + 1e-12)
        if task["exclude_seen"]:
            seen = train[block][:, candidates].tocoo()
            scores[seen.row, seen.col] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :max(KS)]
        positives = test[block]
        for row, user_top in enumerate(top):
            pos = positives.indices[positives.indptr[row]:positives.indptr[row + 1]]
            hits = np.isin(user_top, pos)
            for k in KS:
                sums[f"Recall@{k}"] += hits[:k].sum() / pos.size
            ideal = discounts[:min(pos.size, 20)].sum()
            sums["NDCG@20"] += float((hits[:20] * discounts).sum() / ideal)
    return {name: value / max(users.size, 1) for name, value in sums.items()}


def fit_timed(name: str, params: dict, task: dict, F, records):
    model = MODELS[name](**params)
    t0 = time.perf_counter()
    model.fit(task["train"], None if name == "ials" else F, records)
    return model, time.perf_counter() - t0


def tune(name: str, X: sp.csr_matrix, train_items: np.ndarray, F, records, log) -> dict:
    """The grid point with the best validation Recall@50 (validation cold items carved from ``train_items``)."""
    grid = GRIDS[name]
    if len(grid) == 1:
        return grid[0]
    rng = np.random.default_rng(1)
    validation = np.sort(rng.choice(train_items, size=len(train_items) // 5, replace=False))
    others = np.setdiff1d(np.arange(X.shape[1]), train_items)
    task = cold_task(without_items(X, others), validation)
    best, best_value = grid[0], -1.0
    for params in grid:
        model, seconds = fit_timed(name, params, task, F, records)
        value = evaluate(model, task)["Recall@50"]
        log(f"    tune {name} {params}: validation Recall@50 {value:.4f} ({seconds:.1f}s)")
        if value > best_value:
            best, best_value = params, value
    return best


def run_dataset(data: dict, models: list[str], folds: list[int], mixed: bool, log) -> dict:
    X, records = data["X"], data["records"]
    t0 = time.perf_counter()
    F = make_encoder(data["encoder"]).fit_transform(records)
    log(f"{data['name']}: {X.shape[0]} users, {X.shape[1]} items, {X.nnz} interactions; "
        f"features {F.shape[1]} ({time.perf_counter() - t0:.1f}s)")
    out = {"name": data["name"], "shape": list(X.shape), "nnz": int(X.nnz), "features": data["features"],
           "encoder": data["encoder"], "n_features": int(F.shape[1]), "cold": {}, "mixed": {}, "params": {}}
    all_folds = item_folds(X.shape[1])
    for fold in folds:
        cold = all_folds[fold]
        train_items = np.setdiff1d(np.arange(X.shape[1]), cold)
        tasks = {"cold": cold_task(X, cold)} | ({"mixed": mixed_task(X, cold)} if mixed else {})
        for name in models:
            try:
                params = out["params"].get(name) or tune(name, X, train_items, F, records, log)
                out["params"][name] = params
                for protocol, task in tasks.items():
                    if protocol == "mixed" and name == "ctr":
                        continue  # CTR's pure-Python fit is the slowest by far: cold protocol only
                    model, seconds = fit_timed(name, params, task, F, records)
                    result = evaluate(model, task) | {"fit_s": seconds, "users": int(task["users"].size)}
                    out[protocol].setdefault(name, []).append(result)
                    log(f"  fold {fold} {protocol} {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()))
            except (RuntimeError, MemoryError) as exc:
                log(f"  {name}: skipped ({exc})")
                out["params"][name] = {"skipped": str(exc)}
    return out


def mean(results: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in results]))


def cell(results: list[dict], key: str) -> str:
    """The mean over folds, with the standard deviation when there is more than one fold."""
    values = [r[key] for r in results]
    return f"{np.mean(values):.4f}" + (f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else "")


def markdown(runs: list[dict], command: str, folds: list[int]) -> str:
    labels = {name: getattr(MODELS[name](**GRIDS[name][0]), "label", name) for name in MODELS}
    lines = [
        "# Cold items: the content-aware hybrid against LightFM and CTR",
        "",
        f"Command: `{command}`. Machine: 2 cores shared with other jobs (times are provisional, compare "
        f"within a run). Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Python {platform.python_version()}. "
        f"Folds: {', '.join(map(str, folds))} of 5 (items shuffled with seed 0).",
        "",
        "Cold protocol: 20% of the items held out with all their interactions; each user with a held-out item "
        "ranks only the held-out items. Mixed protocol: the same items plus 20% of the other interactions held "
        "out; every unseen item (warm and cold) is a candidate. Recall = hits / the user's held-out items. "
        "Parameters were chosen on a validation fold carved from the training items.",
    ]
    for run in runs:
        lines += ["", f"## {run['name']}", "",
                  f"{run['shape'][0]:,} users, {run['shape'][1]:,} items, {run['nnz']:,} interactions. "
                  f"Features: {run['features']} ({run['n_features']:,} columns"
                  + (f", encoder `{json.dumps(run['encoder'])}`)." if run["encoder"] else ")."),
                  ""]
        for protocol in ("cold", "mixed"):
            if not run[protocol]:
                continue
            lines += [f"**{protocol}**", "", "| model | Recall@20 | Recall@50 | NDCG@20 | fit s | parameters |",
                      "|---|---|---|---|---|---|"]
            order = sorted(run[protocol], key=lambda n: -mean(run[protocol][n], "Recall@50"))
            for name in order:
                rs = run[protocol][name]
                lines.append(f"| {labels[name]} | {cell(rs, 'Recall@20')} | {cell(rs, 'Recall@50')} | "
                             f"{cell(rs, 'NDCG@20')} | {mean(rs, 'fit_s'):.1f} | `{json.dumps(run['params'].get(name, 'see the notes'))}` |")
            lines.append("")
        skipped = {n: p["skipped"] for n, p in run["params"].items() if isinstance(p, dict) and "skipped" in p}
        for name, reason in skipped.items():
            lines.append(f"- {name} skipped: {reason}")
    return "\n".join(lines) + "\n"


def runs_from_log(path: Path) -> list[dict]:
    """The results a run printed to its log (for a run stopped before it wrote its JSON)."""
    runs: list[dict] = []
    for line in path.read_text().splitlines():
        head = re.match(r"^(\S+): (\d+) users, (\d+) items, (\d+) interactions; features (\d+)", line)
        if head:
            name = head.group(1)
            runs.append({"name": name, "shape": [int(head.group(2)), int(head.group(3))], "nnz": int(head.group(4)),
                         "n_features": int(head.group(5)), "features": LOADER_FEATURES.get(name, ""),
                         "encoder": None, "cold": {}, "mixed": {}, "params": {}})
            continue
        tuned = re.match(r"^\s+tune (\S+) (\{.*\}): validation", line)
        if tuned and runs:
            runs[-1]["params"].setdefault(tuned.group(1) + "_grid", []).append(line.strip())
        result = re.match(r"^\s+fold \d+ (cold|mixed) (\S+): (.*)$", line)
        if result and runs:
            values = dict(item.rsplit(" ", 1) for item in result.group(3).split(", "))
            runs[-1][result.group(1)].setdefault(result.group(2), []).append({k: float(v) for k, v in values.items()})
    return runs


def merge_runs(run_lists: list[list[dict]]) -> list[dict]:
    """One entry per data set (first-seen order), with the models of every run side by side."""
    merged: dict[str, dict] = {}
    for runs in run_lists:
        for run in runs:
            into = merged.setdefault(run["name"], {**run, "cold": {}, "mixed": {}, "params": {}})
            for key in ("cold", "mixed", "params"):
                into[key].update(run[key])
    return list(merged.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--models", default="ours,ials,lightfm,lightfm_id,ctr,content_knn,content_pop")
    parser.add_argument("--folds", type=int, default=1, help="how many of the 5 folds to run (from fold 0)")
    parser.add_argument("--no-mixed", action="store_true")
    parser.add_argument("--grid", action="append", default=[], metavar="MODEL=JSON",
                        help='replace a model\'s grid, e.g. ours=[{"target": "interactions", "l2": 1000}]')
    parser.add_argument("--output", default=str(RESULTS / "cold_start"), help="path prefix of the .md and .json")
    parser.add_argument("--merge", nargs="+", default=None, metavar="RUN.json",
                        help="no computation: merge the JSON of runs made side by side (e.g. one process per "
                             "model group) into one table per data set")
    parser.add_argument("--command", default=None, help="with --merge: the command line to print")
    args = parser.parse_args(argv)
    if args.merge:
        runs = merge_runs([json.loads(Path(p).read_text()) if p.endswith(".json") else runs_from_log(Path(p))
                           for p in args.merge])
        Path(args.output + ".json").write_text(json.dumps(runs, indent=1))
        Path(args.output + ".md").write_text(markdown(runs, args.command or "see the JSON", [0]))
        return 0
    for entry in args.grid:
        name, _, grid = entry.partition("=")
        GRIDS[name] = json.loads(grid)
    folds = list(range(args.folds))
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    def log(message: str) -> None:
        print(message, flush=True)

    runs = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        data = LOADERS[name]()
        if data is None:
            continue
        runs.append(run_dataset(data, models, folds, not args.no_mixed, log))
        command = "python benchmarks/cold_start.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.output + ".json").write_text(json.dumps(runs, indent=1))
        Path(args.output + ".md").write_text(markdown(runs, command.strip(), folds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
