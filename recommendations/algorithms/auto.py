"""Provides Auto, the production default: a blend of item-item models and iALS that tunes itself on its data."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .auto_candidates import LARGE_NNZ, is_large
from .auto_tuning import tune_auto, tune_iterations
from .base import ItemSimilarityRecommender, RecommenderBase, get_estimator
from .blend import (AUTO_DEFAULTS, EASE_MAX_ITEMS, ITEM_COMPONENTS, USER_COMPONENTS, content_similarity,
                    popularity_scale, unit_scale, user_scores_in_blocks)
from .blocks import n_threads_to_use
from .products import sparse_matmul
from .tuning import jsonable

__all__ = ["Auto", "MIN_TUNING_USERS", "MIN_VALIDATION_USERS", "VALIDATION_CELLS", "tune_folds_for", "validation_users"]

#: Below this many users with at least two interactions, validation is too thin to choose on:
#: ``Auto`` keeps its untuned defaults.
MIN_TUNING_USERS = 20

#: ``tune_users="auto"`` scores as many validation users as keep one member's cached full-ranking
#: scores within this many cells (4 bytes each), and never fewer than ``MIN_VALIDATION_USERS``.
VALIDATION_CELLS = 50_000_000
MIN_VALIDATION_USERS = 2000


def validation_users(n_items: int) -> int:
    """Validation users ``tune_users="auto"`` scores on a catalogue of ``n_items`` items."""
    return max(MIN_VALIDATION_USERS, VALIDATION_CELLS // max(int(n_items), 1))


def _active_columns(
    X: sp.csr_matrix, timestamps: sp.csr_matrix | None
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """``X`` (and its timestamps) without the items nobody interacted with.

    Tuning sees only these columns, so a catalogue's cold items (or the test-only items ``evaluate`` indexes)
    cannot change what it chooses; every member scores an empty column alike anyway.
    """
    active = np.flatnonzero(np.bincount(X.indices[X.data != 0], minlength=X.shape[1]))
    if len(active) == X.shape[1]:
        return X, timestamps
    return sp.csr_matrix(X[:, active]), None if timestamps is None else sp.csr_matrix(timestamps[:, active])


#: ``tune_folds="auto"`` averages 3 random carvings where one is noisy and the fits are cheap: up to
#: ``LARGE_NNZ`` interactions (the full search's range) and while one carving validates fewer than
#: ``FOLDS_MAX_USERS`` users, since one held-out item per user leaves noise as large as the
#: differences tuning must resolve.
FOLDS_MAX_NNZ = LARGE_NNZ
FOLDS_MAX_USERS = 10_000


def tune_folds_for(nnz: int, n_validation_users: int = 0) -> int:
    """Validation folds ``tune_folds="auto"`` averages over (random split) for ``nnz`` interactions and
    ``n_validation_users`` users scored per carving."""
    return 3 if nnz <= FOLDS_MAX_NNZ and n_validation_users < FOLDS_MAX_USERS else 1


class Auto(ItemSimilarityRecommender):
    """The production default: a weighted blend of item-item models plus optional iALS and UserKNN terms.

    ``score(X) = X @ similarity_ + weights["ials"] * rownorm(U(X) @ item_factors.T)
    + weights["userknn"] * rownorm(UserKNN(X))`` where
    ``similarity_ = sum_m weights[m] * unit_scale(W_m)`` over RP3beta, ItemKNN and EASE^R
    (each scaled to mean row L1 norm 1), plus ``content_weight`` times the content similarity
    when item texts are given to ``fit``; ``rownorm`` divides each user's iALS scores by their
    (and UserKNN's) largest absolute value. With no iALS or UserKNN weight the model is purely item-based
    (``item_based`` is True) and the Django app can refresh a user's picks as
    ``row @ similarity_``; otherwise ``similarity_`` is absent and ``recommend(user_index, row)``
    adds the per-user terms (one small least-squares solve for a changed history). ``explain``
    uses the item-item part only. Above ``ease_max_items`` items EASE^R is
    skipped and its weight moves to ItemKNN, so big catalogues get RP3beta + ItemKNN.

    By default (``tune=None`` and no ``weights``) ``fit`` first tunes the model on the data it
    is given: it holds out each user's latest interaction (``timestamps`` given to ``fit``) or
    one random interaction, fits each member's fixed candidates (its start, its registry defaults
    and the usual baselines' configurations) and a number of random points that follows the
    data's size, then searches the blend weights, chooses on that validation only, and fits the
    chosen blend on all the data (see :func:`~.auto_tuning.tune_auto_protocols`). Tuning sees only the
    items someone interacted with, so cold items cannot change the choice. The search is
    a count of fits, so the same data gives the same model on any machine. ``tuning_`` records
    what was chosen and why.

    Parameters
    ----------
    rp3beta, itemknn, ease, ials, userknn : dict or None
        Parameters of each component (None: the defaults in ``AUTO_DEFAULTS``).
    weights : dict or None
        Blend weight per component name; 0 or missing skips the component.
    ease_max_items : int
        Largest catalogue for which EASE^R is used.
    content_weight : float
        Weight of the content similarity (only when texts or a similarity are given to fit).
    content_params : dict or None
    popularity_exponent : float
        Every score of item i is multiplied by ``max(n_i, 1) ** -popularity_exponent`` (``n_i``: the users
        who have i), folded into the columns of ``item_similarity_``: a positive exponent discounts
        popular items across the whole blend. Tuning chooses it on validation (0 when untuned).
    random_state : int or None
        Seed of the iALS component when its params give none.
    n_threads : int
        0 (all cores) or more than 1: fit the iALS component in a second thread while this one
        fits the item-item components (both release the GIL). 1: one after the other. The
        result is the same either way.
    tune : bool or None
        Tune on a validation split of the training data in ``fit``. None: tune unless ``weights``
        is given (a configuration chosen elsewhere, e.g. a parameters file, is used as it is).
    tune_budget : float or None
        A safety net in seconds, not the budget: past it, members stop trying random points (their
        fixed candidates are always tried). The search is bounded by ``tune_iter``; the default
        net is meant never to be reached on the benchmark data sets (docs/decisions.md).
    tune_users : int, "auto" or None
        Validation users scored (a random sample; all users still train the members). "auto":
        :func:`validation_users` of the catalogue; None: every user.
    tune_iter : int or "auto"
        Random points of each member's search space tried after its fixed candidates. "auto":
        :func:`~.auto_tuning.tune_iterations` of the number of interactions (3 up to
        ``LARGE_NNZ`` = 300,000, none above; there iALS is also validated with its fitted user factors).
    tune_folds : int or "auto"
        Independent random validation carvings averaged over (1 with timestamps). "auto":
        :func:`tune_folds_for` (3 up to ``FOLDS_MAX_NNZ`` = 300,000 interactions while one carving
        validates fewer than ``FOLDS_MAX_USERS`` = 10,000 users, else 1).
    tune_metric : str
        Validation objective, e.g. ``"NDCG@10"`` or ``"HR@10+NDCG@10"``.
    tune_negatives : int or None
        The validation protocol: None ranks each held-out item against every item (what
        ``recommend`` and builds serve); n ranks it against n sampled negatives, to tune for the
        sampled protocol (``evaluate --negatives`` sets it), which rewards other blends.

    Attributes
    ----------
    item_similarity_ : csr_matrix float32, shape (n_items, n_items)
        The item-item part, always present after fit (popularity factor included). ``similarity_`` is its
        old name and exists only when there is no iALS term (``item_based``).
    factor_model_ : IALS or None
        The fitted iALS component.
    user_model_ : UserKNN or None
        The fitted UserKNN component (it keeps the weighted training matrix).
    column_scale_ : ndarray float32, shape (n_items,), or None
        The popularity factor of each item (None when ``popularity_exponent`` is 0).
    components_ : ndarray of str
        The components actually blended.
    effective_weights_ : ndarray float32
        Their weights after any fallback.
    tuning_ : dict
        ``{"tuned": bool, ...}``: when tuned, the validation used, the chosen ``params``, the
        validation score of each member (``member_scores``) and of the ``blend``, the candidates
        tried per member and the tuning ``seconds``; otherwise the ``reason``.
    """

    algorithm_name = "auto"

    _state_attributes = RecommenderBase._state_attributes + (
        "item_similarity_",
        "components_",
        "effective_weights_",
        "factor_model_",
        "user_model_",
        "column_scale_",
    )

    def __init__(
        self,
        rp3beta: dict[str, Any] | None = None,
        itemknn: dict[str, Any] | None = None,
        ease: dict[str, Any] | None = None,
        ials: dict[str, Any] | None = None,
        userknn: dict[str, Any] | None = None,
        weights: dict[str, float] | None = None,
        ease_max_items: int = EASE_MAX_ITEMS,
        content_weight: float = 0.0,
        content_params: dict[str, Any] | None = None,
        popularity_exponent: float = 0.0,
        random_state: int | None = None,
        n_threads: int = 0,
        tune: bool | None = None,
        tune_budget: float | None = 1800.0,
        tune_users: int | str | None = "auto",
        tune_iter: int | str = "auto",
        tune_folds: int | str = "auto",
        tune_metric: str = "NDCG@10",
        tune_negatives: int | None = None,
    ) -> None:
        self.rp3beta = rp3beta
        self.itemknn = itemknn
        self.ease = ease
        self.ials = ials
        self.userknn = userknn
        self.weights = weights
        self.ease_max_items = ease_max_items
        self.content_weight = content_weight
        self.content_params = content_params
        self.popularity_exponent = popularity_exponent
        self.random_state = random_state
        self.n_threads = n_threads
        self.tune = tune
        self.tune_budget = tune_budget
        self.tune_users = tune_users
        self.tune_iter = tune_iter
        self.tune_folds = tune_folds
        self.tune_metric = tune_metric
        self.tune_negatives = tune_negatives

    @property
    def item_based(self) -> bool:  # type: ignore[override]
        return getattr(self, "factor_model_", None) is None and getattr(self, "user_model_", None) is None

    @property
    def item_similarity_(self) -> sp.csr_matrix:
        """The item-item part of the blend: the attribute to read (``similarity_`` is its old name)."""
        try:
            return self._item_similarity
        except AttributeError:
            raise AttributeError("item_similarity_ (Auto is not fitted yet)") from None

    @item_similarity_.setter
    def item_similarity_(self, value: sp.spmatrix) -> None:
        self._item_similarity = sp.csr_matrix(value, dtype=np.float32)

    @property
    def similarity_(self) -> sp.csr_matrix:
        """Old name of ``item_similarity_``, present only when the model is purely item-based.

        With an iALS term ``X @ similarity_`` would not be the score, so the attribute is then
        absent (``getattr(model, "similarity_", None)`` is None).
        """
        if not self.item_based or getattr(self, "_item_similarity", None) is None:
            raise AttributeError("similarity_ (Auto with an iALS term is not purely item-item; see item_similarity_)")
        return self._item_similarity

    @similarity_.setter
    def similarity_(self, value: sp.spmatrix) -> None:
        self.item_similarity_ = value

    def _item_weights(self) -> sp.csr_matrix:
        return self.item_similarity_

    def component_weights(self, n_items: int, config: dict[str, Any] | None = None) -> dict[str, float]:
        """Weights actually used for a catalogue of ``n_items`` (after the EASE fallback).

        ``config`` is a chosen configuration (``tuning_["params"]``); default: the parameters.
        """
        given = (config or {}).get("weights", self.weights)
        weights = dict(AUTO_DEFAULTS["weights"] if given is None else given)
        unknown = set(weights) - {*ITEM_COMPONENTS, *USER_COMPONENTS}
        if unknown:
            raise ValueError(f"Auto weights has unknown components {sorted(unknown)}")
        if float(weights.get("ease", 0)) > 0 and n_items > int(self.ease_max_items):
            weights["itemknn"] = float(weights.get("itemknn", 0.0)) + float(weights.pop("ease"))
        return {name: float(w) for name, w in weights.items() if float(w) > 0}

    def _component_params(self, name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        params = (config or {}).get(name, getattr(self, name))
        return dict(AUTO_DEFAULTS[name] if params is None else params)

    def _tunes(self) -> bool:
        return self.weights is None if self.tune is None else bool(self.tune)

    def _tune(self, X: sp.csr_matrix, timestamps: sp.spmatrix | None) -> dict[str, Any]:
        """Choose member parameters and blend weights on validation carved out of ``X``."""
        splittable = int((np.diff(X.indptr) >= 2).sum())
        if splittable < MIN_TUNING_USERS:
            return {"tuned": False, "reason": f"{splittable} users with 2+ interactions "
                                              f"(tuning needs {MIN_TUNING_USERS})"}
        # Members left at None start from AUTO_DEFAULTS inside the tuner, which keeps EASE^R's
        # weights dense on small catalogues (pruning drops its negative weights).
        given = {name: getattr(self, name) for name in (*ITEM_COMPONENTS, *USER_COMPONENTS)}
        start = {name: dict(params) for name, params in given.items() if params is not None}
        if "ials" in start:
            start["ials"].setdefault("random_state", self.random_state)
        if timestamps is not None:
            # the same pattern as X: pairs dropped from X (a zero weight) drop their time too
            rows, cols = X.nonzero()
            times = np.asarray(sp.csr_matrix(timestamps)[rows, cols], dtype=np.float64).ravel()
            timestamps = sp.csr_matrix((times, X.indices.copy(), X.indptr.copy()), shape=X.shape)
        X, timestamps = _active_columns(X, timestamps)
        n_iter = tune_iterations(X.nnz) if self.tune_iter == "auto" else int(self.tune_iter)
        max_users = validation_users(X.shape[1]) if self.tune_users == "auto" else self.tune_users
        folds = 1 if timestamps is not None else (
            tune_folds_for(X.nnz, min(splittable, max_users or splittable)) if self.tune_folds == "auto"
            else int(self.tune_folds))
        started = time.perf_counter()
        result = tune_auto(
            X, metric=self.tune_metric, ks=(10,), timestamps=timestamps, n_iter=n_iter,
            ease_max_items=int(self.ease_max_items), n_negatives=self.tune_negatives,
            max_users=max_users,
            n_folds=folds, random_state=0 if self.random_state is None else int(self.random_state),
            start_params=start, time_budget=None if self.tune_budget is None else float(self.tune_budget),
            ials_fitted_factors=is_large(X.nnz),
        )
        return {
            "tuned": True,
            "validation": "latest interaction per user" if timestamps is not None else "random leave-one-out",
            "items": X.shape[1],
            "folds": folds,
            "metric": self.tune_metric,
            "protocol": "full ranking" if not self.tune_negatives else f"{int(self.tune_negatives)} sampled negatives",
            "params": result.best_params,
            "blend": result.best_score,
            "member_scores": {name: r.best_score for name, r in result.members.items()},
            "default_scores": result.extra.get("default_scores", {}),
            "candidates": {name: len(r.trials) for name, r in result.members.items()},
            "random_points": n_iter,
            "fits": result.extra.get("fits"),
            "budget_cut": result.extra.get("budget_cut", []),
            "budget_seconds": None if self.tune_budget is None else float(self.tune_budget),
            "seconds": time.perf_counter() - started,
        }

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str] | None = None,
        item_similarity: sp.spmatrix | None = None,
        timestamps: sp.spmatrix | None = None,
    ) -> Auto:
        """Tune (see ``tune``), fit every component with a positive weight and blend them; return ``self``.

        Parameters
        ----------
        user_items : csr_matrix, shape (n_users, n_items)
        item_texts : sequence of str, optional
            One text per item for the content part (with ``content_weight`` > 0).
        item_similarity : sparse (n_items, n_items), optional
            A precomputed content similarity (used instead of ``item_texts``).
        timestamps : sparse (n_users, n_items), optional
            Same pattern as ``user_items``: the time of each pair (see
            ``splits.last_timestamp_matrix``); tuning then holds out each user's latest item.
        """
        X = self._fit_common(user_items)
        if self._tunes():
            self.tuning_ = self._tune(X, timestamps)
        else:
            self.tuning_ = {"tuned": False, "reason": "tune=False" if self.tune is False else "weights given"}
        config = self.tuning_.get("params")
        weights = self.component_weights(self.n_items_, config)
        if not any(name in weights for name in ITEM_COMPONENTS):
            raise ValueError(f"Auto needs a positive weight for at least one of {ITEM_COMPONENTS}")
        self.item_similarity_, factor_model = self._fit_components(
            X, weights, config, content_similarity(self.n_items_, item_texts, item_similarity, self.content_params)
        )
        exponent = float((config or {}).get("popularity_exponent", self.popularity_exponent))
        self.column_scale_ = popularity_scale(self.item_popularity_, exponent) if exponent else None
        if self.column_scale_ is not None:
            # the factor on the columns keeps the item part a plain item-item matrix (row @ similarity_)
            scaled = sp.csr_matrix(self.item_similarity_.multiply(self.column_scale_[None, :]), dtype=np.float32)
            scaled.sort_indices()
            self.item_similarity_ = scaled
        self.factor_model_ = factor_model
        self.user_model_ = (get_estimator("userknn", **self._component_params("userknn", config)).fit(X)
                            if "userknn" in weights else None)
        self.components_ = np.array(list(weights), dtype=str)
        self.effective_weights_ = np.array(list(weights.values()), dtype=np.float32)
        return self

    def _fit_components(
        self, X: sp.csr_matrix, weights: dict[str, float], config: dict[str, Any] | None,
        content: sp.csr_matrix | None,
    ) -> tuple[sp.csr_matrix, Any]:
        """The blended item-item matrix and the fitted iALS member (or None)."""
        scaled: dict[str, sp.csr_matrix] = {}

        def fit_member(name: str) -> None:
            params = self._component_params(name, config)
            if name == "ease":
                params.setdefault("max_items", int(self.ease_max_items))
            scaled[name] = unit_scale(get_estimator(name, **params).fit(X).similarity_)[0]

        # EASE^R's dense BLAS runs before the iALS thread starts: two BLAS calls at once can
        # split their work differently, and the model must not depend on timing.
        if "ease" in weights:
            fit_member("ease")
        factor_model, factor_fit = None, None
        # Leaving the executor waits for the iALS fit, also when an item-item component failed.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bre-auto-ials") as pool:
            if "ials" in weights:
                params = self._component_params("ials", config)
                params.setdefault("random_state", self.random_state)
                factor_model = get_estimator("ials", **params)
                if n_threads_to_use(self.n_threads) > 1:
                    factor_fit = pool.submit(factor_model.fit, X)
            blended = sp.csr_matrix((self.n_items_, self.n_items_), dtype=np.float32)
            for name in ITEM_COMPONENTS:
                if name in weights:
                    if name not in scaled:
                        fit_member(name)
                    blended = blended + np.float32(weights[name]) * scaled.pop(name)
            if content is not None and float(self.content_weight) > 0:
                blended = blended + np.float32(self.content_weight) * unit_scale(content)[0]
        blended = sp.csr_matrix(blended, dtype=np.float32)
        blended.sort_indices()
        if factor_model is not None:
            factor_model = factor_fit.result() if factor_fit is not None else factor_model.fit(X)
        return blended, factor_model

    def _set_state(self, state: dict[str, Any]) -> None:
        tuning = state.pop("tuning_json", None)
        super()._set_state(state)
        for name in ("factor_model_", "user_model_", "column_scale_"):
            if name not in state:
                setattr(self, name, None)
        self.tuning_ = json.loads(tuning) if tuning is not None else {"tuned": False, "reason": "not recorded"}

    def _get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in super()._get_state().items() if v is not None}
        if getattr(self, "tuning_", None) is not None:
            state["tuning_json"] = json.dumps(jsonable(self.tuning_))
        return state

    def _weight_of(self, name: str) -> float:
        weights = dict(zip(self.components_.tolist(), self.effective_weights_.tolist()))
        return float(weights.get(name, 0.0))

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        scores = sparse_matmul(X, self.item_similarity_).toarray()
        scale = getattr(self, "column_scale_", None)
        for name, model in (("ials", self.factor_model_), ("userknn", getattr(self, "user_model_", None))):
            if model is not None:
                part = np.float32(self._weight_of(name)) * user_scores_in_blocks(model, X, users)
                scores += part if scale is None else part * scale[None, :]
        return scores

    def _topn_block(self, X, users, n, exclude_seen):
        if not self.item_based:
            return RecommenderBase._topn_block(self, X, users, n, exclude_seen)
        return super()._topn_block(X, users, n, exclude_seen)
