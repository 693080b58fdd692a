"""Provides hyperparameter tuning on a validation split carved out of the training data, and parameter files."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from .base import get_estimator
from .protocols import evaluate
from .splits import leave_last_out_split, leave_one_out_split, sample_negatives

__all__ = [
    "DEFAULT_SEARCH_SPACES",
    "TuningResult",
    "tune",
    "objective_value",
    "with_metric_k",
    "fold_seed",
    "validation_split",
    "validation_folds",
    "search_candidates",
    "save_params",
    "load_params",
    "jsonable",
]



#: Small documented search spaces per algorithm (names as in ``recommendations.algorithms.ALGORITHMS``).
#: Values are lists; the grid is their product. ``tune`` samples ``n_iter`` of them at random when the
#: grid is larger than ``n_iter``. Parameter names are those of the estimators' ``__init__``.
DEFAULT_SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "toppop": {},
    "itemknn": {"top_k": [100, 300, 600], "shrink": [0, 100, 1000], "feature_weighting": ["tfidf", "bm25", "none"]},
    "userknn": {"top_k": [100, 300, 600], "shrink": [0, 100, 1000], "feature_weighting": ["tfidf", "bm25", "none"]},
    "p3alpha": {"alpha": [0.5, 0.8, 1.0], "top_k": [200, 500, 800]},
    "rp3beta": {"alpha": [0.5, 0.7, 0.9], "beta": [0.1, 0.25, 0.4], "top_k": [300, 800]},
    "ease": {"l2_norm": [100.0, 300.0, 500.0, 1000.0]},
    "ials": {"factors": [64, 128], "regularization": [0.01, 0.1], "alpha": [1.0, 10.0], "iterations": [15]},
}


@dataclass
class TuningResult:
    """Outcome of :func:`tune`."""

    algorithm: str
    best_params: dict[str, Any]
    best_score: float
    metric: str
    trials: list[dict[str, Any]]
    #: For ``tune_auto``: the tuning of each blend member alone (same candidates), by member name.
    members: dict[str, "TuningResult"] = field(default_factory=dict)
    #: For ``tune_auto``: what else the search records (registry-default scores, fits, budget cuts).
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        out = {
            "algorithm": self.algorithm,
            "params": self.best_params,
            "metric": self.metric,
            "best_score": self.best_score,
            "trials": self.trials,
        }
        if self.members:
            out["members"] = {name: r.as_dict() for name, r in self.members.items()}
        return out


def _metric_parts(metric: str) -> list[str]:
    """The metric names a tuning objective adds up: "NDCG@10" -> [NDCG@10]; "HR@10+NDCG@10" -> [HR@10, NDCG@10]."""
    parts = [p.strip() for p in metric.split("+")]
    if not all(parts):
        raise ValueError(f"bad tuning metric {metric!r} (expected e.g. 'NDCG@10' or 'HR@10+NDCG@10')")
    return parts


def objective_value(metrics: Mapping[str, float], metric: str) -> float:
    """The tuning objective ``metric`` read from a metrics dict: one key, or the sum of ``+``-joined keys.

    A sum such as ``"HR@10+NDCG@10"`` matches a goal stated on both metrics (NaN when any part is missing).
    """
    return float(sum(metrics.get(p, float("nan")) for p in _metric_parts(metric)))


def with_metric_k(ks: Sequence[int], metric: str) -> tuple[int, ...]:
    """``ks`` plus the cut-offs named by ``metric`` ("NDCG@10" -> 10), so the tuned metric is always computed."""
    extra = {int(k) for _, _, k in (p.partition("@") for p in _metric_parts(metric)) if k.isdigit()}
    return tuple(sorted(set(int(x) for x in ks) | extra))


def fold_seed(random_state: int, fold: int) -> int:
    """Seed of validation fold ``fold``: fold 0 is the single split of ``random_state`` (results stay comparable)."""
    return int(random_state) + 1000 * int(fold)


def validation_folds(
    train: sp.csr_matrix, timestamps: sp.spmatrix | None, max_users: int | None, random_state: int, n_folds: int
) -> tuple[list[tuple[sp.csr_matrix, sp.csr_matrix, int]], np.random.Generator]:
    """``n_folds`` independent validation carvings of TRAIN as ``(fit_part, valid, seed)``, and fold 0's generator.

    Each fold holds out a different random item per user (seed :func:`fold_seed`), so averaging a candidate's
    score over folds averages over more (user, held-out item) pairs: with one item per user the validation
    noise is about as large as the differences tuning has to resolve. A time-based split has only one fold.
    """
    if n_folds < 1:
        raise ValueError(f"n_folds must be at least 1, got {n_folds}")
    if timestamps is not None and n_folds > 1:
        raise ValueError("n_folds > 1 needs the random validation split (the time split holds out the latest item)")
    folds = []
    rng = None
    for f in range(n_folds):
        seed = fold_seed(random_state, f)
        fit_part, valid, fold_rng = validation_split(train, timestamps, max_users, seed)
        if f == 0:
            rng = fold_rng
        folds.append((fit_part, valid, seed))
    return folds, rng


def search_candidates(space: Mapping[str, Sequence[Any]], n_iter: int | None, rng: np.random.Generator) -> list[dict]:
    keys = list(space)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    if n_iter is not None and len(grid) > n_iter:
        idx = rng.choice(len(grid), size=n_iter, replace=False)
        grid = [grid[i] for i in sorted(idx)]
    return grid



def validation_split(
    train: sp.csr_matrix, timestamps: sp.spmatrix | None, max_users: int | None, random_state: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.random.Generator]:
    """The split :func:`tune` uses: one held-out item per user of TRAIN, optionally a sample of users."""
    rng = np.random.default_rng(random_state)
    if timestamps is not None:
        fit_part, valid = leave_last_out_split(train, timestamps, random_state=random_state)
    else:
        fit_part, valid = leave_one_out_split(train, random_state=random_state)
    valid_users = np.flatnonzero(np.diff(valid.indptr))
    if max_users is not None and valid_users.size > max_users:
        keep = np.zeros(valid.shape[0], dtype=bool)
        keep[rng.choice(valid_users, size=max_users, replace=False)] = True
        valid = sp.csr_matrix(sp.diags(keep.astype(np.float32)) @ valid)
        valid.eliminate_zeros()
    return fit_part, valid, rng


def tune(
    algorithm: str,
    train: sp.spmatrix,
    search_space: Mapping[str, Sequence[Any]] | None = None,
    *,
    factory: Callable[..., Any] | None = None,
    metric: str = "NDCG@10",
    ks: Sequence[int] = (10,),
    n_negatives: int | None = None,
    timestamps: sp.spmatrix | None = None,
    n_iter: int | None = None,
    base_params: Mapping[str, Any] | None = None,
    max_users: int | None = None,
    n_folds: int = 1,
    random_state: int = 0,
    log: Callable[[str], None] | None = None,
) -> TuningResult:
    """Search hyperparameters on a validation split carved out of ``train`` (never the test).

    One item per user of ``train`` is held out (the latest one when ``timestamps`` is given, else
    a random one; ``n_folds`` independent random carvings are averaged); each candidate is fitted
    on the rest and scored on the held-out items, against ``n_negatives`` sampled negatives or
    by full ranking. Candidates: ``base_params`` alone, then the grid ``search_space`` (default
    ``DEFAULT_SEARCH_SPACES[algorithm]``) or ``n_iter`` random points of it, each merged over
    ``base_params``.

    ``factory(algorithm, **params)`` builds a candidate (default ``get_estimator``); ``metric`` is a
    metrics key or a sum of keys such as ``"HR@10+NDCG@10"``; ``timestamps`` (same pattern as
    ``train``) selects the time-based split; ``max_users`` validation users are scored (all still
    train the model); ``log`` receives one line per trial. Returns a :class:`TuningResult`.
    """
    factory = factory or get_estimator
    base = dict(base_params or {})
    ks = with_metric_k(ks, metric)
    space = dict(DEFAULT_SEARCH_SPACES.get(algorithm, {}) if search_space is None else search_space)
    train = sp.csr_matrix(train, dtype=np.float32)
    folds, rng = validation_folds(train, timestamps, max_users, random_state, n_folds)
    fold_negatives = [
        sample_negatives(fit_part, valid, n_negatives=n_negatives, random_state=seed + 1) if n_negatives else None
        for fit_part, valid, seed in folds
    ]
    candidates = [{**base, **c} for c in [{}] + [c for c in search_candidates(space, n_iter, rng) if c]]
    trials: list[dict[str, Any]] = []
    for params in candidates:
        per_fold, fit_seconds = _fold_scores(factory, algorithm, params, folds, fold_negatives, ks, metric)
        trials.append({"params": params, metric: float(np.mean(per_fold)), "fit_seconds": fit_seconds,
                       **({"folds": per_fold} if len(folds) > 1 else {})})
        if log is not None:
            log(f"tune {algorithm} {params} -> {metric}={trials[-1][metric]:.4f} (fit {fit_seconds:.1f}s)")
    finite = [t for t in trials if np.isfinite(t[metric])]
    best = max(finite, key=lambda t: t[metric]) if finite else {"params": dict(base), metric: -np.inf}
    return TuningResult(algorithm, best["params"], float(best[metric]), metric, trials)


def _fold_scores(
    factory: Callable[..., Any],
    algorithm: str,
    params: dict[str, Any],
    folds: list[tuple[sp.csr_matrix, sp.csr_matrix, int]],
    fold_negatives: list[sp.csr_matrix | None],
    ks: Sequence[int],
    metric: str,
) -> tuple[list[float], float]:
    """Objective of ``algorithm(**params)`` fitted and scored on each validation fold, and the fit time."""
    per_fold, fit_seconds = [], 0.0
    for (fit_part, valid, _), negatives in zip(folds, fold_negatives):
        est = factory(algorithm, **params)
        res = evaluate(est, fit_part, valid, ks=ks, negatives=negatives, name=algorithm, params=params)
        per_fold.append(objective_value(res.metrics, metric))
        fit_seconds += res.fit_seconds
    return per_fold, fit_seconds


def save_params(path: str | os.PathLike, algorithm: str, params: Mapping[str, Any], **extra: Any) -> None:
    """Write ``{"algorithm": name, "params": {...}, ...extra}`` as JSON (what ``recommend`` loads)."""
    payload = {"algorithm": algorithm, "params": jsonable(dict(params)), **jsonable(extra)}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=False)
        fh.write("\n")


def load_params(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """Read a parameters file written by :func:`save_params`; return ``(algorithm, params)``.

    Raises
    ------
    ValueError
        If the file is not JSON or lacks ``algorithm`` / ``params``; the message names the file.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            payload = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("algorithm"), str):
        raise ValueError(f"{path}: expected an object with a string 'algorithm'")
    params = payload.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'params' must be an object")
    return payload["algorithm"], params


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
