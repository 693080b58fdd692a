"""Provides the algorithm registry: ALGORITHMS, get_estimator() and load_model()."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ItemSimilarityRecommender, RecommenderBase, get_estimator
from .graph import P3alpha, RP3beta
from .knn import ItemKNN, UserKNN
from .linear import EASE
from .factorization import IALS
from .hybrid import Auto, Hybrid
from .cold import ColdStartHybrid
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
    cls.algorithm_name: cls for cls in (TopPop, ItemKNN, UserKNN, P3alpha, RP3beta, EASE, IALS, Hybrid, Auto, ColdStartHybrid)
}

#: Class name -> class, for load_model (includes models not in the public registry).
ALGORITHM_CLASSES: dict[str, type[RecommenderBase]] = {cls.__name__: cls for cls in ALGORITHMS.values()}


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
