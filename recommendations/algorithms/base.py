"""Provides RecommenderBase, the estimator shape shared by every recommender, and its helpers."""

from __future__ import annotations

import inspect
import json
import threading
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .blocks import BLOCK_ELEMENTS, block_rows_for, map_blocks, n_threads_to_use  # noqa: F401
from .products import sparse_dot_split, sparse_matmul, split_heavy_rows
from .topk import topk_dense_rows, topk_keep_mask, topk_sparse_rows, topn_rows, topn_sparse_rows  # noqa: F401

# The selection, product and block helpers stay importable from here (the F401 re-exports above)
# for callers that imported them before they moved to topk, products and blocks.
__all__ = ["RecommenderBase", "ItemSimilarityRecommender", "check_user_items", "get_estimator"]

#: A block of scores storing at most this share of its cells is ranked sparse (topn_sparse_rows).
SPARSE_SCORES_FRACTION = 1 / 4
_PLAN_LOCK = threading.Lock()
#: Every estimator class by class name (``load_model``) and by registry name (``estimator_class``).
_CLASSES: dict[str, type[RecommenderBase]] = {}
_NAMED: dict[str, type[RecommenderBase]] = {}


def get_estimator(name: str, **params: Any) -> RecommenderBase:
    """Return an unfitted estimator by registry name (its class's ``algorithm_name``).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or an unknown parameter.
    """
    try:
        cls = _NAMED[name]
    except KeyError:
        raise ValueError(f"Unknown algorithm {name!r}; valid names: {', '.join(_NAMED)}") from None
    valid = set(cls._param_names())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; valid: {sorted(valid)}")
    return cls(**params)


def check_user_items(user_items: Any, n_items: int | None = None, name: str = "user_items") -> sp.csr_matrix:
    """Validate and convert an interaction matrix to canonical CSR float32.

    Parameters
    ----------
    user_items : sparse matrix or array-like, shape (n_users, n_items)
    n_items : int, optional
        Required number of columns.
    name : str
        Name used in error messages.

    Returns
    -------
    csr_matrix, float32, sorted indices, no duplicates.
    """
    if sp.issparse(user_items):
        X = sp.csr_matrix(user_items, dtype=np.float32)
    else:
        array = np.asarray(user_items, dtype=np.float32)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_users, n_items), got shape {array.shape}")
        X = sp.csr_matrix(array)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_users, n_items)")
    if n_items is not None and X.shape[1] != n_items:
        raise ValueError(f"{name} has {X.shape[1]} columns but the model was fitted on {n_items} items")
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.data.size and not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


