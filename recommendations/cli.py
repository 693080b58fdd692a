"""Provides the database-free command line: ``python -m recommendations recommend|evaluate`` on CSV files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

# Deliberately NO Django import here (nor in recommendations/__init__.py): the CLI runs without settings.

__all__ = ["CSVError", "Interactions", "read_interactions", "main"]

WEIGHTINGS = ("binary", "count", "rating")


class CSVError(ValueError):
    """An input file is unusable; the message names the file (and the line when there is one)."""


@dataclass
class Interactions:
    """Rows of a user/item CSV file, ids kept as strings."""

    path: str
    users: list[str]
    items: list[str]
    ratings: np.ndarray | None
    timestamps: np.ndarray | None
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


def _parse_timestamp(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text).timestamp()


def read_interactions(
    path: str,
    required: Sequence[str] = ("user", "item"),
    optional: Sequence[str] = ("rating", "timestamp"),
) -> Interactions:
    """Read a CSV with a header row; ``required`` columns must exist, ``optional`` ones are parsed if present.

    Column names are matched case-insensitively after stripping spaces. Ids are strings.
    ``rating`` must be a finite number; ``timestamp`` a number (e.g. unix seconds) or an ISO 8601 date.

    Raises
    ------
    CSVError
        ``"<path>:<line>: <problem>"`` for a missing file, an empty file, a missing column, a
        row with the wrong number of fields, an empty id, a bad number or a non-UTF-8 byte.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise CSVError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CSVError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CSVError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise CSVError(f"{path}:1: file is empty (expected a header row with columns {','.join(required)})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise CSVError(f"{path}:{line}: not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise CSVError(f"{path}:1: {exc}") from None
    names = [h.strip().lower() for h in header]
    for col in required:
        if col not in names:
            raise CSVError(f"{path}:1: missing column '{col}' (header has: {', '.join(h.strip() for h in header)})")
    col_idx = {c: names.index(c) for c in list(required) + [o for o in optional if o in names]}
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    stamps: list[float] = []
    lines: list[int] = []
    has_rating = "rating" in col_idx
    has_ts = "timestamp" in col_idx
    n_fields = len(header)
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != n_fields:
                raise CSVError(f"{path}:{line}: expected {n_fields} fields, found {len(row)}")
            for col in ("user", "item"):
                if col in col_idx and not row[col_idx[col]].strip():
                    raise CSVError(f"{path}:{line}: empty {col}")
            users.append(row[col_idx["user"]].strip() if "user" in col_idx else "")
            items.append(row[col_idx["item"]].strip() if "item" in col_idx else "")
            if has_rating:
                value = row[col_idx["rating"]].strip()
                try:
                    number = float(value)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise CSVError(f"{path}:{line}: rating '{value}' is not a number")
                ratings.append(number)
            if has_ts:
                value = row[col_idx["timestamp"]].strip()
                try:
                    stamp = _parse_timestamp(value)
                except (ValueError, OverflowError):
                    stamp = math.nan
                if not math.isfinite(stamp):
                    raise CSVError(f"{path}:{line}: timestamp '{value}' is neither a number nor an ISO 8601 date")
                stamps.append(stamp)
            lines.append(line)
    except csv.Error as exc:
        raise CSVError(f"{path}:{reader.line_num}: {exc}") from None
    if not users:
        raise CSVError(f"{path}:2: no data rows after the header")
    return Interactions(
        path=path,
        users=users,
        items=items,
        ratings=np.asarray(ratings, dtype=np.float64) if has_rating else None,
        timestamps=np.asarray(stamps, dtype=np.float64) if has_ts else None,
        lines=np.asarray(lines, dtype=np.int64),
    )


class _Index:
    """String id <-> position, in order of first appearance."""

    def __init__(self) -> None:
        self.pos: dict[str, int] = {}
        self.keys: list[str] = []

    def add_all(self, ids: Sequence[str]) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.int64)
        pos, keys = self.pos, self.keys
        for j, key in enumerate(ids):
            p = pos.get(key)
            if p is None:
                p = pos[key] = len(keys)
                keys.append(key)
            out[j] = p
        return out

    def __len__(self) -> int:
        return len(self.keys)


