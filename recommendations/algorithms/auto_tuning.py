"""Provides the tuning of ``auto``: its members, then its blend weights, on validation carved out of TRAIN.

1. One item per user of TRAIN is held out as validation (the latest one when timestamps are
   given, else a random one); with several folds, independent random carvings are made and
   every score is the mean over them.
2. Each member (RP3beta, ItemKNN, EASE^R when the catalogue allows it, iALS, UserKNN up to
   ``LARGE_NNZ`` interactions) is fitted on the
   rest for its fixed candidates first (its starting parameters, its registry defaults and the
   configurations of the usual baselines, :data:`BASELINE_POINTS`), then ``n_iter`` random points of
   its search space: a count, not a time, so the same data gives the same search on any machine
   (a wall-clock ``time_budget`` is only a safety net that cuts random points). The validation users' scores of each fit
   are computed once, in the form ``Auto`` blends them, and the best fit per objective is kept
   in memory (for a sampled objective only the scores of each user's candidates).
3. The blend weights and a popularity exponent (``auto_blend``) are searched by coordinate ascent over
   grids on those cached scores (past a grid's edge when the ascent stops on it),
   starting from the best of every member alone and the untuned default blend, keeping a change
   only when it improves the validation objective: the chosen blend never validates below the best
   member alone, hence below any member's registry defaults. A blend of cached scores is exactly ``Auto.fit``'s blend, so no refit
   is needed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .auto_candidates import (
    BASELINE_POINTS,
    DOT_PRODUCT_SHRINK,
    member_fixed_points,
    member_base,
    member_names,
    member_points,
    registry_point,
    tune_iterations,
)
from .auto_blend import (
    ASCENT_PASSES,
    BLEND_WEIGHT_GRID,
    IALS_ALONE_WEIGHT,
    POPULARITY_EXPONENTS,
    default_blend_weights,
    search_blend,
)
from .base import check_user_items, get_estimator
from .blend import (AUTO_DEFAULTS, EASE_MAX_ITEMS, ITEM_COMPONENTS, USER_COMPONENTS, popularity_scale, row_max_scaled,
                    unit_scale, user_scores_in_blocks)
from .blend_ranks import TOP_WIDTH_MIN, TOP_WIDTH_PER_K, blend_values, member_tops, top_column_positions
from .metrics import metrics_from_positions, tie_aware_ranks
from .products import sparse_dot_split, split_heavy_rows
from .splits import sample_negatives
from .tuning import (
    DEFAULT_SEARCH_SPACES,
    TuningResult,
    jsonable,
    objective_value,
    validation_folds,
    with_metric_k,
)

__all__ = [
    "BASELINE_POINTS",
    "BLEND_WEIGHT_GRID",
    "IALS_ALONE_WEIGHT",
    "POPULARITY_EXPONENTS",
    "default_blend_weights",
    "registry_point",
    "tune_auto",
    "tune_auto_protocols",
    "tune_iterations",
]

@dataclass
class _Fold:
    """One validation carving, with what its measurements need."""

    fit_part: sp.csr_matrix
    valid: sp.csr_matrix
    users: NDArray[np.int64]
    row_of: NDArray[np.int64]
    Xv: sp.csr_matrix
    negatives: dict[str, sp.csr_matrix | None]
    #: per sampled objective: the candidate columns of each validation user (-1 = padding)
    columns: dict[str, NDArray[np.int64]]
    #: the held-out item of each validation user (rows in ``users`` order)
    positives: NDArray[np.int64]
    #: users of each item in ``fit_part`` (what ``Auto.fit`` on it reads as ``item_popularity_``)
    counts: NDArray[np.int64]
    _scales: dict[tuple[str, float], NDArray[np.float32]] = field(default_factory=dict)

    def column_scale(self, obj: str, exponent: float) -> NDArray[np.float32]:
        """``Auto``'s popularity factor of the columns objective ``obj`` reads, ready to multiply its scores."""
        key = (obj, float(exponent))
        if key not in self._scales:
            scale = popularity_scale(self.counts, exponent)
            cols = self.columns.get(obj)
            self._scales[key] = scale[None, :] if cols is None else scale[np.maximum(cols, 0)]
        return self._scales[key]

    def compact(self, obj: str, M: NDArray) -> NDArray:
        """What objective ``obj`` reads of ``M``: every item (train items set to -inf, in place) or the candidates."""
        cols = self.columns.get(obj)
        if cols is None:
            np.nan_to_num(M, copy=False, nan=-np.inf)
            M[np.repeat(np.arange(self.Xv.shape[0]), np.diff(self.Xv.indptr)), self.Xv.indices] = -np.inf
            return M
        out = np.take_along_axis(M, np.maximum(cols, 0), axis=1)
        out[cols < 0] = np.nan
        return out

    def positions(self, obj: str, C: NDArray, block: int = 512, rows: NDArray | None = None) -> NDArray[np.float64]:
        """Tie-aware 0-based position of each validation user's held-out item in the compacted scores ``C``.

        The same ranks as ``protocols.evaluate_scores`` (rank = higher + 0.5 x tied), read from the
        cached scores directly: a blend search measures hundreds of blends. Over every item, ``C``
        may hold only the validation ``rows`` given (in their order).
        """
        cols = self.columns.get(obj)
        if cols is not None:
            rows = np.arange(self.users.size)
            pos_col = np.argmax(cols == self.positives[:, None], axis=1)
            candidates = np.array(C, dtype=np.float64)
            positive = candidates[rows, pos_col].copy()
            candidates[rows, pos_col] = np.nan  # the positive is not its own candidate
            return tie_aware_ranks(positive, candidates)
        rows = np.arange(self.users.size) if rows is None else rows
        n_train = np.diff(self.Xv.indptr)
        out = np.empty(rows.size)
        for a in range(0, rows.size, block):
            r = rows[a : a + block]
            S = C[a : a + block]
            ps = S[np.arange(r.size), self.positives[r]][:, None]
            higher = (S > ps).sum(axis=1)
            tied = (S == ps).sum(axis=1) - 1.0
            # train items are -inf and are not candidates: they must not tie with a -inf positive
            tied -= np.where(np.isneginf(ps[:, 0]), n_train[r], 0)
            out[a : a + block] = higher + 0.5 * tied
        return out

    def measure(self, obj: str, C: NDArray, ks: Sequence[int], metric: str) -> float:
        """Validation objective of the compacted scores ``C`` (one row per validation user)."""
        if self.users.size == 0:
            return float("nan")
        return self.objective(self.positions(obj, C), ks, metric)

    def objective(self, positions: NDArray[np.float64], ks: Sequence[int], metric: str) -> float:
        """Validation objective of the held-out items' ``positions`` (one per validation user)."""
        return objective_value(metrics_from_positions(positions, np.arange(self.users.size), ks), metric)


