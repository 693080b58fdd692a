"""Provides the two commands of the command line: ``recommend`` and ``evaluate``."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .items import ItemsFile, fit_with_items, item_features, item_texts, read_items
from .inputs import (
    CSVError,
    IdIndex,
    Interactions,
    interaction_matrix,
    interaction_weights,
    parse_columns,
    parse_event_weights,
    read_interactions,
    timestamp_matrix,
)

__all__ = ["cmd_recommend", "cmd_evaluate", "parse_ks"]


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise CSVError(f"--k: '{text}' is not a comma-separated list of integers") from None
    if not ks or ks[0] < 1:
        raise CSVError(f"--k: '{text}' must list positive integers")
    return ks


def load_params_file(path: str | None, algorithm: str | None) -> tuple[str, dict[str, Any]]:
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


def make_estimator(name: str, params: dict[str, Any]) -> Any:
    """``get_estimator(name, **params)``; a bad name or parameter is a CSVError naming the algorithm."""
    from recommendations.algorithms import get_estimator

    try:
        return get_estimator(name, **params)
    except (TypeError, ValueError) as exc:
        raise CSVError(f"algorithm '{name}': {exc}") from None


def format_score(x: float) -> str:
    return f"{x:.6g}"


# ---------------------------------------------------------------------------------------- recommend


def _fit(est: Any, name: str, X: sp.csr_matrix, stamps: sp.csr_matrix | None, items: Any = None) -> float:
    """Fit ``est`` on ``X`` (``auto`` also gets the timestamps for its validation split); return seconds.

    ``items`` is ``(ItemsFile, IdIndex, args)`` with ``--items``: cold_hybrid then gets the item
    features and hybrid the texts (see ``fit_with_items``).
    """
    t0 = time.perf_counter()
    if items is not None and name in ("cold_hybrid", "hybrid"):
        items_file, index, args = items
        features = item_features(items_file, index, args.encoder, args.sentence_model) if name == "cold_hybrid" else None
        fit_with_items(est, name, X, features, item_texts(items_file, index))
    elif name == "auto":
        est.fit(X, timestamps=stamps)
    else:
        est.fit(X)
    return time.perf_counter() - t0


def _train_matrix(
    args: argparse.Namespace, train: Interactions, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """TRAIN as a matrix weighted by ``--weight`` (default: ``event`` with ``--event-weights``, else binary)."""
    event_weights = parse_event_weights(args.event_weights) if args.event_weights else None
    weighting = args.weight or ("event" if event_weights is not None else "binary")
    if event_weights is not None and weighting != "event":
        raise CSVError(f"--event-weights needs --weight event, not --weight {weighting}")
    return interaction_matrix(rows, cols, interaction_weights(train, weighting, event_weights), shape, weighting)


def cmd_recommend(args: argparse.Namespace) -> int:
    """Fit on TRAIN and write the top-k unseen items of every TRAIN user."""
    if args.k < 1:
        raise CSVError("--k must be at least 1")
    train = read_interactions(args.train, columns=parse_columns(args.columns))
    items_file = read_items(args.items) if args.items else None
    name, params = load_params_file(args.params, args.algorithm)
    if name == "auto" and items_file is not None:
        # auto learns from interactions only; with item features the cold-item hybrid can place new items
        name = "cold_hybrid"
    if name == "auto" and args.no_tune:
        params = {**params, "tune": False}
    users, items = IdIndex(), IdIndex()
    u = users.add_all(train.users)
    i = items.add_all(train.items)
    if items_file is not None:
        items.add_all(items_file.keys)  # items never in TRAIN get empty columns: the cold candidates
    X = _train_matrix(args, train, u, i, (len(users), len(items)))
    est = make_estimator(name, params)
    context = (items_file, items, args) if items_file is not None else None
    fit_seconds = _fit(est, name, X, timestamp_matrix(train, u, i, X.shape), context)
    indices, scores = est.recommend_all(X, n=args.k, exclude_seen=True)
    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8", newline="")
    try:
        n_filled = _write_recommendations(out, X, indices, scores, args.k, users.keys, items.keys)
    finally:
        if out is not sys.stdout:
            out.close()
    tuning = getattr(est, "tuning_", None) or {}
    print(
        f"recommend: {name} {params or ''} fitted on {X.nnz} interactions ({X.shape[0]} users, {X.shape[1]} items) "
        f"in {fit_seconds:.2f}s"
        + (f" (tuning {tuning['seconds']:.1f}s, chose {json.dumps(tuning['params'])})" if tuning.get("tuned") else "")
        + f"; wrote {args.output or 'stdout'}"
        + (f"; {n_filled} slots filled by popularity" if n_filled else ""),
        file=sys.stderr,
    )
    return 0


def _write_recommendations(
    out: Any, X: sp.csr_matrix, indices: np.ndarray, scores: np.ndarray, k: int,
    user_keys: list[str], item_keys: list[str],
) -> int:
    """Write ``user,item,rank,score`` rows; fill lists the model left short by popularity. Return the fills."""
    popularity = np.asarray(np.diff(X.tocsc().indptr), dtype=np.float64)
    by_popularity = np.argsort(-popularity, kind="stable")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", "item", "rank", "score"])
    n_filled = 0
    for row in range(X.shape[0]):
        seen = set(X.indices[X.indptr[row] : X.indptr[row + 1]].tolist())
        idx, sc = indices[row], scores[row]
        keep = (idx >= 0) & np.isfinite(sc)
        chosen = [(int(a), float(b)) for a, b in zip(idx[keep], sc[keep]) if int(a) not in seen]
        want = min(k, X.shape[1] - len(seen))
        if len(chosen) < want:
            # the model ran out of scored items: fill by popularity, below its lowest score
            taken = {a for a, _ in chosen}
            floor = min((b for _, b in chosen), default=0.0)
            for j in by_popularity.tolist():
                if j in seen or j in taken:
                    continue
                floor -= 1.0
                chosen.append((j, floor))
                n_filled += 1
                if len(chosen) == want:
                    break
        key = user_keys[row]
        for rank, (j, s) in enumerate(chosen[:want], start=1):
            writer.writerow([key, item_keys[j], rank, format_score(s)])
    return n_filled


# ---------------------------------------------------------------------------------------- evaluate


@dataclass
class _EvaluationData:
    """TRAIN, TEST and NEGATIVES of ``evaluate`` on one index of users and items."""

    X: sp.csr_matrix
    T: sp.csr_matrix
    N: sp.csr_matrix | None
    stamps: sp.csr_matrix | None
    cold_users: int
    items: tuple[ItemsFile, IdIndex, argparse.Namespace] | None = None


def _evaluation_data(args: argparse.Namespace) -> _EvaluationData:
    columns = parse_columns(args.columns)
    train = read_interactions(args.train, columns=columns)
    test = read_interactions(args.test, optional=(), columns=columns)
    negatives = read_interactions(args.negatives, optional=(), columns=columns) if args.negatives else None
    users, items = IdIndex(), IdIndex()
    tu = users.add_all(train.users)
    ti = items.add_all(train.items)
    n_train_users = len(users)
    su = users.add_all(test.users)
    si = items.add_all(test.items)
    if negatives is not None:
        nu = users.add_all(negatives.users)
        ni = items.add_all(negatives.items)
    items_file = read_items(args.items) if args.items else None
    if items_file is not None:
        items.add_all(items_file.keys)
    shape = (len(users), len(items))
    X = _train_matrix(args, train, tu, ti, shape)
    T = interaction_matrix(su, si, np.ones(len(test), dtype=np.float32), shape, "binary")
    N = None
    if negatives is not None:
        N = interaction_matrix(nu, ni, np.ones(len(negatives), dtype=np.float32), shape, "binary")
    cold_users = int((np.diff(T.indptr)[n_train_users:] > 0).sum())
    context = (items_file, items, args) if items_file is not None else None
    return _EvaluationData(X, T, N, timestamp_matrix(train, tu, ti, shape), cold_users, context)


def _negatives_per_user(data: _EvaluationData) -> int | None:
    """The sampled protocol's negatives per test user (median), or None for full ranking."""
    if data.N is None:
        return None
    per_user = np.diff(data.N.indptr)
    return int(np.median(per_user[per_user > 0])) if (per_user > 0).any() else None