def _weights(data: Interactions, weighting: str) -> np.ndarray:
    if weighting == "rating":
        if data.ratings is None:
            raise CSVError(f"{data.path}:1: --weight rating needs a 'rating' column")
        return data.ratings.astype(np.float32)
    return np.ones(len(data), dtype=np.float32)


def _matrix(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], weighting: str
) -> sp.csr_matrix:
    X = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=shape, dtype=np.float32)
    X.sum_duplicates()
    if weighting == "binary":
        X.data[:] = 1.0
    elif weighting == "rating":
        # summed duplicates of a rating would inflate it: keep the mean rating of the pair instead
        counts = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)
        counts.sum_duplicates()
        X.data /= counts.data
    X.eliminate_zeros()
    return X


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise CSVError(f"--k: '{text}' is not a comma-separated list of integers") from None
    if not ks or ks[0] < 1:
        raise CSVError(f"--k: '{text}' must list positive integers")
    return ks


def _load_params_file(path: str | None, algorithm: str | None) -> tuple[str, dict[str, Any]]:
    from recommendations.algorithms.evaluation import load_params

    if path is None:
        return algorithm or "auto", {}
    if not os.path.exists(path):
        raise CSVError(f"{path}: file not found")
    try:
        name, params = load_params(path)
    except ValueError as exc:
        raise CSVError(str(exc)) from None
    if algorithm is not None and algorithm != name:
        raise CSVError(f"{path}: parameters are for algorithm '{name}', not '{algorithm}'")
    return name, params


def _estimator(name: str, params: dict[str, Any]):
    from recommendations.algorithms import get_estimator

    try:
        return get_estimator(name, **params)
    except (TypeError, ValueError) as exc:
        raise CSVError(f"algorithm '{name}': {exc}") from None


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# ---------------------------------------------------------------------------------------- recommend


def cmd_recommend(args: argparse.Namespace) -> int:
    """Fit on TRAIN and write the top-k unseen items of every TRAIN user."""
    if args.k < 1:
        raise CSVError("--k must be at least 1")
    train = read_interactions(args.train)
    name, params = _load_params_file(args.params, args.algorithm)
    users, items = _Index(), _Index()
    u = users.add_all(train.users)
    i = items.add_all(train.items)
    X = _matrix(u, i, _weights(train, args.weight), (len(users), len(items)), args.weight)
    est = _estimator(name, params)
    t0 = time.perf_counter()
    est.fit(X)
    fit_seconds = time.perf_counter() - t0
    k = args.k
    indices, scores = est.recommend_all(X, n=k, exclude_seen=True)
    popularity = np.asarray(np.diff(X.tocsc().indptr), dtype=np.float64)
    by_popularity = np.argsort(-popularity, kind="stable")
    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8", newline="")
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["user", "item", "rank", "score"])
        n_filled = 0
        for row in range(X.shape[0]):
            seen = set(X.indices[X.indptr[row] : X.indptr[row + 1]].tolist())
            idx = indices[row]
            sc = scores[row]
            keep = (idx >= 0) & np.isfinite(sc)
            chosen = [(int(a), float(b)) for a, b in zip(idx[keep], sc[keep]) if int(a) not in seen]
            want = min(k, X.shape[1] - len(seen))
            if len(chosen) < want:
                # the model ran out of scored items: fill by popularity, below its lowest score
                taken = {a for a, _ in chosen}
                floor = min((b for _, b in chosen), default=0.0)
                for j in by_popularity:
                    j = int(j)
                    if j in seen or j in taken:
                        continue
                    floor -= 1.0
                    chosen.append((j, floor))
                    n_filled += 1
                    if len(chosen) == want:
                        break
            key = users.keys[row]
            for rank, (j, s) in enumerate(chosen[:want], start=1):
                writer.writerow([key, items.keys[j], rank, _fmt(s)])
    finally:
        if out is not sys.stdout:
            out.close()
    print(
        f"recommend: {name} {params or ''} fitted on {X.nnz} interactions ({X.shape[0]} users, {X.shape[1]} items) "
        f"in {fit_seconds:.2f}s; wrote {args.output or 'stdout'}"
        + (f"; {n_filled} slots filled by popularity" if n_filled else ""),
        file=sys.stderr,
    )
    return 0


