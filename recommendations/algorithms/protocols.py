"""Provides the evaluation protocols: sampled and full ranking of held-out items, for any scorer."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .metrics import metrics_from_positions, tie_aware_ranks
from .topk import topk_dense_rows

__all__ = ["EvaluationResult", "evaluate", "evaluate_scores"]


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
    negatives : csr_matrix, optional
        Sampled protocol when given: each positive is ranked against its user's negatives and
        other test positives. Without it, full ranking: against every item not in train.

    Returns
    -------
    metrics : dict
        ``HR@k``, ``NDCG@k``, ``Recall@k``, ``Precision@k``, ``MAP@k`` and ``Coverage@k`` (share of
        the catalogue in at least one evaluated user's top-k, train items excluded).
    n_users, n_skipped : int
        Users evaluated; test users skipped because they have no train data.
    """
    train, test = _sorted_csr(train), _sorted_csr(test)
    n_items = train.shape[1]
    test_users = np.flatnonzero(np.diff(test.indptr) > 0)
    has_train = np.diff(train.indptr)[test_users] > 0
    skipped = int((~has_train).sum())
    test_users = test_users[has_train]
    negatives = None if negatives is None else _sorted_csr(negatives)
    all_pos: list[NDArray] = []
    all_user: list[NDArray] = []
    covered = {k: np.zeros(n_items, dtype=bool) for k in ks}
    for start in range(0, test_users.size, batch_size):
        block = test_users[start : start + batch_size]
        S = np.array(score_block(block), dtype=np.float64, copy=True)
        if S.shape != (block.size, n_items):
            raise ValueError(f"score() returned shape {S.shape}, expected {(block.size, n_items)}")
        _mask_train(S, train[block])
        _mark_coverage(S, covered)
        Tb = test[block]
        t_rows = np.repeat(np.arange(block.size), np.diff(Tb.indptr))
        if negatives is None:
            positions = _full_ranking_positions(S, train[block], t_rows, Tb.indices)
        else:
            positions = _sampled_positions(S, negatives[block], Tb, t_rows)
        all_pos.append(positions)
        all_user.append(block[t_rows])
    positions = np.concatenate(all_pos) if all_pos else np.zeros(0)
    users = np.concatenate(all_user) if all_user else np.zeros(0, dtype=np.int64)
    metrics = metrics_from_positions(positions, users, ks)
    for k in ks:
        metrics[f"Coverage@{k}"] = float(covered[k].sum() / n_items) if n_items else float("nan")
    return metrics, int(test_users.size), skipped


def _sorted_csr(M: sp.spmatrix) -> sp.csr_matrix:
    M = sp.csr_matrix(M)
    M.sort_indices()
    return M


def _mark_coverage(S: NDArray, covered: dict[int, NDArray[np.bool_]]) -> None:
    """Mark the items in each row's finite top-k, for every k of ``covered`` (train items are -inf)."""
    top, top_scores = topk_dense_rows(S, max(covered), ties="partition")
    for k, seen in covered.items():
        seen[top[:, :k][np.isfinite(top_scores[:, :k])]] = True


def _full_ranking_positions(
    S: NDArray, train_rows: sp.csr_matrix, t_rows: NDArray[np.int64], t_items: NDArray
) -> NDArray[np.float64]:
    """Tie-aware position of each test positive against every item not in its user's train data."""
    pos_scores = S[t_rows, t_items]
    n_train = np.diff(train_rows.indptr)[t_rows]
    higher = np.empty(t_rows.size)
    tied = np.empty(t_rows.size)
    for a in range(0, t_rows.size, 256):
        b = slice(a, a + 256)
        rows_s = S[t_rows[b]]
        ps = pos_scores[b][:, None]
        higher[b] = (rows_s > ps).sum(axis=1)
        tied[b] = (rows_s == ps).sum(axis=1) - 1
    # Train items are -inf and are not candidates: they must not count as ties of a -inf positive.
    in_train = np.asarray(train_rows[t_rows, t_items] != 0).ravel().astype(np.int64)
    minus_inf = np.isneginf(pos_scores)
    tied[minus_inf] -= (n_train - in_train)[minus_inf]
    return higher + 0.5 * tied


def _sampled_positions(
    S: NDArray, negative_rows: sp.csr_matrix, test_rows: sp.csr_matrix, t_rows: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Tie-aware position of each test positive among its user's negatives and other positives."""
    t_items = test_rows.indices
    cand_lists = [
        np.union1d(
            negative_rows.indices[negative_rows.indptr[r] : negative_rows.indptr[r + 1]],
            test_rows.indices[test_rows.indptr[r] : test_rows.indptr[r + 1]],
        )
        for r in range(S.shape[0])
    ]
    width = max((c.size for c in cand_lists), default=0)
    C = np.full((S.shape[0], width), np.nan)
    cand_items = np.full((S.shape[0], width), -1, dtype=np.int64)
    for r, c in enumerate(cand_lists):
        C[r, : c.size] = S[r, c]
        cand_items[r, : c.size] = c
    CS = C[t_rows]
    CS[cand_items[t_rows] == t_items[:, None]] = np.nan  # the positive is not its own candidate
    return tie_aware_ranks(S[t_rows, t_items], CS)


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
