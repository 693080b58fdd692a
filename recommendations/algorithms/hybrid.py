"""Provides Hybrid: a collaborative model blended with content similarity (cold users and items)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .base import ItemSimilarityRecommender, RecommenderBase, get_estimator
from .blend import AUTO_DEFAULTS, content_similarity, row_max_scaled, unit_scale
from .products import sparse_matmul

# Auto and the blend helpers are re-exported for callers that imported them from here.
__all__ = ["Hybrid", "Auto", "AUTO_DEFAULTS", "unit_scale", "row_max_scaled"]


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
        content = content_similarity(self.n_items_, item_texts, item_similarity, self.content_params)
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


from .auto import Auto  # noqa: E402  (re-export; auto does not import this module)