# ---------------------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Fit each algorithm on TRAIN and rank each TEST item (sampled or full ranking)."""
    from recommendations.algorithms import evaluation as ev

    ks = _parse_ks(args.k)
    train = read_interactions(args.train)
    test = read_interactions(args.test, optional=())
    negatives = read_interactions(args.negatives, optional=()) if args.negatives else None
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if not algorithms:
        raise CSVError("--algorithms: give at least one algorithm name")
    preset_name, preset_params = _load_params_file(args.params, None) if args.params else (None, {})

    users, items = _Index(), _Index()
    tu = users.add_all(train.users)
    ti = items.add_all(train.items)
    n_train_users = len(users)
    su = users.add_all(test.users)
    si = items.add_all(test.items)
    if negatives is not None:
        nu = users.add_all(negatives.users)
        ni = items.add_all(negatives.items)
    shape = (len(users), len(items))
    X = _matrix(tu, ti, _weights(train, args.weight), shape, args.weight)
    T = _matrix(su, si, np.ones(len(test), dtype=np.float32), shape, "binary")
    N = _matrix(nu, ni, np.ones(len(negatives), dtype=np.float32), shape, "binary") if negatives is not None else None
    cold_users = int((np.diff(T.indptr)[n_train_users:] > 0).sum())

    tuned: dict[str, dict[str, Any]] = {}
    tuning_log: list[dict[str, Any]] = []
    if args.tune:
        n_neg = None
        if N is not None:
            per_user = np.diff(N.indptr)
            n_neg = int(np.median(per_user[per_user > 0])) if (per_user > 0).any() else None
        stamps = None
        if args.tune_split == "time":
            if train.timestamps is None:
                raise CSVError(f"{args.train}:1: --tune-split time needs a 'timestamp' column")
            stamps = ev.last_timestamp_matrix(tu, ti, train.timestamps, shape)
        log = (lambda line: print(line, file=sys.stderr)) if not args.quiet else None
        for name in algorithms:
            if name == "auto":
                # auto is a blend: its members are tuned first, then its weights, all on the validation split
                res = ev.tune_auto(X, n_negatives=n_neg, metric=args.tune_metric, ks=ks, timestamps=stamps,
                                   n_iter=args.tune_iter, n_folds=args.tune_folds, random_state=args.seed, log=log)
            else:
                res = ev.tune(name, X, metric=args.tune_metric, ks=ks, n_negatives=n_neg, timestamps=stamps,
                              n_iter=args.tune_iter, n_folds=args.tune_folds, random_state=args.seed, log=log)
            tuned[name] = res.best_params
            tuning_log.append({"algorithm": name, "params": res.best_params, args.tune_metric: res.best_score})
        if args.params_out:
            best = max(tuning_log, key=lambda t: (t[args.tune_metric] if np.isfinite(t[args.tune_metric]) else -1))
            ev.save_params(
                args.params_out,
                best["algorithm"],
                best["params"],
                tuned_on=os.path.abspath(args.train),
                validation=f"{args.tune_split} leave-one-out carved from TRAIN"
                + (f" ({args.tune_folds} independent carvings, scores averaged)" if args.tune_folds > 1 else "")
                + (f", {n_neg} sampled negatives" if n_neg else ", full ranking"),
                metric=args.tune_metric,
                validation_score=best[args.tune_metric],
                all_algorithms={t["algorithm"]: t["params"] for t in tuning_log},
            )

    results = []
    for name in algorithms:
        params = tuned.get(name, preset_params if name == preset_name else {})
        est = _estimator(name, params)
        res = ev.evaluate(est, X, T, ks=ks, negatives=N, name=name, params=params)
        results.append(res)
        if not args.quiet and not args.json:
            print(f"evaluated {name}", file=sys.stderr)

    payload = {
        "train": args.train,
        "test": args.test,
        "negatives": args.negatives,
        "protocol": "sampled" if N is not None else "full",
        "k": ks,
        "n_test_users_without_train": cold_users,
        "results": [r.as_dict() for r in results],
    }
    if tuning_log:
        payload["tuning"] = tuning_log
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        cols = [f"{m}@{k}" for k in ks for m in ("HR", "NDCG", "Recall", "Precision", "MAP", "Coverage")]
        print(f"protocol: {payload['protocol']}; users evaluated: {results[0].n_users if results else 0}; "
              f"test users without train data (skipped): {cold_users}")
        print("| algorithm | " + " | ".join(cols) + " | fit s | score s |")
        print("|---" * (len(cols) + 3) + "|")
        for r in results:
            vals = " | ".join(f"{r.metrics[c]:.4f}" for c in cols)
            print(f"| {r.name} | {vals} | {r.fit_seconds:.2f} | {r.score_seconds:.2f} |")
    return 0


