"""Provides the parts of a build fitted beside its user chunks: the neighbour lists and the star predictor.

Neither the per-user picks nor each other need them, so a worker fits a part while others
score chunks. ``build_prepare`` either fits them inline or stores their inputs for ``build_part``.
"""
from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.db import transaction

from ..algorithms.matrices import IndexMap
from ..algorithms.rating import BiasedMF
from ..conf import app_settings
from ..db.bulk import rows_insert
from ..db.sqlite_locked import retry_when_locked
from ..models import BuildArtifact, BuildRun, SimilarItem
from .lease import build_lock_extend
from .load import LoadedData, explicit_ratings
from .progress import build_add, build_write_lock
from .rows import SIMILAR_COLUMNS, collaborative_rows, content_rows
from .state import artifact_bytes, artifact_save, build_state

BUILD_PARTS = ("neighbours", "rating_model")
PART_COUNTS = {"neighbours": "neighbours", "rating_model": "ratings"}  # the BuildRun.counts key each part sets
MIN_RATINGS = 10  # fewer explicit ratings fit no star predictor


def neighbours_fit(build_id: int, item_map: IndexMap, user_items: sp.csr_matrix, model,
                   texts: dict[int, list[tuple[str, str]]]) -> list[tuple]:
    """Return the collaborative and content neighbour rows of every item."""
    return collaborative_rows(build_id, item_map, user_items, model) + content_rows(build_id, item_map, texts)


def rating_model_fit(ratings: dict[str, np.ndarray]) -> tuple[BiasedMF | None, int]:
    """Fit the star predictor on explicit ratings; return it (None below ``MIN_RATINGS``) and the number of ratings."""
    if len(ratings["stars"]) < MIN_RATINGS:
        return None, len(ratings["stars"])
    n_users, n_items = (int(v) for v in ratings["shape"])
    model = BiasedMF(**{"random_state": 0, **app_settings.RATING_MODEL}).fit(
        ratings["users"], ratings["items"], ratings["stars"], n_users, n_items
    )
    return model, len(ratings["stars"])


def parts_fit(build_id: int, data: LoadedData, model) -> dict[str, Any]:
    """Fit every part from the loaded data (a build that fits its parts inline)."""
    return {"neighbours": neighbours_fit(build_id, data.item_map, data.user_items, model, data.texts),
            "rating_model": rating_model_fit(explicit_ratings(data))}


def part_inputs_save(build_id: int, data: LoadedData) -> None:
    """Store what the parts need beyond the scoring state: the item texts and the explicit ratings."""
    texts = {str(ct_id): pairs for ct_id, pairs in data.texts.items()}
    artifact_save(build_id, "item_texts", lambda f: f.write(json.dumps(texts).encode()))
    ratings = explicit_ratings(data)
    # Narrower types when exact (stars 1-5, positions < 2^31): a third of the bytes, read back unchanged.
    stars = ratings["stars"].astype(np.float32)
    if np.array_equal(stars, ratings["stars"]) and max(int(v) for v in ratings["shape"]) < 2**31:
        ratings.update(users=ratings["users"].astype(np.int32), items=ratings["items"].astype(np.int32), stars=stars)
    artifact_save(build_id, "ratings", lambda f: np.savez(f, **ratings))


def part_store(build_id: int, part: str, result) -> int:
    """Replace what an earlier delivery of the part stored; call inside the part's locked transaction."""
    if part == "neighbours":
        SimilarItem.objects.filter(build_id=build_id).delete()
        return rows_insert(SimilarItem, SIMILAR_COLUMNS, result)
    model, n_ratings = result
    BuildArtifact.objects.filter(build_id=build_id, name="rating_model").delete()
    if model is not None:
        artifact_save(build_id, "rating_model", model.save)
    return n_ratings


def _part_fit_stored(build_id: int, part: str):
    """Fit ``part`` from the inputs ``build_prepare`` stored."""
    if part == "neighbours":
        state = build_state(build_id)
        texts = {int(ct): [tuple(pair) for pair in pairs]
                 for ct, pairs in json.loads(artifact_bytes(build_id, "item_texts")).items()}
        return neighbours_fit(build_id, state.item_map, state.user_items, state.model, texts)
    with np.load(io.BytesIO(artifact_bytes(build_id, "ratings")), allow_pickle=False) as f:
        ratings = {"users": f["users"].astype(np.int64), "items": f["items"].astype(np.int64),
                   "stars": f["stars"].astype(np.float64), "shape": f["shape"]}
    return rating_model_fit(ratings)


@retry_when_locked
def build_part(*, build_id: int, part: str) -> int:
    """Fit and store one of ``BUILD_PARTS`` of a prepared build; return how many rows (or ratings) it stored.

    Safe to run twice, also at once: like a chunk, a part replaces its earlier rows under a lock.
    """
    if part not in BUILD_PARTS:
        raise ValueError(f"Unknown build part {part!r}: use one of {', '.join(BUILD_PARTS)}.")
    build = BuildRun.objects.only("status").get(pk=build_id)
    if build.status != BuildRun.Status.RUNNING:
        return 0
    t0 = time.perf_counter()
    result = _part_fit_stored(build_id, part)
    t1 = time.perf_counter()
    with transaction.atomic():
        if not build_write_lock(build_id, f"part:{part}"):
            return 0
        count = part_store(build_id, part, result)
    # Neighbour selection is compute (TF-IDF fit, top-k): timed as fit, not as a database write.
    build_add(build_id, {"fit": t1 - t0, "write": time.perf_counter() - t1, f"part_{part}": time.perf_counter() - t0},
              {PART_COUNTS[part]: count})
    build_lock_extend(build_id=build_id)
    return count
