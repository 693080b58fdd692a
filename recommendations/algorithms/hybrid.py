"""Provides Hybrid (collaborative + content blend, cold users and items) and Auto (the production default)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import ItemSimilarityRecommender, RecommenderBase, get_estimator, n_threads_to_use, sparse_matmul
from .content import ContentSimilarity

__all__ = ["Hybrid", "Auto", "AUTO_DEFAULTS", "unit_scale", "row_max_scaled"]


def row_max_scaled(scores: NDArray) -> NDArray:
    """Divide each row of a dense score block by its largest absolute value (empty rows stay 0).

    How a per-user score (iALS, content) joins a blend: its best item scores 1 for every user.
    """
    scale = np.abs(scores).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    return scores / scale


def unit_scale(W: sp.spmatrix) -> tuple[sp.csr_matrix, float]:
    """Scale an item-item matrix so its non-empty rows have mean L1 norm 1.

    Blending then weighs models, not their arbitrary units; the ranking of a single model
    is unchanged.

    Returns
    -------
    scaled : csr_matrix float32
    factor : float
        The divisor used.
    """
    W = sp.csr_matrix(W, dtype=np.float32)
    row_l1 = np.asarray(abs(W).sum(axis=1)).ravel()
    nonempty = row_l1 > 0
    factor = float(row_l1[nonempty].mean()) if nonempty.any() else 1.0
    return sp.csr_matrix(W / np.float32(factor), dtype=np.float32), factor


def _content_similarity(
    n_items: int,
    item_texts: Sequence[str] | None,
    item_similarity: sp.spmatrix | None,
    content_params: dict[str, Any] | None,
) -> sp.csr_matrix | None:
    if item_similarity is not None:
        S = sp.csr_matrix(item_similarity, dtype=np.float32)
    elif item_texts is not None:
        S = ContentSimilarity(**(content_params or {})).fit(item_texts).similarity_
    else:
        return None
    if S.shape != (n_items, n_items):
        raise ValueError(f"content similarity has shape {S.shape}, expected ({n_items}, {n_items})")
    return S


class Hybrid(RecommenderBase):
    """Blend of a collaborative model and content similarity.

    ``score = scale(collaborative) + content_weight * X @ scale(content_similarity)``.
    Cold items (no interactions) are reached through the content part; cold users (empty
    history) get item popularity. When the collaborative model is item-based the blend is one
    item-item matrix, ``similarity_``.

    Parameters
    ----------
    collaborative : str
        Registry name of the collaborative model.
    collaborative_params : dict or None
    content_weight : float
        Weight of the content part (0 disables it).
    content_params : dict or None
        :class:`ContentSimilarity` parameters when texts are given to ``fit``.
    random_state : int or None
        Passed to the collaborative model if it takes one.

    Attributes
    ----------
    similarity_ : csr_matrix (item-based collaborative model only)
    collaborative_ : RecommenderBase (other models)
    content_similarity_ : csr_matrix or None (other models)
    """

    algorithm_name = "hybrid"

    _state_attributes = RecommenderBase._state_attributes + (
        "similarity_",
        "collaborative_",
        "content_similarity_",
    )

    def __init__(
        self,
        collaborative: str = "rp3beta",
        collaborative_params: dict[str, Any] | None = None,
        content_weight: float = 0.3,
        content_params: dict[str, Any] | None = None,
        random_state: int | None = None,
    ) -> None:
        self.collaborative = collaborative
        self.collaborative_params = collaborative_params
        self.content_weight = content_weight
        self.content_params = content_params
        self.random_state = random_state

    @property
    def item_based(self) -> bool:  # type: ignore[override]
        return getattr(self, "similarity_", None) is not None

    @property
    def item_similarity_(self) -> sp.csr_matrix | None:
        """The blended item-item matrix (None when the collaborative model is not item-based)."""
        return self.similarity_

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str] | None = None,
        item_similarity: sp.spmatrix | None = None,
    ) -> Hybrid:
        """Fit the collaborative part and blend in content; return ``self``.

        Parameters
        ----------
        user_items : csr_matrix, shape (n_users, n_items)
        item_texts : sequence of str, optional
            One text per item (column order) for the content part.
        item_similarity : sparse (n_items, n_items), optional
            A precomputed content similarity (used instead of ``item_texts``).
        """
        X = self._fit_common(user_items)
        params = dict(self.collaborative_params or {})
        model = get_estimator(self.collaborative, **params)
        if "random_state" in model.get_params() and "random_state" not in params:
            model.set_params(random_state=self.random_state)
        model.fit(X)
        content = _content_similarity(self.n_items_, item_texts, item_similarity, self.content_params)
        if content is not None and float(self.content_weight) > 0:
            content, _ = unit_scale(content)
        else:
            content = None
        if model.item_based:
            blended, _ = unit_scale(model.similarity_)
            if content is not None:
                blended = blended + np.float32(self.content_weight) * content
            self.similarity_ = sp.csr_matrix(blended, dtype=np.float32)
            self.collaborative_ = None
            self.content_similarity_ = None
        else:
            self.similarity_ = None
            self.collaborative_ = model
            self.content_similarity_ = content
        return self

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        for name in ("similarity_", "collaborative_", "content_similarity_"):
            if name not in state:
                setattr(self, name, None)

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        return {k: v for k, v in state.items() if v is not None}

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        if self.similarity_ is not None:
            return sparse_matmul(X, self.similarity_).toarray()
        scores = row_max_scaled(self.collaborative_._score(X, users))
        if self.content_similarity_ is not None:
            content = (X @ self.content_similarity_).toarray()
            scores = scores + float(self.content_weight) * row_max_scaled(content)
        return np.asarray(scores, dtype=np.float32)

    def _item_weights(self) -> sp.csr_matrix:
        return self.similarity_

    def similar_items(self, item_index: int, n: int = 10):
        if self.similarity_ is not None:
            return ItemSimilarityRecommender.similar_items(self, item_index, n)
        return self.collaborative_.similar_items(item_index, n)

    def explain(self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3):
        if self.similarity_ is not None:
            return ItemSimilarityRecommender.explain(self, user_items_row, item_index, n)
        return self.collaborative_.explain(user_items_row, item_index, n)


#: Default (untuned) sub-model parameters and weights of Auto: what the app uses when no parameters file
#: (``ALGORITHM_PARAMS_FILE``) is configured. RP3beta and ItemKNN use the parameters Ferrari Dacrema et al.
#: published for CiteULike-a; the blend weights and iALS parameters were picked earlier on a validation split of
#: CiteULike-a TRAIN. These are a reasonable start for a mid-sized catalogue, not a tuned model: for a real data
#: set run ``python -m recommendations evaluate --tune --algorithms auto --params-out FILE``, which tunes every
#: member and then the blend weights on a validation split of TRAIN only (``evaluation.tune_auto``). The
#: benchmarks never use these defaults as a blend candidate; they tune from scratch on validation (the member
#: parameters below are only the first point of each member's search).
AUTO_DEFAULTS: dict[str, Any] = {
    "rp3beta": {"alpha": 0.711, "beta": 0.23, "top_k": 764},
    "itemknn": {"top_k": 594, "shrink": 999, "feature_weighting": "tfidf"},
    "ease": {"l2_norm": 523.0, "top_k": 1000},
    "ials": {"factors": 128, "regularization": 0.5, "alpha": 10.0, "iterations": 15, "random_state": 0},
    "weights": {"rp3beta": 1.0, "itemknn": 0.5, "ials": 0.05},
}

ITEM_COMPONENTS = ("rp3beta", "itemknn", "ease")


class Auto(ItemSimilarityRecommender):
    """The production default: a weighted blend of item-item models plus an optional iALS term.

    ``score(X) = X @ similarity_ + weights["ials"] * rownorm(U(X) @ item_factors.T)`` where
    ``similarity_ = sum_m weights[m] * unit_scale(W_m)`` over RP3beta, ItemKNN and EASE^R
    (each scaled to mean row L1 norm 1), plus ``content_weight`` times the content similarity
    when item texts are given to ``fit``; ``rownorm`` divides each user's iALS scores by their
    largest absolute value. With ``weights["ials"] == 0`` the model is purely item-based
    (``item_based`` is True) and the Django app can refresh a user's picks as
    ``row @ similarity_``; otherwise ``similarity_`` is absent and ``recommend(user_index, row)``
    adds the factor term (one small least-squares solve for a changed history). ``explain``
    uses the item-item part only. Above ``ease_max_items`` items EASE^R is
    skipped and its weight moves to ItemKNN, so big catalogues get RP3beta + ItemKNN.

    Parameters
    ----------
    rp3beta, itemknn, ease, ials : dict or None
        Parameters of each component (None: the defaults in ``AUTO_DEFAULTS``).
    weights : dict or None
        Blend weight per component name; 0 or missing skips the component.
    ease_max_items : int
        Largest catalogue for which EASE^R is used.
    content_weight : float
        Weight of the content similarity (only when texts or a similarity are given to fit).
    content_params : dict or None
    random_state : int or None
        Seed of the iALS component when its params give none.
    n_threads : int
        0 (all cores) or more than 1: fit the iALS component in a second thread while this one
        fits the item-item components (both release the GIL). 1: one after the other. The
        result is the same either way.

    Attributes
    ----------
    item_similarity_ : csr_matrix float32, shape (n_items, n_items)
        The item-item part, always present after fit. ``similarity_`` is its old name and exists
        only when there is no iALS term (``item_based``).
    factor_model_ : IALS or None
        The fitted iALS component.
    components_ : ndarray of str
        The components actually blended.
    effective_weights_ : ndarray float32
        Their weights after any fallback.
    """

    algorithm_name = "auto"

    _state_attributes = RecommenderBase._state_attributes + (
        "item_similarity_",
        "components_",
        "effective_weights_",
        "factor_model_",
    )

    def __init__(
        self,
        rp3beta: dict[str, Any] | None = None,
        itemknn: dict[str, Any] | None = None,
        ease: dict[str, Any] | None = None,
        ials: dict[str, Any] | None = None,
        weights: dict[str, float] | None = None,
        ease_max_items: int = 20_000,
        content_weight: float = 0.0,
        content_params: dict[str, Any] | None = None,
        random_state: int | None = None,
        n_threads: int = 0,
    ) -> None:
        self.rp3beta = rp3beta
        self.itemknn = itemknn
        self.ease = ease
        self.ials = ials
        self.weights = weights
        self.ease_max_items = ease_max_items
        self.content_weight = content_weight
        self.content_params = content_params
        self.random_state = random_state
        self.n_threads = n_threads

    @property
    def item_based(self) -> bool:  # type: ignore[override]
        return getattr(self, "factor_model_", None) is None

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

    def component_weights(self, n_items: int) -> dict[str, float]:
        """Weights actually used for a catalogue of ``n_items`` (after the EASE fallback)."""
        weights = dict(AUTO_DEFAULTS["weights"] if self.weights is None else self.weights)
        unknown = set(weights) - {*ITEM_COMPONENTS, "ials"}
        if unknown:
            raise ValueError(f"Auto weights has unknown components {sorted(unknown)}")
        if float(weights.get("ease", 0)) > 0 and n_items > int(self.ease_max_items):
            weights["itemknn"] = float(weights.get("itemknn", 0.0)) + float(weights.pop("ease"))
        return {name: float(w) for name, w in weights.items() if float(w) > 0}

    def _component_params(self, name: str) -> dict[str, Any]:
        params = getattr(self, name)
        return dict(AUTO_DEFAULTS[name] if params is None else params)

    def fit(
        self,
        user_items: sp.csr_matrix,
        item_texts: Sequence[str] | None = None,
        item_similarity: sp.spmatrix | None = None,
    ) -> Auto:
        """Fit every component with a positive weight and blend them; return ``self``."""
        from .factorization import IALS
        from .graph import RP3beta
        from .knn import ItemKNN
        from .linear import EASE

        X = self._fit_common(user_items)
        weights = self.component_weights(self.n_items_)
        if not any(name in weights for name in ITEM_COMPONENTS):
            raise ValueError(f"Auto needs a positive weight for at least one of {ITEM_COMPONENTS}")
        classes = {"rp3beta": RP3beta, "itemknn": ItemKNN, "ease": EASE}
        factor_model, factor_fit = None, None
        # Leaving the executor waits for the iALS fit, also when an item-item component failed.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bre-auto-ials") as pool:
            if "ials" in weights:
                params = self._component_params("ials")
                params.setdefault("random_state", self.random_state)
                factor_model = IALS(**params)
                if n_threads_to_use(self.n_threads) > 1:
                    factor_fit = pool.submit(factor_model.fit, X)
            blended = sp.csr_matrix((self.n_items_, self.n_items_), dtype=np.float32)
            for name in ITEM_COMPONENTS:
                if name not in weights:
                    continue
                params = self._component_params(name)
                if name == "ease":
                    params.setdefault("max_items", int(self.ease_max_items))
                component = classes[name](**params).fit(X)
                scaled, _ = unit_scale(component.similarity_)
                del component
                blended = blended + np.float32(weights[name]) * scaled
            content = _content_similarity(self.n_items_, item_texts, item_similarity, self.content_params)
            if content is not None and float(self.content_weight) > 0:
                blended = blended + np.float32(self.content_weight) * unit_scale(content)[0]
        self.item_similarity_ = blended
        self.item_similarity_.sort_indices()
        self.factor_model_ = None
        if factor_model is not None:
            self.factor_model_ = factor_fit.result() if factor_fit is not None else factor_model.fit(X)
        self.components_ = np.array(list(weights), dtype=str)
        self.effective_weights_ = np.array(list(weights.values()), dtype=np.float32)
        return self

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        if "factor_model_" not in state:
            self.factor_model_ = None

    def _get_state(self) -> dict[str, Any]:
        return {k: v for k, v in super()._get_state().items() if v is not None}

    def _ials_weight(self) -> float:
        weights = dict(zip(self.components_.tolist(), self.effective_weights_.tolist()))
        return float(weights.get("ials", 0.0))

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        scores = sparse_matmul(X, self.item_similarity_).toarray()
        if self.factor_model_ is not None:
            factor_scores = row_max_scaled(self.factor_model_._score(X, users))
            scores += np.float32(self._ials_weight()) * factor_scores.astype(np.float32)
        return scores

    def _topn_block(self, X, users, n, exclude_seen):
        if self.factor_model_ is not None:
            return RecommenderBase._topn_block(self, X, users, n, exclude_seen)
        return super()._topn_block(X, users, n, exclude_seen)