# ---------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m recommendations``."""
    parser = argparse.ArgumentParser(prog="python -m recommendations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser("recommend", help="fit on TRAIN.csv and write the top-k items per user")
    rec.add_argument("--train", required=True, help="CSV with header: user,item[,rating][,timestamp]")
    rec.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    rec.add_argument("--algorithm", default=None, help="registry name (default: auto, or the one in --params)")
    rec.add_argument(
        "--params", default=None, help='JSON {"algorithm": name, "params": {...}} (e.g. from evaluate --tune)'
    )
    rec.add_argument("--output", default=None, help="output CSV user,item,rank,score (default: stdout)")
    rec.add_argument("--weight", choices=WEIGHTINGS, default="binary",
                     help="interaction weight: binary (default), count of rows, or the rating value")
    rec.set_defaults(func=cmd_recommend)

    ev = sub.add_parser("evaluate", help="fit on TRAIN.csv and score the items of TEST.csv")
    ev.add_argument("--train", required=True)
    ev.add_argument("--test", required=True, help="CSV user,item of held-out positives")
    ev.add_argument("--negatives", default=None, help="CSV user,item of sampled negatives (sampled protocol)")
    ev.add_argument("--k", default="5,10", help="cut-offs, e.g. 5,10")
    ev.add_argument("--algorithms", default="toppop,itemknn,rp3beta,ease,ials,auto")
    ev.add_argument("--params", default=None, help="parameters file for the algorithm it names")
    ev.add_argument("--json", action="store_true", help="print the results as JSON")
    ev.add_argument("--weight", choices=WEIGHTINGS, default="binary")
    ev.add_argument("--tune", action="store_true", help="tune each algorithm on a validation split of TRAIN")
    ev.add_argument("--params-out", default=None, help="write the best tuned algorithm and parameters here")
    ev.add_argument("--tune-split", choices=("random", "time"), default="random")
    ev.add_argument("--tune-metric", default="NDCG@10",
                    help="validation objective: a metric (NDCG@10) or a sum of metrics (HR@10+NDCG@10)")
    ev.add_argument("--tune-folds", type=int, default=1,
                    help="independent random validation carvings of TRAIN averaged per candidate (each costs a fit)")
    ev.add_argument("--tune-iter", type=int, default=None, help="random-search budget per algorithm")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 bad input, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "params_out", None) and not args.tune:
        parser.error("--params-out needs --tune")
    try:
        return int(args.func(args))
    except CSVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # e.g. an estimator refusing its input (EASE^R above its catalogue limit)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory (try another algorithm or a smaller catalogue)", file=sys.stderr)
        return 1
