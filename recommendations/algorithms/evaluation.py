"""Provides offline evaluation: splits, sampled and full-ranking protocols, ranking metrics and tuning."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = [
    "tie_aware_ranks",
    "metrics_from_positions",
    "leave_one_out_split",
    "leave_last_out_split",
    "last_timestamp_matrix",
    "sample_negatives",
    "evaluate",
    "evaluate_scores",
    "EvaluationResult",
    "TuningResult",
    "tune",
    "tune_auto",
    "tune_auto_protocols",
    "objective_value",
    "BLEND_WEIGHT_GRID",
    "DEFAULT_SEARCH_SPACES",
    "save_params",
    "load_params",
]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def tie_aware_ranks(positive_scores: NDArray, candidate_scores: NDArray) -> NDArray[np.float64]:
    """Rank each positive among its candidates with the issue-3 rule.

    rank = number of candidates scored strictly higher + 0.5 x number of candidates tied.

    Parameters
    ----------
    positive_scores : ndarray of shape (n,)
        Score of each positive item (already -inf when the item is in the user's train data).
    candidate_scores : ndarray of shape (n, m)
        Scores of the items the positive is ranked against (it must NOT contain the positive
        itself). NaN entries are padding and are ignored.

    Returns
    -------
    ranks : ndarray of float64, shape (n,)
        0-based, tie-aware rank; 0 is the best.
    """
    positive_scores = np.asarray(positive_scores, dtype=np.float64).reshape(-1, 1)
    candidate_scores = np.asarray(candidate_scores, dtype=np.float64)
    higher = (candidate_scores > positive_scores).sum(axis=1)
    tied = (candidate_scores == positive_scores).sum(axis=1)
    return higher + 0.5 * tied


def metrics_from_positions(
    positions: NDArray,
    user_of_position: NDArray,
    ks: Sequence[int],
    n_users: int | None = None,
) -> dict[str, float]:
    """Average HR, NDCG, Recall, Precision and MAP at each k over users.

    Parameters
    ----------
    positions : ndarray of shape (n_positives,)
        Tie-aware 0-based position of every held-out positive in its user's ranked list
        (see :func:`tie_aware_ranks`). With one positive per user this is the issue-3 rank.
    user_of_position : ndarray of int, shape (n_positives,)
        Any integer label of the user each positive belongs to.
    ks : sequence of int
        Cut-offs.
    n_users : int, optional
        Unused; kept for readability of call sites.

    Returns
    -------
    dict
        ``"HR@k"``: [some positive has position < k];
        ``"NDCG@k"``: sum over positives of [pos < k] / log2(floor(pos) + 2), divided by the ideal
        DCG of min(k, n_positives) hits (with one positive: [r < k] / log2(floor(r) + 2));
        ``"Recall@k"``: hits / n_positives; ``"Precision@k"``: hits / k;
        ``"MAP@k"``: sum over hit positives of (hits up to it / (floor(pos) + 1)) / min(k, n_positives).
        Every value is a mean over users.
    """
    positions = np.asarray(positions, dtype=np.float64)
    users = np.asarray(user_of_position)
    if positions.size == 0:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("HR", "NDCG", "Recall", "Precision", "MAP")}
    _, inverse = np.unique(users, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    n_pos = np.bincount(inverse, minlength=n_groups).astype(np.float64)
    floor_pos = np.floor(positions)
    # order of each positive among its own user's positives (1-based), for MAP
    order = np.lexsort((positions, inverse))
    sorted_users = inverse[order]
    first_of_group = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    group_start = np.repeat(first_of_group, np.diff(np.r_[first_of_group, sorted_users.size]))
    within = np.empty_like(order)
    within[order] = np.arange(order.size) - group_start + 1
    out: dict[str, float] = {}
    for k in ks:
        hit = positions < k
        hits = np.bincount(inverse, weights=hit, minlength=n_groups)
        dcg = np.bincount(inverse, weights=hit / np.log2(floor_pos + 2.0), minlength=n_groups)
        ideal_n = np.minimum(n_pos, k).astype(np.int64)
        discounts = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))
        idcg = discounts[ideal_n - 1]
        precision_at = np.minimum(within / (floor_pos + 1.0), 1.0)
        ap = np.bincount(inverse, weights=hit * precision_at, minlength=n_groups) / ideal_n
        out[f"HR@{k}"] = float(np.mean(hits > 0))
        out[f"NDCG@{k}"] = float(np.mean(dcg / idcg))
        out[f"Recall@{k}"] = float(np.mean(hits / n_pos))
        out[f"Precision@{k}"] = float(np.mean(hits / k))
        out[f"MAP@{k}"] = float(np.mean(ap))
    return out


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def _as_csr(user_items: sp.spmatrix) -> sp.csr_matrix:
    X = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X


def _split_by_choice(X: sp.csr_matrix, chosen_pos: NDArray, has_test: NDArray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Move the stored entry at CSR position chosen_pos[u] of each user with has_test[u] to test."""
    test_mask = np.zeros(X.nnz, dtype=bool)
    test_mask[chosen_pos[has_test]] = True
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    coo_rows, cols, vals = rows, X.indices, X.data
    train = sp.csr_matrix((vals[~test_mask], (coo_rows[~test_mask], cols[~test_mask])), shape=X.shape, dtype=np.float32)
    test = sp.csr_matrix((vals[test_mask], (coo_rows[test_mask], cols[test_mask])), shape=X.shape, dtype=np.float32)
    return train, test


def leave_one_out_split(
    user_items: sp.spmatrix, random_state: int | np.random.Generator | None = 0, min_train: int = 1
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out one random item per user.

    Parameters
    ----------
    user_items : sparse matrix of shape (n_users, n_items)
        Interactions; duplicate (user, item) entries are summed first, so an item is never in
        both train and test.
    random_state : int or Generator
        Seed for the choice.
    min_train : int
        A user is split only if at least ``min_train`` items stay in train; others keep all their
        items in train and have no test item.

    Returns
    -------
    train, test : csr_matrix float32 of shape (n_users, n_items)
        ``test`` has at most one stored entry per row.
    """
    X = _as_csr(user_items)
    rng = np.random.default_rng(random_state)
    counts = np.diff(X.indptr)
    has_test = counts >= min_train + 1
    offsets = np.floor(rng.random(X.shape[0]) * np.maximum(counts, 1)).astype(np.int64)
    chosen = X.indptr[:-1] + offsets
    return _split_by_choice(X, chosen, has_test)


def last_timestamp_matrix(
    users: NDArray, items: NDArray, timestamps: NDArray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Build a CSR matrix holding, for each (user, item) pair, its LATEST timestamp.

    Parameters
    ----------
    users, items : ndarray of int, shape (n,)
        Row and column of every event (duplicates allowed).
    timestamps : ndarray of float, shape (n,)
        Event times (any monotone unit, e.g. unix seconds).
    shape : (n_users, n_items)

    Returns
    -------
    csr_matrix float64 of shape ``shape`` with the same sparsity pattern as the interactions.
    """
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    ts = np.asarray(timestamps, dtype=np.float64)
    key = users * shape[1] + items
    order = np.lexsort((ts, key))
    key_sorted = key[order]
    last = np.r_[key_sorted[1:] != key_sorted[:-1], True]
    sel = order[last]
    M = sp.csr_matrix((ts[sel], (users[sel], items[sel])), shape=shape, dtype=np.float64)
    M.sort_indices()
    return M


def leave_last_out_split(
    user_items: sp.spmatrix,
    timestamps: sp.spmatrix,
    random_state: int | np.random.Generator | None = 0,
    min_train: int = 1,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out each user's most recent item (time-based leave-last-out).

    Parameters
    ----------
    user_items : sparse matrix of shape (n_users, n_items)
        Interactions.
    timestamps : sparse matrix of shape (n_users, n_items)
        Same sparsity pattern as ``user_items`` with the time of each pair (see
        :func:`last_timestamp_matrix`).
    random_state : int or Generator
        Breaks ties between items sharing the latest timestamp.
    min_train : int
        Users with fewer than ``min_train + 1`` items are not split.

    Returns
    -------
    train, test : csr_matrix float32
    """
    X = _as_csr(user_items)
    T = sp.csr_matrix(timestamps, dtype=np.float64, copy=True)
    T.sum_duplicates()
    T.sort_indices()
    if T.shape != X.shape or T.nnz != X.nnz or not np.array_equal(T.indices, X.indices):
        raise ValueError("timestamps must have the same sparsity pattern as user_items")
    rng = np.random.default_rng(random_state)
    counts = np.diff(X.indptr)
    has_test = counts >= min_train + 1
    rows = np.repeat(np.arange(X.shape[0]), counts)
    jitter = rng.random(X.nnz)
    # sort by row, then time, then a random tie-break: the last entry of each row is the latest
    order = np.lexsort((jitter, T.data, rows))
    last_in_row = np.zeros(X.shape[0], dtype=np.int64)
    nonempty = counts > 0
    last_in_row[nonempty] = order[X.indptr[1:][nonempty] - 1]
    return _split_by_choice(X, last_in_row, has_test)


def sample_negatives(
    train: sp.spmatrix,
    test: sp.spmatrix,
    n_negatives: int = 100,
    random_state: int | np.random.Generator | None = 0,
) -> sp.csr_matrix:
    """Draw, for each user with a test item, ``n_negatives`` items it has in neither train nor test.

    Parameters
    ----------
    train, test : sparse matrix of shape (n_users, n_items)
    n_negatives : int
        Fewer are drawn when the catalogue does not allow that many.
    random_state : int or Generator

    Returns
    -------
    csr_matrix float32 (n_users, n_items) with a 1 at every sampled negative.
    """
    train = sp.csr_matrix(train)
    test = sp.csr_matrix(test)
    n_users, n_items = train.shape
    rng = np.random.default_rng(random_state)
    seen = (train + test).tocsr()
    seen.sort_indices()
    rows, cols = [], []
    for u in np.flatnonzero(np.diff(test.indptr)):
        own = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        available = n_items - own.size
        want = min(n_negatives, available)
        if want <= 0:
            continue
        picked: set[int] = set()
        own_set = set(own.tolist())
        if want > available // 2:
            pool = np.setdiff1d(np.arange(n_items), own, assume_unique=True)
            chosen = rng.choice(pool, size=want, replace=False)
        else:
            while len(picked) < want:
                for c in rng.integers(0, n_items, size=2 * (want - len(picked))).tolist():
                    if c not in own_set and c not in picked:
                        picked.add(c)
                        if len(picked) == want:
                            break
            chosen = np.fromiter(picked, dtype=np.int64)
        rows.append(np.full(chosen.size, u, dtype=np.int64))
        cols.append(np.asarray(chosen, dtype=np.int64))
    if not rows:
        return sp.csr_matrix((n_users, n_items), dtype=np.float32)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n_users, n_items))


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Metrics of one estimator under one protocol."""

    name: str
    protocol: str
    metrics: dict[str, float]
    fit_seconds: float
    score_seconds: float
    n_users: int
    n_skipped_users: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable flat dict."""
        return {
            "algorithm": self.name,
            "protocol": self.protocol,
            **{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.metrics.items()},
            "fit_seconds": self.fit_seconds,
            "score_seconds": self.score_seconds,
            "n_users": self.n_users,
            "n_skipped_users": self.n_skipped_users,
            "params": self.params,
        }


def _mask_train(S: NDArray, train_rows: sp.csr_matrix) -> None:
    """Set the scores of the items in each user's train row to -inf, in place (NaN -> -inf too)."""
    np.nan_to_num(S, copy=False, nan=-np.inf)
    r = np.repeat(np.arange(train_rows.shape[0]), np.diff(train_rows.indptr))
    S[r, train_rows.indices] = -np.inf


def evaluate_scores(
    score_block: Callable[[NDArray[np.int64]], NDArray],
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    ks: Sequence[int] = (5, 10),
    negatives: sp.csr_matrix | None = None,
    batch_size: int = 512,
) -> tuple[dict[str, float], int, int]:
    """Run a protocol given a function that scores a block of users.

    Parameters
    ----------
    score_block : callable
        ``score_block(user_indices) -> ndarray (len(user_indices), n_items)`` raw scores.
    train, test : csr_matrix of shape (n_users, n_items)
        Test users are the rows of ``test`` with at least one entry and at least one train item.
    ks : sequence of int
    negatives : csr_matrix, optional
        Sampled protocol when given: each positive is ranked against its user's negatives and
        the user's other test positives (set semantics; duplicates count once). Without it, full
        ranking: against every item not in the user's train data.
    batch_size : int
        Users scored per block.

    Returns
    -------
    metrics : dict
        ``HR@k``, ``NDCG@k``, ``Recall@k``, ``Precision@k``, ``MAP@k`` and ``Coverage@k`` (share of
        the catalogue that appears in at least one evaluated user's top-k, train items excluded).
    n_users : int
        Users evaluated.
    n_skipped : int
        Test users skipped because they have no train data.
    """
    train = sp.csr_matrix(train)
    test = sp.csr_matrix(test)
    train.sort_indices()
    test.sort_indices()
    n_items = train.shape[1]
    test_users = np.flatnonzero(np.diff(test.indptr) > 0)
    has_train = np.diff(train.indptr)[test_users] > 0
    skipped = int((~has_train).sum())
    test_users = test_users[has_train]
    if negatives is not None:
        negatives = sp.csr_matrix(negatives)
        negatives.sort_indices()
    all_pos: list[NDArray] = []
    all_user: list[NDArray] = []
    kmax = max(ks)
    covered = {k: np.zeros(n_items, dtype=bool) for k in ks}
    for start in range(0, test_users.size, batch_size):
        block = test_users[start : start + batch_size]
        S = np.array(score_block(block), dtype=np.float64, copy=True)
        if S.shape != (block.size, n_items):
            raise ValueError(f"score() returned shape {S.shape}, expected {(block.size, n_items)}")
        _mask_train(S, train[block])
        # coverage: top-k over the full catalogue (train items are -inf, so never chosen)
        kk = min(kmax, n_items)
        top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
        top_scores = np.take_along_axis(S, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        for k in ks:
            sel = top[:, :k][np.isfinite(top_scores[:, :k])]
            covered[k][sel] = True
        Tb = test[block]
        t_rows = np.repeat(np.arange(block.size), np.diff(Tb.indptr))
        t_items = Tb.indices
        pos_scores = S[t_rows, t_items]
        if negatives is None:
            # full ranking: candidates are all non-train items except the positive itself. Train
            # items are -inf; they must not count as ties of a -inf positive, so count them out.
            n_train = np.diff(train[block].indptr)[t_rows]
            higher = np.empty(t_rows.size)
            tied = np.empty(t_rows.size)
            for a in range(0, t_rows.size, 256):
                b = slice(a, a + 256)
                rows_s = S[t_rows[b]]
                ps = pos_scores[b][:, None]
                higher[b] = (rows_s > ps).sum(axis=1)
                tied[b] = (rows_s == ps).sum(axis=1) - 1
            # a -inf positive ties with the -inf train items, which are not candidates
            in_train = np.asarray(train[block][t_rows, t_items] != 0).ravel().astype(np.int64)
            minus_inf = np.isneginf(pos_scores)
            tied[minus_inf] -= (n_train - in_train)[minus_inf]
            positions = higher + 0.5 * tied
        else:
            Nb = negatives[block]
            cand_lists = []
            for r in range(block.size):
                c = np.union1d(Nb.indices[Nb.indptr[r] : Nb.indptr[r + 1]], Tb.indices[Tb.indptr[r] : Tb.indptr[r + 1]])
                cand_lists.append(c)
            width = max((c.size for c in cand_lists), default=0)
            C = np.full((block.size, width), np.nan)
            for r, c in enumerate(cand_lists):
                C[r, : c.size] = S[r, c]
            cand_items = np.full((block.size, width), -1, dtype=np.int64)
            for r, c in enumerate(cand_lists):
                cand_items[r, : c.size] = c
            CS = C[t_rows]
            # drop the positive itself from its candidates
            self_mask = cand_items[t_rows] == t_items[:, None]
            CS[self_mask] = np.nan
            positions = tie_aware_ranks(pos_scores, CS)
        all_pos.append(positions)
        all_user.append(block[t_rows])
    if all_pos:
        positions = np.concatenate(all_pos)
        users = np.concatenate(all_user)
    else:
        positions = np.zeros(0)
        users = np.zeros(0, dtype=np.int64)
    metrics = metrics_from_positions(positions, users, ks)
    for k in ks:
        metrics[f"Coverage@{k}"] = float(covered[k].sum() / n_items) if n_items else float("nan")
    return metrics, int(test_users.size), skipped


def evaluate(
    estimator: Any,
    train: sp.spmatrix,
    test: sp.spmatrix,
    ks: Sequence[int] = (5, 10),
    negatives: sp.spmatrix | None = None,
    fit: bool = True,
    batch_size: int = 512,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Fit (optionally) and evaluate an estimator under the sampled or full-ranking protocol.

    Parameters
    ----------
    estimator : RecommenderBase
        Anything with ``fit(user_items)`` and ``score(user_items_rows) -> (m, n_items)``.
    train, test : sparse matrix of shape (n_users, n_items)
        Train interactions (fitted on) and held-out positives.
    ks : sequence of int
        Cut-offs.
    negatives : sparse matrix, optional
        Sampled negatives per test user; full ranking when omitted.
    fit : bool
        Fit on ``train`` first (timed).
    batch_size : int
        Users scored per block via ``estimator.score(train[rows])``.
    name : str, optional
        Label for the result.
    params : mapping, optional
        Hyperparameters to record with the result.

    Returns
    -------
    EvaluationResult
    """
    train = sp.csr_matrix(train, dtype=np.float32)
    test = sp.csr_matrix(test, dtype=np.float32)
    fit_seconds = 0.0
    if fit:
        t0 = time.perf_counter()
        estimator.fit(train)
        fit_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics, n_users, skipped = evaluate_scores(
        lambda rows: estimator.score(train[rows]), train, test, ks=ks, negatives=negatives, batch_size=batch_size
    )
    score_seconds = time.perf_counter() - t0
    return EvaluationResult(
        name=name or type(estimator).__name__,
        protocol="sampled" if negatives is not None else "full",
        metrics=metrics,
        fit_seconds=fit_seconds,
        score_seconds=score_seconds,
        n_users=n_users,
        n_skipped_users=skipped,
        params=dict(params or {}),
    )


# --------------------------------------------------------------------------------------------
# Tuning
# --------------------------------------------------------------------------------------------

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


def _with_metric_k(ks: Sequence[int], metric: str) -> tuple[int, ...]:
    """``ks`` plus the cut-offs named by ``metric`` ("NDCG@10" -> 10), so the tuned metric is always computed."""
    extra = {int(k) for _, _, k in (p.partition("@") for p in _metric_parts(metric)) if k.isdigit()}
    return tuple(sorted(set(int(x) for x in ks) | extra))


def _fold_seed(random_state: int, fold: int) -> int:
    """Seed of validation fold ``fold``: fold 0 is the single split of ``random_state`` (results stay comparable)."""
    return int(random_state) + 1000 * int(fold)


def _validation_folds(
    train: sp.csr_matrix, timestamps: sp.spmatrix | None, max_users: int | None, random_state: int, n_folds: int
) -> tuple[list[tuple[sp.csr_matrix, sp.csr_matrix, int]], np.random.Generator]:
    """``n_folds`` independent validation carvings of TRAIN as ``(fit_part, valid, seed)``, and fold 0's generator.

    Each fold holds out a different random item per user (seed :func:`_fold_seed`), so averaging a candidate's
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
        seed = _fold_seed(random_state, f)
        fit_part, valid, fold_rng = _validation_split(train, timestamps, max_users, seed)
        if f == 0:
            rng = fold_rng
        folds.append((fit_part, valid, seed))
    return folds, rng


def _candidates(space: Mapping[str, Sequence[Any]], n_iter: int | None, rng: np.random.Generator) -> list[dict]:
    keys = list(space)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(space[k] for k in keys))]
    if n_iter is not None and len(grid) > n_iter:
        idx = rng.choice(len(grid), size=n_iter, replace=False)
        grid = [grid[i] for i in sorted(idx)]
    return grid


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
    a random one); each candidate is fitted on the rest and scored on the held-out items, with
    ``n_negatives`` sampled negatives per user (sampled protocol) or full ranking when None.
    With ``n_folds`` > 1 this is repeated on that many independent random carvings and the
    candidate's score is the mean over folds (each fold costs one more fit per candidate).
    The search is the grid ``search_space`` (product of value lists), or a random sample of
    ``n_iter`` of its points, always including ``base_params`` alone as the first candidate.

    Parameters
    ----------
    algorithm : str
        Registry name (``get_estimator(algorithm, **params)``).
    train : sparse matrix (n_users, n_items)
        Training data ONLY.
    search_space : mapping, optional
        Defaults to ``DEFAULT_SEARCH_SPACES[algorithm]``.
    factory : callable, optional
        ``factory(algorithm, **params) -> estimator``; defaults to ``get_estimator``.
    metric : str
        Key of the metrics dict to maximise, or a sum of keys such as ``"HR@10+NDCG@10"``.
    ks : sequence of int
    n_negatives : int, optional
    timestamps : sparse matrix, optional
        Same pattern as ``train``; selects the time-based validation split.
    n_iter : int, optional
        Random-search budget.
    base_params : mapping, optional
        Fixed parameters merged under every candidate.
    max_users : int, optional
        Score only a random sample of this many validation users (all still train the model).
    n_folds : int
        Independent random validation carvings to average over (1: the single split; the time
        split allows only 1).
    random_state : int
    log : callable, optional
        Receives one line per trial.

    Returns
    -------
    TuningResult
    """
    if factory is None:
        from recommendations.algorithms import get_estimator as factory  # noqa: N813
    base = dict(base_params or {})
    ks = _with_metric_k(ks, metric)
    space = dict(DEFAULT_SEARCH_SPACES.get(algorithm, {}) if search_space is None else search_space)
    train = sp.csr_matrix(train, dtype=np.float32)
    folds, rng = _validation_folds(train, timestamps, max_users, random_state, n_folds)
    fold_negatives = [
        sample_negatives(fit_part, valid, n_negatives=n_negatives, random_state=seed + 1) if n_negatives else None
        for fit_part, valid, seed in folds
    ]
    candidates = [{}] + [c for c in _candidates(space, n_iter, rng) if c]
    trials: list[dict[str, Any]] = []
    best_score, best_params = -np.inf, dict(base)
    for cand in candidates:
        params = {**base, **cand}
        per_fold, fit_seconds = [], 0.0
        for (fit_part, valid, _), negatives in zip(folds, fold_negatives):
            est = factory(algorithm, **params)
            res = evaluate(est, fit_part, valid, ks=ks, negatives=negatives, name=algorithm, params=params)
            per_fold.append(objective_value(res.metrics, metric))
            fit_seconds += res.fit_seconds
        score = float(np.mean(per_fold))
        trial = {"params": params, metric: score, "fit_seconds": fit_seconds}
        if len(folds) > 1:
            trial["folds"] = per_fold
        trials.append(trial)
        if log is not None:
            log(f"tune {algorithm} {params} -> {metric}={score:.4f} (fit {fit_seconds:.1f}s)")
        if np.isfinite(score) and score > best_score:
            best_score, best_params = score, params
    return TuningResult(algorithm, best_params, float(best_score), metric, trials)


#: Blend weights tried for each member of ``auto`` during :func:`tune_auto` (the anchor member is fixed at 1;
#: the blend is scale-free, so this loses nothing). Item-item members are unit-scaled and the iALS term is
#: divided by each user's largest score (see ``Auto``), so one grid serves all of them.
BLEND_WEIGHT_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)


def _validation_split(
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


def _candidate_columns(valid: sp.csr_matrix, negatives: sp.csr_matrix, users: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per validation user (rows in ``users`` order): its negatives and positives, padded with -1."""
    cand = [np.union1d(negatives.indices[negatives.indptr[u] : negatives.indptr[u + 1]],
                       valid.indices[valid.indptr[u] : valid.indptr[u + 1]]) for u in users]
    width = max((c.size for c in cand), default=0)
    out = np.full((users.size, width), -1, dtype=np.int64)
    for r, c in enumerate(cand):
        out[r, : c.size] = c
    return out


@dataclass
class _Fold:
    """One validation carving used by :func:`tune_auto_protocols`, with what its measurements need."""

    fit_part: sp.csr_matrix
    valid: sp.csr_matrix
    users: NDArray[np.int64]
    row_of: NDArray[np.int64]
    Xv: sp.csr_matrix
    negatives: dict[str, sp.csr_matrix | None]
    #: per sampled objective: the candidate columns of each validation user (-1 = padding)
    columns: dict[str, NDArray[np.int64]]


def tune_auto_protocols(
    train: sp.spmatrix,
    protocols: Mapping[str, int | None],
    *,
    metric: str = "NDCG@10",
    ks: Sequence[int] = (10,),
    timestamps: sp.spmatrix | None = None,
    n_iter: int | None = 4,
    member_iter: Mapping[str, int] | None = None,
    members: Sequence[str] | None = None,
    search_spaces: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    weight_grid: Sequence[float] = BLEND_WEIGHT_GRID,
    n_passes: int = 2,
    ease_max_items: int | None = None,
    dense_ease_max_items: int = 5000,
    max_users: int | None = None,
    n_folds: int = 1,
    random_state: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, TuningResult]:
    """Tune ``auto`` on a validation split carved out of ``train``: its members first, then its blend weights.

    1. One item per user of ``train`` is held out as validation (as in :func:`tune`); with ``n_folds`` > 1,
       that many independent random carvings are made and every score below is the mean over them.
    2. Each member (``rp3beta``, ``itemknn``, ``ease`` when the catalogue is at most ``ease_max_items``,
       ``ials``) is fitted on the rest (once per fold) for its ``AUTO_DEFAULTS`` parameters and ``n_iter``
       random points of ``DEFAULT_SEARCH_SPACES[member]``; the validation users' scores of each fit are
       computed once, in the form ``Auto`` blends them (``X @ unit_scale(similarity_)``, or the iALS scores
       divided by each user's largest), and the best fit per protocol is kept in memory (for a sampled
       protocol only the scores of each user's candidates, which is all that protocol reads).
    3. The blend weights are searched by coordinate ascent over ``weight_grid`` on those cached scores
       (the best single item-item member is the anchor, weight 1), ``n_passes`` passes, keeping a change
       only when it improves the validation objective. A blend of cached scores is exactly ``Auto.fit``'s
       blend, so no refit is needed.

    The member results double as tuned baselines: ``result.members[name]`` is the tuning of that member
    alone, with the same candidates and folds (a comparable budget). Nothing here reads a test split.

    Parameters
    ----------
    train : sparse matrix (n_users, n_items)
        Training data ONLY.
    protocols : mapping
        Objective name -> number of sampled negatives per validation user, or None for full ranking.
        One search serves every objective (members are fitted once per fold).
    metric : str
        Metrics key to maximise, or a sum of keys such as ``"HR@10+NDCG@10"`` (see :func:`objective_value`).
    ks : sequence of int
    timestamps : sparse matrix, optional
        Same pattern as ``train``; selects the time-based validation split (one fold only).
    n_iter : int or None
        Random points per member search space (None: the whole grid).
    member_iter : mapping, optional
        Per-member override of ``n_iter`` (e.g. ``{"ease": 1}`` where EASE^R is slow).
    members : sequence of str, optional
        Members to consider (default: all four).
    search_spaces : mapping, optional
        Per-member search spaces (default ``DEFAULT_SEARCH_SPACES``).
    weight_grid : sequence of float
    n_passes : int
    ease_max_items : int, optional
        Largest catalogue for EASE^R (default: ``Auto``'s).
    dense_ease_max_items : int
        Up to this many items the EASE^R member keeps its dense weights (``top_k=None``); above it, the
        ``AUTO_DEFAULTS`` pruning (the top 1,000 per item) keeps the blended item-item matrix sparse.
    max_users : int, optional
        Score a random sample of this many validation users (all still train the models).
    n_folds : int
        Independent random validation carvings averaged over (1: a single split). Fitting costs grow
        linearly; so does the memory of the cached full-ranking scores (validation users x items x 4 bytes
        per member and fold).
    random_state : int
    log : callable, optional

    Returns
    -------
    dict
        Objective name -> :class:`TuningResult` with ``algorithm="auto"``, ``best_params`` ready for
        ``get_estimator("auto", **params)``, the blend trials, and ``members``. With several folds each
        trial also lists its per-fold scores under ``"folds"``.
    """
    from .hybrid import AUTO_DEFAULTS, ITEM_COMPONENTS, Auto, row_max_scaled, unit_scale
    from . import get_estimator

    train = sp.csr_matrix(train, dtype=np.float32)
    ks = _with_metric_k(ks, metric)
    n_items = train.shape[1]
    if ease_max_items is None:
        ease_max_items = Auto().ease_max_items
    names = list(members) if members is not None else [*ITEM_COMPONENTS, "ials"]
    unknown = set(names) - {*ITEM_COMPONENTS, "ials"}
    if unknown:
        raise ValueError(f"tune_auto: unknown members {sorted(unknown)}")
    if "ease" in names and n_items > ease_max_items:
        names.remove("ease")
    if not any(n in ITEM_COMPONENTS for n in names):
        raise ValueError(f"tune_auto needs at least one of {ITEM_COMPONENTS}")
    spaces = dict(DEFAULT_SEARCH_SPACES)
    spaces.update(search_spaces or {})
    carvings, rng = _validation_folds(train, timestamps, max_users, random_state, n_folds)
    folds: list[_Fold] = []
    for fit_part, valid, seed in carvings:
        valid.sort_indices()
        users = np.flatnonzero((np.diff(valid.indptr) > 0) & (np.diff(fit_part.indptr) > 0))
        row_of = np.full(train.shape[0], -1, dtype=np.int64)
        row_of[users] = np.arange(users.size)
        negatives = {
            obj: (sample_negatives(fit_part, valid, n_negatives=n_neg, random_state=seed + 1) if n_neg else None)
            for obj, n_neg in protocols.items()
        }
        columns = {obj: _candidate_columns(valid, neg, users) for obj, neg in negatives.items() if neg is not None}
        folds.append(_Fold(fit_part, valid, users, row_of, fit_part[users], negatives, columns))

    def compact(fold: _Fold, obj: str, M: NDArray) -> NDArray:
        """What objective ``obj`` reads of ``M``: everything (full ranking) or the candidates' scores."""
        cols = fold.columns.get(obj)
        if cols is None:
            return M
        out = np.take_along_axis(M, np.maximum(cols, 0), axis=1)
        out[cols < 0] = np.nan
        return out

    def measure_one(fold: _Fold, obj: str, C: NDArray) -> float:
        cols = fold.columns.get(obj)
        if cols is None:
            block = lambda rows: C[fold.row_of[rows]]  # noqa: E731
        else:
            def block(rows: NDArray[np.int64]) -> NDArray:
                # the sampled protocol reads only each user's candidates; other items may hold anything
                r = fold.row_of[rows]
                S = np.zeros((rows.size, n_items), dtype=np.float32)
                c, v = cols[r], C[r]
                keep = c >= 0
                S[np.nonzero(keep)[0], c[keep]] = v[keep]
                return S
        m, _, _ = evaluate_scores(block, fold.fit_part, fold.valid, ks=ks, negatives=fold.negatives[obj])
        return objective_value(m, metric)

    say = log or (lambda line: None)
    member_results: dict[str, dict[str, TuningResult]] = {obj: {} for obj in protocols}
    # objective -> member -> per-fold cached scores of the member's best fit (compacted for sampled objectives)
    cached: dict[str, dict[str, list[NDArray[np.float32]]]] = {obj: {} for obj in protocols}
    for name in names:
        base = dict(AUTO_DEFAULTS[name])
        if name == "ease":
            base.setdefault("max_items", int(ease_max_items))
            if n_items <= dense_ease_max_items:
                # pruning EASE^R to its top-k positive weights drops the negative ones, which matter on dense data
                # (MovieLens-1M: NDCG@10 .42 pruned vs .45 dense); a small catalogue keeps B whole
                base["top_k"] = None
        budget = (member_iter or {}).get(name, n_iter)
        candidates = [{}] + [c for c in _candidates(spaces.get(name, {}), budget, rng) if c]
        best = {obj: (-np.inf, dict(base)) for obj in protocols}
        trials = {obj: [] for obj in protocols}
        seen: set[str] = set()
        for cand in candidates:
            params = {**base, **cand}
            key = json.dumps(_jsonable(params), sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            per_fold: dict[str, list[float]] = {obj: [] for obj in protocols}
            kept: dict[str, list[NDArray]] = {obj: [] for obj in protocols}
            fit_seconds = 0.0
            for fold in folds:
                t0 = time.perf_counter()
                est = get_estimator(name, **params).fit(fold.fit_part)
                fit_seconds += time.perf_counter() - t0
                if name == "ials":
                    M = row_max_scaled(np.asarray(est.score(fold.Xv), dtype=np.float32))
                else:
                    M = np.asarray((fold.Xv @ unit_scale(est.similarity_)[0]).toarray(), dtype=np.float32)
                del est
                for obj in protocols:
                    C = compact(fold, obj, M)
                    per_fold[obj].append(measure_one(fold, obj, C))
                    kept[obj].append(C)
                del M, C
            scores = {obj: float(np.mean(v)) for obj, v in per_fold.items()}
            for obj, score in scores.items():
                trial = {"params": params, metric: score, "fit_seconds": fit_seconds}
                if len(folds) > 1:
                    trial["folds"] = per_fold[obj]
                trials[obj].append(trial)
                if np.isfinite(score) and score > best[obj][0]:
                    best[obj] = (score, params)
                    cached[obj][name] = kept[obj]
            del kept
            say(f"tune auto member {name} {params} -> "
                + ", ".join(f"{obj} {metric}={v:.4f}" for obj, v in scores.items()) + f" (fit {fit_seconds:.1f}s)")
        for obj in protocols:
            member_results[obj][name] = TuningResult(name, best[obj][1], float(best[obj][0]), metric, trials[obj])

    results: dict[str, TuningResult] = {}
    grid = [float(w) for w in weight_grid]
    for obj in protocols:
        mats = cached[obj]
        available = [n for n in names if n in mats]
        items = [n for n in available if n in ITEM_COMPONENTS]
        if not items:
            # no member scored anything finite (e.g. no usable validation user): the first item member alone
            anchor = next(n for n in names if n in ITEM_COMPONENTS)
            results[obj] = TuningResult("auto", {"weights": {anchor: 1.0}, anchor: member_results[obj][anchor].best_params},
                                        float("nan"), metric, [], members=member_results[obj])
            say(f"tune auto blend [{obj}]: no finite validation score; {anchor} alone")
            continue
        anchor = max(items, key=lambda n: member_results[obj][n].best_score)
        weights = {n: 0.0 for n in available}
        weights[anchor] = 1.0
        blend_trials: list[dict[str, Any]] = []
        memo: dict[tuple, float] = {}

        def blend_score(w: Mapping[str, float]) -> float:
            key = tuple(sorted((n, v) for n, v in w.items() if v > 0))
            if key in memo:  # coordinate ascent revisits points; their score is known
                return memo[key]
            per_fold = []
            for f, fold in enumerate(folds):
                M = None
                for n, value in w.items():
                    if value > 0:
                        part = mats[n][f] * np.float32(value)
                        M = part if M is None else M + part
                per_fold.append(measure_one(fold, obj, M))
            score = float(np.mean(per_fold))
            trial = {"weights": {n: v for n, v in w.items() if v > 0}, metric: score}
            if len(folds) > 1:
                trial["folds"] = per_fold
            blend_trials.append(trial)
            memo[key] = score
            return score

        best_score = member_results[obj][anchor].best_score
        memo[((anchor, 1.0),)] = best_score
        blend_trials.append({"weights": {anchor: 1.0}, metric: best_score})
        for _ in range(n_passes):
            improved = False
            for n in available:
                if n == anchor:
                    continue
                for value in grid:
                    if value == weights[n]:
                        continue
                    score = blend_score({**weights, n: value})
                    if np.isfinite(score) and score > best_score + 1e-9:
                        best_score, weights[n], improved = score, value, True
            say(f"tune auto blend [{obj}] weights {weights} -> {metric}={best_score:.4f}")
            if not improved:
                break
        chosen = {n: float(w) for n, w in weights.items() if w > 0}
        params: dict[str, Any] = {"weights": chosen}
        for n in chosen:
            params[n] = member_results[obj][n].best_params
        results[obj] = TuningResult("auto", params, float(best_score), metric, blend_trials, members=member_results[obj])
    return results


def tune_auto(
    train: sp.spmatrix,
    *,
    n_negatives: int | None = None,
    **kwargs: Any,
) -> TuningResult:
    """Tune ``auto`` for one protocol (sampled with ``n_negatives``, else full ranking); see :func:`tune_auto_protocols`."""
    return tune_auto_protocols(train, {"validation": n_negatives}, **kwargs)["validation"]


def save_params(path: str | os.PathLike, algorithm: str, params: Mapping[str, Any], **extra: Any) -> None:
    """Write ``{"algorithm": name, "params": {...}, ...extra}`` as JSON (what ``recommend`` loads)."""
    payload = {"algorithm": algorithm, "params": _jsonable(dict(params)), **_jsonable(extra)}
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


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