def _tune_all(args: argparse.Namespace, algorithms: list[str], data: _EvaluationData) -> tuple[dict, list]:
    """``--tune``: tune each algorithm on validation carved out of TRAIN; write ``--params-out``."""
    from recommendations.algorithms import evaluation as ev

    n_neg = _negatives_per_user(data)
    stamps = None
    if args.tune_split == "time":
        if data.stamps is None:
            raise CSVError(f"{args.train}:1: --tune-split time needs a 'timestamp' column")
        stamps = data.stamps
    log = (lambda line: print(line, file=sys.stderr)) if not args.quiet else None
    common = dict(metric=args.tune_metric, ks=parse_ks(args.k), timestamps=stamps, n_iter=args.tune_iter,
                  n_folds=args.tune_folds, random_state=args.seed, log=log)
    tuned, tuning_log = {}, []
    for name in algorithms:
        if name == "auto":
            # auto is a blend: its members are tuned first, then its weights, all on the validation split
            res = ev.tune_auto(data.X, n_negatives=n_neg, **common)
        else:
            res = ev.tune(name, data.X, n_negatives=n_neg, **common)
        tuned[name] = res.best_params
        tuning_log.append({"algorithm": name, "params": res.best_params, args.tune_metric: res.best_score})
    if args.params_out:
        best = max(tuning_log, key=lambda t: (t[args.tune_metric] if np.isfinite(t[args.tune_metric]) else -1))
        ev.save_params(
            args.params_out, best["algorithm"], best["params"], tuned_on=os.path.abspath(args.train),
            validation=f"{args.tune_split} leave-one-out carved from TRAIN"
            + (f" ({args.tune_folds} independent carvings, scores averaged)" if args.tune_folds > 1 else "")
            + (f", {n_neg} sampled negatives" if n_neg else ", full ranking"),
            metric=args.tune_metric, validation_score=best[args.tune_metric],
            all_algorithms={t["algorithm"]: t["params"] for t in tuning_log},
        )
    return tuned, tuning_log


