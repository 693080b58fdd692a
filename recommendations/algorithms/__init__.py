"""Provides the algorithm registry: ALGORITHMS, get_estimator() and load_model()."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ItemSimilarityRecommender, RecommenderBase
from .graph import P3alpha, RP3beta
from .knn import ItemKNN, UserKNN
from .linear import EASE
from .factorization import IALS
from .hybrid import Auto, Hybrid
from .popularity import TopPop

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_CLASSES",
    "RecommenderBase",
    "ItemSimilarityRecommender",
    "get_estimator",
    "load_model",
]

ALGORITHMS: dict[str, type[RecommenderBase]] = {
    "toppop": TopPop,
    "itemknn": ItemKNN,
    "userknn": UserKNN,
    "p3alpha": P3alpha,
    "rp3beta": RP3beta,
    "ease": EASE,
    "ials": IALS,
    "hybrid": Hybrid,
    "auto": Auto,
}

#: Class name -> class, for load_model (includes models not in the public registry).
ALGORITHM_CLASSES: dict[str, type[RecommenderBase]] = {cls.__name__: cls for cls in ALGORITHMS.values()}


def get_estimator(name: str, **params: Any) -> RecommenderBase:
    """Return an unfitted estimator by registry name.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or an unknown parameter.
    """
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"Unknown algorithm {name!r}; valid names: {', '.join(ALGORITHMS)}") from None
    valid = set(cls._param_names())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; valid: {sorted(valid)}")
    return cls(**params)


def load_model(file: Any) -> RecommenderBase:
    """Load a model written by ``RecommenderBase.save`` (``np.load(allow_pickle=False)``)."""
    with np.load(file, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    class_name = str(arrays["__class__"])
    try:
        cls = ALGORITHM_CLASSES[class_name]
    except KeyError:
        raise ValueError(f"{file!r} holds an unknown model class {class_name!r}") from None
    return cls._from_arrays(arrays)
