"""Provides the candidates of ``auto``'s member search: starts, registry defaults, the baselines' configurations."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import get_estimator
from .blend import AUTO_DEFAULTS, ITEM_COMPONENTS, USER_COMPONENTS
from .tuning import search_candidates

__all__ = [
    "BASELINE_POINTS",
    "DOT_PRODUCT_SHRINK",
    "LARGE_NNZ",
    "is_large",
    "member_fixed_points",
    "member_base",
    "member_names",
    "member_points",
    "registry_point",
    "tune_iterations",
]

#: Shrink that turns ItemKNN's shrunk cosine ``x_i.x_j / (|x_i||x_j| + shrink)`` into the plain dot
#: product up to one constant factor (blending unit-scales it away): implicit's BM25Recommender.
DOT_PRODUCT_SHRINK = 1e12

#: Fixed candidates of each member besides its start and registry defaults: the configurations of
#: the baselines a user compares with first (implicit 0.7's ``CosineRecommender()``,
#: ``BM25Recommender()`` and ``AlternatingLeastSquares()`` with their defaults), so ``auto``
#: validates them too. ItemKNN's "history" neighbourhood is implicit's row-wise top-K, and
#: implicit's K=20 counts the item itself, so 19 neighbours give the same lists.
BASELINE_POINTS: dict[str, list[dict[str, Any]]] = {
    "itemknn": [
        {"top_k": 19, "shrink": 0.0, "feature_weighting": "none", "neighbourhood": "history"},
        {"top_k": 19, "shrink": DOT_PRODUCT_SHRINK, "feature_weighting": "bm25", "bm25_K1": 1.2, "bm25_B": 0.75,
         "neighbourhood": "history"},
    ],
    "ials": [{"factors": 100, "regularization": 0.01, "alpha": 1.0, "iterations": 15}],
}

#: Parameters of a registry estimator that are not model choices.
_NOT_MODEL_PARAMS = ("n_threads", "random_state", "max_items")


#: Above this many interactions ``auto``'s search is its fixed candidates only, and iALS is
#: validated with its fitted user factors: each fit costs seconds to minutes there (docs/decisions.md).
LARGE_NNZ = 300_000


def is_large(nnz: int) -> bool:
    """Whether ``nnz`` interactions get the cheaper search of large data (above ``LARGE_NNZ``)."""
    return int(nnz) > LARGE_NNZ


def tune_iterations(nnz: int) -> int:
    """Random search points per member after its fixed candidates, for ``nnz`` interactions.

    None above ``LARGE_NNZ``, where each fit costs more and the random points never gave the chosen
    blend (MovieLens-1M): the search is a count of fits, so its result does not depend on the
    machine's speed or load (docs/decisions.md).
    """
    return 0 if is_large(nnz) else 3


def member_names(members: Sequence[str] | None, n_items: int, ease_max_items: int, nnz: int = 0) -> list[str]:
    names = list(members) if members is not None else [*ITEM_COMPONENTS, *USER_COMPONENTS]
    if members is None and is_large(nnz):
        # UserKNN keeps the training matrix and scores against every training user: small data only
        # (docs/decisions.md, "UserKNN joins `auto`").
        names.remove("userknn")
    unknown = set(names) - {*ITEM_COMPONENTS, *USER_COMPONENTS}
    if unknown:
        raise ValueError(f"tune_auto: unknown members {sorted(unknown)}")
    if "ease" in names and n_items > ease_max_items:
        names.remove("ease")
    if not any(n in ITEM_COMPONENTS for n in names):
        raise ValueError(f"tune_auto needs at least one of {ITEM_COMPONENTS}")
    return names


def member_base(name: str, n_items: int, ease_max_items: int, dense_ease_max_items: int,
                 start: Mapping[str, Any] | None) -> dict[str, Any]:
    """First search point of a member: ``start`` (the caller's parameters) or ``AUTO_DEFAULTS``."""
    base = dict(AUTO_DEFAULTS[name] if start is None else start)
    if name == "ease":
        base.setdefault("max_items", int(ease_max_items))
        if start is None and n_items <= dense_ease_max_items:
            # pruning EASE^R to its top-k positive weights drops the negative ones, which matter on
            # dense data; a small catalogue keeps B whole, and starts at the registry's lambda (one
            # fit, not two of nearly the same model)
            base["top_k"] = None
            base["l2_norm"] = get_estimator("ease").get_params()["l2_norm"]
    return base


def registry_point(name: str) -> dict[str, Any]:
    """The registry defaults of ``name``: every model parameter of ``get_estimator(name)``.

    Tried right after a member's starting parameters, so ``auto`` always validates each member
    as a user would get it from the registry, not only ``AUTO_DEFAULTS``.
    """
    defaults = get_estimator(name).get_params()
    return {key: value for key, value in defaults.items() if key not in _NOT_MODEL_PARAMS}


def member_fixed_points(name: str, n_items: int, dense_ease_max_items: int) -> list[dict[str, Any]]:
    """A member's fixed candidates after its start: registry defaults, then the baselines' configurations.

    Above ``dense_ease_max_items`` items EASE^R keeps its start's pruning and adds no fixed point:
    each of its fits costs minutes there, and the registry's lambda is next to the start's.
    """
    if name == "ease":
        return [registry_point(name)] if n_items <= dense_ease_max_items else []
    return [registry_point(name)] + [dict(p) for p in BASELINE_POINTS.get(name, [])]


def member_points(name: str, space: Mapping[str, Sequence[Any]], n_iter: int | None,
                   rng: np.random.Generator) -> list[dict[str, Any]]:
    """The ``n_iter`` random search points of a member (all of its grid when None)."""
    if n_iter is not None and n_iter <= 0:
        return []
    return search_candidates(space, n_iter, rng)