class RecommenderBase:
    """Base class of every recommender: sklearn-style parameters, implicit-style queries.

    Subclasses store hyperparameters in ``__init__`` (no validation, no data), learn in
    ``fit(user_items)`` which returns ``self``, and name learned state with a trailing ``_``.
    They implement ``fit`` and ``_score``; queries, batching, serialisation are shared here.

    Attributes (after fit)
    ----------------------
    n_users_, n_items_ : int
    item_popularity_ : ndarray float32, shape (n_items,)
        Number of users with a stored interaction per item; the fallback for empty users.
    """

    #: Attributes saved by ``save`` (ndarrays, sparse matrices or scalars).
    _state_attributes: tuple[str, ...] = ("n_users_", "n_items_", "item_popularity_")
    #: True for models that expose ``similarity_`` with ``score(X) == X @ similarity_``.
    item_based: bool = False
    #: Registry name (``get_estimator(name)``), or None for classes outside the registry.
    algorithm_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls
        if cls.__dict__.get("algorithm_name"):
            _NAMED[cls.algorithm_name] = cls

    # ----------------------------------------------------------------- parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ]

    def get_params(self) -> dict[str, Any]:
        """Return the hyperparameters as a dict (JSON-serialisable for built-in models)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> RecommenderBase:
        """Set hyperparameters; unknown names raise ValueError. Returns ``self``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ----------------------------------------------------------------- learning
    def fit(self, user_items: sp.csr_matrix) -> RecommenderBase:
        """Learn from ``user_items`` (csr, (n_users, n_items), float32) and return ``self``."""
        raise NotImplementedError(".fit() must be overridden")

    def _fit_common(self, user_items: Any) -> sp.csr_matrix:
        X = check_user_items(user_items)
        self.n_users_, self.n_items_ = (int(v) for v in X.shape)
        self.item_popularity_ = np.diff(X.tocsc().indptr).astype(np.float32)
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call .fit(user_items) first")

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        raise NotImplementedError("._score() must be overridden")

    def _fallback_scores(self) -> NDArray[np.float32]:
        """Scores for a user with no history: item popularity."""
        return self.item_popularity_.astype(np.float32)

    # ----------------------------------------------------------------- queries
    def score(self, user_items_rows: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        """Raw scores of every item for each given history (no masking, no fallback).

        Parameters
        ----------
        user_items_rows : csr_matrix, shape (m, n_items)
        users : ndarray int, shape (m,), optional
            Training rows of these histories: models with learned user state (factors) use
            it instead of recomputing it from the rows. Pass it only when each row is that
            user's training row unchanged.

        Returns
        -------
        ndarray float32, shape (m, n_items)
        """
        self._check_fitted()
        X = check_user_items(user_items_rows, self.n_items_, "user_items_rows")
        rows = None if users is None else np.asarray(users, dtype=np.int64)
        return np.asarray(self._score(X, rows), dtype=np.float32)

    def _scores_block(
        self, X: sp.csr_matrix, users: NDArray[np.int64] | None, exclude_seen: bool
    ) -> NDArray[np.float32]:
        scores = np.asarray(self._score(X, users), dtype=np.float32)
        if not scores.flags.writeable:
            scores = scores.copy()
        empty = np.diff(X.indptr) == 0
        if empty.any():
            scores[empty] = self._fallback_scores()
        if exclude_seen and X.nnz:
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            scores[rows, X.indices] = -np.inf
        return scores

    def _topn_block(
        self, X: sp.csr_matrix, users: NDArray[np.int64] | None, n: int, exclude_seen: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-``n`` of a block of users (dense scores; item-based models override)."""
        return topn_rows(self._scores_block(X, users, exclude_seen), n)

    def recommend(
        self,
        user_index: int,
        user_items_row: sp.csr_matrix,
        n: int = 10,
        exclude_seen: bool = True,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Recommend the best ``n`` items for one user, best first.

        Parameters
        ----------
        user_index : int
            Row of the user in the training matrix (used by user-based models; may be -1 for
            a user unknown at fit time).
        user_items_row : csr_matrix, shape (1, n_items)
            The user's current history; its nonzero items count as seen.
        n : int
        exclude_seen : bool

        Returns
        -------
        indices : ndarray int64, shape (<= n,)
        scores : ndarray float32, shape (<= n,)
        """
        self._check_fitted()
        X = check_user_items(user_items_row, self.n_items_, "user_items_row")
        if X.shape[0] != 1:
            raise ValueError(f"user_items_row must have exactly one row, got {X.shape[0]}")
        users = None if user_index is None or user_index < 0 else np.array([user_index], dtype=np.int64)
        scores = self._scores_block(X, users, exclude_seen)
        indices, values = topn_rows(scores, int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def recommend_all(
        self,
        user_items: sp.csr_matrix,
        n: int = 10,
        exclude_seen: bool = True,
        users: NDArray[np.int64] | None = None,
        batch_size: int | None = None,
        n_threads: int = 0,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Recommend for many users at once, blockwise over users.

        Parameters
        ----------
        user_items : csr_matrix, shape (n_users, n_items)
            Histories; row ``u`` belongs to user ``u``.
        n : int
        exclude_seen : bool
        users : ndarray int, optional
            Rows to answer for (default: all rows).
        batch_size : int, optional
            Users per block (default: sized so a block holds about 16M scores).
        n_threads : int
            Blocks scored in parallel threads (0: all cores; numpy/scipy release the GIL).

        Returns
        -------
        indices : ndarray int64, shape (n_rows, n), padded with -1
        scores : ndarray float32, shape (n_rows, n), padded with -inf
        """
        self._check_fitted()
        X = check_user_items(user_items, self.n_items_)
        rows = np.arange(X.shape[0], dtype=np.int64) if users is None else np.asarray(users, dtype=np.int64)
        n = int(n)
        if batch_size is None:
            batch_size = block_rows_for(rows.size, self.n_items_, cap=4096)
        out_indices = np.full((rows.size, n), -1, dtype=np.int64)
        out_scores = np.full((rows.size, n), -np.inf, dtype=np.float32)

        def work(start: int, stop: int) -> None:
            block_users = rows[start:stop]
            out_indices[start:stop], out_scores[start:stop] = self._topn_block(
                X[block_users], block_users, n, exclude_seen
            )

        map_blocks(work, rows.size, batch_size, n_threads)
        return out_indices, out_scores

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Return the ``n`` items most similar to ``item_index``, best first, excluding itself.

        Returns
        -------
        indices : ndarray int64, shape (<= n,)
        scores : ndarray float32, shape (<= n,)
        """
        raise NotImplementedError(".similar_items() must be overridden")

    def explain(
        self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Return the <= ``n`` history items that contributed most to ``item_index``'s score.

        Returns
        -------
        history_indices : ndarray int64, shape (<= n,)
        contributions : ndarray float32, shape (<= n,), positive, best first
        """
        raise NotImplementedError(".explain() must be overridden")

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._state_attributes if hasattr(self, name)}

    def _set_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def save(self, file: Any) -> None:
        """Save hyperparameters and learned state with ``np.savez`` (no pickles).

        Parameters
        ----------
        file : str, path or file-like
            Loaded back with :func:`recommendations.algorithms.load_model`.
        """
        self._check_fitted()
        arrays: dict[str, Any] = {
            "__class__": np.array(type(self).__name__),
            "__params__": np.array(json.dumps(self.get_params())),
        }
        for name, value in self._get_state().items():
            _pack(arrays, name, value)
        np.savez(file, **arrays)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, Any]) -> RecommenderBase:
        params = json.loads(str(arrays["__params__"]))
        model = cls(**params)
        model._set_state(_unpack(arrays))
        return model


def _pack(arrays: dict[str, Any], name: str, value: Any) -> None:
    if sp.issparse(value):
        value = sp.csr_matrix(value)
        arrays[f"{name}__csr_data"] = value.data
        arrays[f"{name}__csr_indices"] = value.indices
        arrays[f"{name}__csr_indptr"] = value.indptr
        arrays[f"{name}__csr_shape"] = np.asarray(value.shape, dtype=np.int64)
    elif isinstance(value, RecommenderBase):
        arrays[f"{name}__model_class"] = np.array(type(value).__name__)
        arrays[f"{name}__model_params"] = np.array(json.dumps(value.get_params()))
        for sub_name, sub_value in value._get_state().items():
            _pack(arrays, f"{name}__model__{sub_name}", sub_value)
    else:
        arrays[name] = np.asarray(value)


def _unpack(arrays: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    keys = [k for k in arrays if not k.startswith("__")]
    models = {k[: -len("__model_class")] for k in keys if k.endswith("__model_class")}
    for model_name in models:
        prefix = f"{model_name}__model__"
        sub_arrays = {k[len(prefix) :]: arrays[k] for k in keys if k.startswith(prefix)}
        sub_arrays["__params__"] = arrays[f"{model_name}__model_params"]
        cls = _CLASSES[str(arrays[f"{model_name}__model_class"])]
        state[model_name] = cls._from_arrays(sub_arrays)
    keys = [k for k in keys if not any(k.startswith(f"{m}__model") for m in models)]
    for key in keys:
        if key.endswith("__csr_data"):
            name = key[: -len("__csr_data")]
            shape = tuple(int(v) for v in arrays[f"{name}__csr_shape"])
            state[name] = sp.csr_matrix(
                (arrays[f"{name}__csr_data"], arrays[f"{name}__csr_indices"], arrays[f"{name}__csr_indptr"]),
                shape=shape,
            )
        elif "__csr_" in key:
            continue
        else:
            value = arrays[key]
            state[key] = value.item() if value.ndim == 0 else value
    return state


class ItemSimilarityRecommender(RecommenderBase):
    """Base of item-based models: ``score(X) == X @ similarity_``.

    Attributes (after fit)
    ----------------------
    similarity_ : csr_matrix float32, shape (n_items, n_items)
        ``similarity_[j, i]`` is how much a history item ``j`` adds to candidate ``i``.
    item_similarity_ : csr_matrix float32
        The same matrix. Read this name: it also exists on ``Auto`` with an iALS term, where
        ``similarity_`` does not (``item_based`` says whether ``score(X) == X @ item_similarity_``).
    """

    item_based = True
    _state_attributes = RecommenderBase._state_attributes + ("similarity_",)

    @property
    def item_similarity_(self) -> sp.csr_matrix:
        """The item-item matrix, under the name every item-item model (and ``Auto``) shares."""
        return self.similarity_

    @item_similarity_.setter
    def item_similarity_(self, value: sp.spmatrix) -> None:
        self.similarity_ = value

    def _item_weights(self) -> sp.csr_matrix:
        """The item-item matrix used by explain/similar_items (``similarity_`` by default)."""
        return self.similarity_

    def _score(self, X: sp.csr_matrix, users: NDArray[np.int64] | None = None) -> NDArray[np.float32]:
        return sparse_matmul(X, self.similarity_).toarray()

    def _topn_plan(self, similarity: sp.spmatrix) -> tuple:
        """``split_heavy_rows(similarity)``, cached per matrix object.

        With column-wise top-k (every candidate keeps its ``top_k`` neighbours), the rows of
        popular items hold entries for most of the catalogue; see :func:`split_heavy_rows`.
        Assigning a new ``similarity_`` rebuilds the cache; it is never saved.
        """
        key = (id(similarity), similarity.shape, similarity.nnz)
        plan = getattr(self, "_topn_plan_cache", None)
        if plan is not None and plan[0] == key and plan[1] is similarity:
            return plan
        with _PLAN_LOCK:
            plan = getattr(self, "_topn_plan_cache", None)
            if plan is not None and plan[0] == key and plan[1] is similarity:
                return plan
            heavy, dense, light = split_heavy_rows(similarity)
            plan = (key, similarity, heavy, dense, light)
            self._topn_plan_cache = plan
            return plan

    def _topn_block(
        self, X: sp.csr_matrix, users: NDArray[np.int64] | None, n: int, exclude_seen: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Top-``n`` of a block of users from ``X @ similarity`` scores.

        Rows with fewer than ``n`` positive unseen scores (or an empty history) are answered by
        ``_scores_block`` (popularity fallback, model-specific ``_score``), as before. When no
        row of the similarity is dense and the sparse product stores at most
        ``SPARSE_SCORES_FRACTION`` of the block's cells (row-wise top-k neighbourhoods), the
        top-``n`` is selected on the stored scores (:func:`topn_sparse_rows`) instead of a dense
        block: same indices and values, fewer cells to scan.
        """
        similarity = getattr(self, "_similarity_for_topn", None)
        if similarity is None:
            similarity = self.similarity_
        _, _, heavy, dense, light = self._topn_plan(similarity)
        redo = None
        if not heavy.size:
            partial = sparse_matmul(X, light)
            if partial.nnz <= SPARSE_SCORES_FRACTION * X.shape[0] * partial.shape[1]:
                indices, values, redo = topn_sparse_rows(partial, X if exclude_seen else None, n)
            else:
                scores = np.asarray(partial.toarray(), dtype=np.float32)
            del partial
        else:
            scores = sparse_dot_split(X, heavy, dense, light)
        if redo is None:
            if exclude_seen and X.nnz:
                rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
                scores[rows, X.indices] = -np.inf
            indices, values = topn_rows(scores, n)
            del scores
            redo = ~(values[:, -1] > 0) if n > 0 else np.zeros(X.shape[0], dtype=bool)
        redo = np.flatnonzero(redo | (np.diff(X.indptr) == 0)) if n > 0 else np.zeros(0, np.int64)
        if redo.size:
            sub_users = None if users is None else users[redo]
            indices[redo], values[redo] = topn_rows(self._scores_block(X[redo], sub_users, exclude_seen), n)
        return indices, values

    def similar_items(self, item_index: int, n: int = 10) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        self._check_fitted()
        row = self._item_weights()[int(item_index)].toarray().ravel()
        row[int(item_index)] = -np.inf
        row[row == 0] = -np.inf
        indices, values = topn_rows(row[None, :], int(n))
        keep = indices[0] >= 0
        return indices[0][keep], values[0][keep]

    def explain(
        self, user_items_row: sp.csr_matrix, item_index: int, n: int = 3
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        self._check_fitted()
        X = check_user_items(user_items_row, self.n_items_, "user_items_row")
        history = X.indices
        if history.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        weights = np.asarray(self._item_weights()[history][:, [int(item_index)]].toarray()).ravel()
        contributions = (X.data * weights).astype(np.float32)
        order = np.argsort(-contributions, kind="stable")[: int(n)]
        order = order[contributions[order] > 0]
        return history[order].astype(np.int64), contributions[order]