def _evaluate_one(name: str, params: dict[str, Any], data: _EvaluationData, ks: list[int]) -> Any:
    """Fit ``name`` on TRAIN (``auto`` tunes itself on it) and score TEST."""
    from recommendations.algorithms import evaluation as ev

    fit_params = dict(params)
    if name == "auto" and "tune_negatives" not in params:
        # auto tunes for the protocol it is scored by: sampled negatives reward other blends than full ranking
        fit_params["tune_negatives"] = _negatives_per_user(data)
    est = make_estimator(name, fit_params)
    fit_seconds = _fit(est, name, data.X, data.stamps, data.items)
    result = ev.evaluate(est, data.X, data.T, ks=ks, negatives=data.N, name=name, params=params, fit=False)
    result.fit_seconds = fit_seconds
    tuning = getattr(est, "tuning_", None)
    if tuning and tuning.get("tuned"):
        result.params = {**params, "tuned": tuning}
    return result


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Fit each algorithm on TRAIN and rank each TEST item (sampled or full ranking).

    An algorithm that refuses the data (EASE^R above its catalogue limit, out of memory) is
    skipped with its reason; the others are still evaluated.
    """
    ks = parse_ks(args.k)
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if not algorithms:
        raise CSVError("--algorithms: give at least one algorithm name")
    for name in algorithms:
        make_estimator(name, {})  # an unknown name is a usage error before any fitting
    preset_name, preset_params = load_params_file(args.params, None) if args.params else (None, {})
    data = _evaluation_data(args)
    tuned, tuning_log = _tune_all(args, algorithms, data) if args.tune else ({}, [])
    results, skipped = [], []
    for name in algorithms:
        params = tuned.get(name, preset_params if name == preset_name else {})
        try:
            results.append(_evaluate_one(name, params, data, ks))
        except CSVError:
            raise
        except (ValueError, MemoryError) as exc:
            reason = str(exc) or "out of memory"
            if isinstance(exc, MemoryError):
                reason = f"out of memory ({reason})"
            skipped.append({"algorithm": name, "reason": reason})
            print(f"skipped {name}: {reason}", file=sys.stderr)
            continue
        if not args.quiet and not args.json:
            print(f"evaluated {name}", file=sys.stderr)
    if not results:
        reasons = "; ".join(f"{s['algorithm']}: {s['reason']}" for s in skipped)
        raise CSVError(f"no algorithm could be evaluated: {reasons}")
    _print_results(args, data, ks, results, skipped, tuning_log)
    return 0


def _print_results(args: argparse.Namespace, data: _EvaluationData, ks: list[int], results: list, skipped: list,
                   tuning_log: list) -> None:
    payload = {
        "train": args.train,
        "test": args.test,
        "negatives": args.negatives,
        "protocol": "sampled" if data.N is not None else "full",
        "k": ks,
        "n_test_users_without_train": data.cold_users,
        "results": [r.as_dict() for r in results],
        "skipped": skipped,
    }
    if tuning_log:
        payload["tuning"] = tuning_log
    if args.json:
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    cols = [f"{m}@{k}" for k in ks for m in ("HR", "NDCG", "Recall", "Precision", "MAP", "Coverage")]
    print(f"protocol: {payload['protocol']}; users evaluated: {results[0].n_users}; "
          f"test users without train data (skipped): {data.cold_users}")
    print("| algorithm | " + " | ".join(cols) + " | fit s | score s |")
    print("|---" * (len(cols) + 3) + "|")
    for r in results:
        vals = " | ".join(f"{r.metrics[c]:.4f}" for c in cols)
        print(f"| {r.name} | {vals} | {r.fit_seconds:.2f} | {r.score_seconds:.2f} |")
    for s in skipped:
        print(f"skipped {s['algorithm']}: {s['reason']}")