def _candidate_columns(valid: sp.csr_matrix, negatives: sp.csr_matrix, users: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per validation user (rows in ``users`` order): its negatives and positives, padded with -1."""
    cand = [np.union1d(negatives.indices[negatives.indptr[u] : negatives.indptr[u + 1]],
                       valid.indices[valid.indptr[u] : valid.indptr[u + 1]]) for u in users]
    width = max((c.size for c in cand), default=0)
    out = np.full((users.size, width), -1, dtype=np.int64)
    for r, c in enumerate(cand):
        out[r, : c.size] = c
    return out


def _make_folds(
    train: sp.csr_matrix,
    protocols: Mapping[str, int | None],
    timestamps: sp.spmatrix | None,
    max_users: int | None,
    random_state: int,
    n_folds: int,
) -> tuple[list[_Fold], np.random.Generator]:
    carvings, rng = validation_folds(train, timestamps, max_users, random_state, n_folds)
    folds = []
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
        # leave-one-out holds out one item per user: the first stored item of each validation row
        positives = valid.indices[valid.indptr[users]].astype(np.int64)
        counts = np.diff(check_user_items(fit_part).tocsc().indptr)
        folds.append(_Fold(fit_part, valid, users, row_of, fit_part[users], negatives, columns, positives, counts))
    return folds, rng


def _blend_form(name: str, est: Any, fold: _Fold, fitted_factors: bool = False) -> NDArray[np.float32]:
    """A fitted member's scores of the validation users, in the form ``Auto`` blends them.

    The same values as ``Xv @ unit_scale(similarity_)`` up to float rounding, computed the
    cheaper way: a dense EASE^R ``B`` stays dense (its sparse copy would hold every entry), and
    the nearly full rows of a kNN or graph matrix go through a dense product. iALS scores each
    history by one fresh ALS user step, or with ``fitted_factors`` by the users' fitted factors:
    what a build serves its known users, without a least-squares solve per user and candidate.
    """
    Xv = fold.Xv
    if name == "ials":
        return row_max_scaled(est.score(Xv, fold.users if fitted_factors else None))
    if name in USER_COMPONENTS:
        return user_scores_in_blocks(est, Xv, None)
    coef = getattr(est, "coef_", None)
    if isinstance(coef, np.ndarray):
        row_l1 = np.abs(coef).sum(axis=1)
        factor = float(row_l1[row_l1 > 0].mean()) if (row_l1 > 0).any() else 1.0
        return np.asarray(Xv @ coef, dtype=np.float32) / np.float32(factor)
    return sparse_dot_split(Xv, *split_heavy_rows(unit_scale(est.similarity_)[0]))


@dataclass
class _Member:
    """The search state of one member: candidates left, best per objective, trials, cached scores."""

    name: str
    candidates: list[dict[str, Any]]
    best: dict[str, tuple[float, dict[str, Any]]]
    trials: dict[str, list[dict[str, Any]]]
    seen: set[str] = field(default_factory=set)
    last_fit_seconds: float = 0.0
    n_tried: int = 0
    #: how many of ``candidates`` (the first ones) are fixed: always tried, whatever the time
    n_fixed: int = 1
    #: the starting parameters, under every other candidate
    base: dict[str, Any] = field(default_factory=dict)

    def score_of(self, obj: str, params: Mapping[str, Any], metric: str) -> float:
        """Validation score of the trial with ``params`` (NaN when it was not tried)."""
        key = json.dumps(jsonable(dict(params)), sort_keys=True)
        for trial in self.trials[obj]:
            if json.dumps(jsonable(trial["params"]), sort_keys=True) == key:
                return float(trial[metric])
        return float("nan")

    @classmethod
    def start(cls, name: str, protocols: Mapping[str, int | None], base: dict[str, Any],
              fixed: list[dict[str, Any]], points: list[dict[str, Any]]) -> _Member:
        """A member whose candidates are ``base``, its ``fixed`` points, then random ``points``, each merged over ``base``."""
        candidates = [base] + [{**base, **p} for p in fixed] + [{**base, **p} for p in points if p]
        return cls(name, candidates, {obj: (-np.inf, dict(base)) for obj in protocols}, {obj: [] for obj in protocols},
                   n_fixed=1 + len(fixed), base=dict(base))


@dataclass
class _Search:
    """What every step of one ``auto`` tuning shares."""

    folds: list[_Fold]
    protocols: Mapping[str, int | None]
    ks: Sequence[int]
    metric: str
    say: Callable[[str], None]
    #: objective -> member -> per-fold cached scores of the member's best fit
    cached: dict[str, dict[str, list[NDArray[np.float32]]]]
    #: members whose random points the safety-net time budget cut
    cut: list[str] = field(default_factory=list)
    #: score iALS by its fitted user factors (see :func:`_blend_form`)
    fitted_factors: bool = False
    #: (objective, member) -> per fold, the cached scores' top columns (``blend_ranks.member_tops``)
    tops: dict[tuple[str, str], list[tuple]] = field(default_factory=dict)

    def try_member(self, member: _Member, params: dict[str, Any]) -> None:
        """Fit ``params`` on every fold, score it for every objective, keep it where it is best."""
        per_fold: dict[str, list[float]] = {obj: [] for obj in self.protocols}
        kept: dict[str, list[NDArray]] = {obj: [] for obj in self.protocols}
        fit_seconds = 0.0
        for fold in self.folds:
            t0 = time.perf_counter()
            est = get_estimator(member.name, **params).fit(fold.fit_part)
            fit_seconds += time.perf_counter() - t0
            M = _blend_form(member.name, est, fold, self.fitted_factors)
            del est
            for obj in self.protocols:
                C = fold.compact(obj, M)
                per_fold[obj].append(fold.measure(obj, C, self.ks, self.metric))
                kept[obj].append(C)
            del M
        member.last_fit_seconds = fit_seconds
        member.n_tried += 1
        scores = {obj: float(np.mean(v)) for obj, v in per_fold.items()}
        for obj, score in scores.items():
            trial = {"params": params, self.metric: score, "fit_seconds": fit_seconds}
            if len(self.folds) > 1:
                trial["folds"] = per_fold[obj]
            member.trials[obj].append(trial)
            if np.isfinite(score) and score > member.best[obj][0]:
                member.best[obj] = (score, params)
                self.cached[obj][member.name] = kept[obj]
                self.tops.pop((obj, member.name), None)
        self.say(f"tune auto member {member.name} {params} -> "
                 + ", ".join(f"{obj} {self.metric}={v:.4f}" for obj, v in scores.items())
                 + f" (fit {fit_seconds:.1f}s)")

    def blend_score(self, obj: str, weights: Mapping[str, float], exponent: float = 0.0) -> tuple[float, list[float]]:
        """Validation objective of a blend of the cached member scores times the popularity factor (mean over folds)."""
        mats = self.cached[obj]
        names = [n for n, value in weights.items() if value > 0]
        per_fold = []
        for f, fold in enumerate(self.folds):
            terms = [(mats[n][f], weights[n]) for n in names]
            if obj in fold.columns or not fold.users.size:
                per_fold.append(fold.measure(obj, _blend(terms, fold, obj, exponent), self.ks, self.metric))
                continue
            # Over every item, most rows are settled by the members' top columns (``blend_ranks``); the rest in full.
            tops = [self.member_tops(obj, n, f) for n in names]
            scale = fold.column_scale(obj, exponent)[0] if exponent else None
            positions = top_column_positions(terms, tops, fold.positives, scale, max(self.ks))
            rest = np.flatnonzero(np.isnan(positions))
            if rest.size:
                block = _blend([(M[rest], value) for M, value in terms], fold, obj, exponent)
                positions[rest] = fold.positions(obj, block, rows=rest)
            per_fold.append(fold.objective(positions, self.ks, self.metric))
        return float(np.mean(per_fold)), per_fold

    def member_tops(self, obj: str, name: str, f: int) -> tuple:
        """Member ``name``'s top columns on fold ``f`` (computed once per cached fit)."""
        if (obj, name) not in self.tops:
            width = max(TOP_WIDTH_PER_K * max(self.ks), TOP_WIDTH_MIN)
            self.tops[(obj, name)] = [member_tops(C, width) for C in self.cached[obj][name]]
        return self.tops[(obj, name)][f]


def _blend(terms: list[tuple[NDArray, float]], fold: _Fold, obj: str, exponent: float) -> NDArray[np.float32]:
    """The blend of ``terms`` (scores, weight) times the popularity factor, as ``Auto`` computes it."""
    M = blend_values(terms)
    if exponent:
        M *= fold.column_scale(obj, exponent)
    return M


def _search_members(search: _Search, members: list[_Member], deadline: float | None) -> None:
    """Try each member's candidates, one of each member in turn (in a fixed order), until they run out.

    Every member's fixed candidates (start, registry defaults, baselines) are always tried. The
    random points after them are a fixed count too; ``deadline`` is only a safety net: once a
    further fit as long as the member's last one would pass it, that member's random points stop
    (and the search then depends on the machine's speed; ``tuning_`` says so).
    """
    position = {id(m): 0 for m in members}
    while True:
        progressed = False
        for member in members:
            while member.candidates:
                params = member.candidates.pop(0)
                fixed = position[id(member)] < member.n_fixed
                position[id(member)] += 1
                key = json.dumps(jsonable(params), sort_keys=True)
                if key not in member.seen:
                    break
            else:
                continue
            member.seen.add(key)
            if not fixed and deadline is not None and time.perf_counter() + member.last_fit_seconds > deadline:
                member.candidates.clear()
                search.cut.append(member.name)
                search.say(f"tune auto member {member.name}: safety-net time budget reached after "
                           f"{member.n_tried} candidates")
                continue
            search.try_member(member, params)
            progressed = True
        if not progressed:
            return


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
    n_passes: int = ASCENT_PASSES,
    ease_max_items: int | None = None,
    dense_ease_max_items: int = 5000,
    max_users: int | None = None,
    n_folds: int = 1,
    random_state: int = 0,
    start_params: Mapping[str, Mapping[str, Any]] | None = None,
    time_budget: float | None = None,
    fixed_points: bool = True,
    ials_fitted_factors: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, TuningResult]:
    """Tune ``auto`` on validation carved out of ``train`` (TRAIN only): its members, then its blend weights.

    See the module docstring for the steps. ``protocols`` maps an objective name to the sampled negatives
    per validation user, or None for full ranking; one search serves them all. The search starts each
    member at ``start_params`` (default ``AUTO_DEFAULTS``), then tries its fixed points (with
    ``fixed_points``: :func:`registry_point` and :data:`BASELINE_POINTS`), then ``n_iter``
    (``member_iter[name]``; EASE^R above ``dense_ease_max_items`` items: 0) random points of
    ``search_spaces`` (default ``DEFAULT_SEARCH_SPACES``). ``time_budget`` seconds only cut random points.
    ``max_users`` validation users are scored (users x items x 4 bytes per member and fold). Up to
    ``dense_ease_max_items`` items EASE^R keeps its dense weights. ``ials_fitted_factors`` scores iALS
    by its fitted user factors instead of a fresh ALS user step.

    Returns a dict: objective name -> :class:`TuningResult` with ``algorithm="auto"``, ``best_params`` ready
    for ``get_estimator("auto", **params)``, the blend trials, ``members`` (each member tuned alone) and
    ``extra`` (registry-defaults validation scores, the members the safety net cut, the number of fits).
    """
    deadline = None if time_budget is None else time.perf_counter() + float(time_budget)
    train = sp.csr_matrix(train, dtype=np.float32)
    ks = with_metric_k(ks, metric)
    n_items = train.shape[1]
    ease_max_items = EASE_MAX_ITEMS if ease_max_items is None else int(ease_max_items)
    names = member_names(members, n_items, ease_max_items, train.nnz)
    spaces = {**DEFAULT_SEARCH_SPACES, **(search_spaces or {})}
    folds, rng = _make_folds(train, protocols, timestamps, max_users, random_state, n_folds)
    search = _Search(folds, protocols, ks, metric, log or (lambda line: None), {obj: {} for obj in protocols},
                     fitted_factors=bool(ials_fitted_factors))
    state = []
    for name in names:
        base = member_base(name, n_items, ease_max_items, dense_ease_max_items, (start_params or {}).get(name))
        fixed = member_fixed_points(name, n_items, dense_ease_max_items) if fixed_points else []
        iters = (member_iter or {}).get(name, n_iter if name != "ease" or n_items <= dense_ease_max_items else 0)
        state.append(_Member.start(name, protocols, base, fixed, member_points(name, spaces.get(name, {}), iters, rng)))
    _search_members(search, state, deadline)
    scored_defaults = [m for m in state if m.name != "ease" or n_items <= dense_ease_max_items]
    return {obj: _blend_result(search, obj, state, scored_defaults, weight_grid, n_passes) for obj in protocols}


def _blend_result(search: _Search, obj: str, state: list[_Member], scored_defaults: list[_Member],
                  weight_grid: Sequence[float], n_passes: int) -> TuningResult:
    """Search the blend for objective ``obj`` from the tuned members; record what the search did in ``extra``."""
    metric = search.metric
    members_done = {m.name: TuningResult(m.name, m.best[obj][1], float(m.best[obj][0]), metric, m.trials[obj])
                    for m in state}
    result = search_blend(search, obj, [m.name for m in state], members_done, weight_grid, n_passes)
    result.extra = {
        "default_scores": {m.name: m.score_of(obj, {**m.base, **registry_point(m.name)}, metric)
                           for m in scored_defaults},
        "budget_cut": list(search.cut),
        "fits": sum(m.n_tried for m in state) * len(search.folds),
    }
    return result


def tune_auto(
    train: sp.spmatrix,
    *,
    n_negatives: int | None = None,
    **kwargs: Any,
) -> TuningResult:
    """Tune ``auto`` for one protocol (sampled with ``n_negatives``, else full ranking).

    See :func:`tune_auto_protocols` for the other arguments.
    """
    return tune_auto_protocols(train, {"validation": n_negatives}, **kwargs)["validation"]
