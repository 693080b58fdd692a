"""Provides a build's artifacts (its fitted model, maps and matrices as bytes) and its loaded state, one cache per process.

Every reader of a build's artifacts goes through ``build_state()``: the workers that score its
chunks and fit its parts, the per-user refresh, and the predicted stars of a page. The maps are
parsed once per process and build; the model, the matrices and the star predictor are loaded
the first time they are needed, so a web page that only wants predicted stars never loads the
(much larger) model.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.db import transaction
from django.utils import timezone

from ..algorithms import load_model
from ..algorithms.matrices import IndexMap
from ..algorithms.rating import BiasedMF
from ..db.blobs import blob_insert, blob_read
from ..db.sqlite_locked import retry_when_locked
from ..models import ArmPicks, BuildArtifact, PopularItem, SimilarItem, UserRecommendation
from .errors import BuildError
from .load import LoadedData

STATES_KEPT = 2  # the active build and the one being built


@retry_when_locked
def artifact_save(build_id: int, name: str, writer: Callable[[io.BytesIO], None]) -> None:
    """Store (or replace) the artifact ``name`` of build ``build_id``: the bytes that ``writer`` writes."""
    buffer = io.BytesIO()
    writer(buffer)
    with transaction.atomic():
        BuildArtifact.objects.filter(build_id=build_id, name=name).delete()
        blob_insert(BuildArtifact, {"build": build_id, "name": name, "data": buffer.getbuffer(),
                                    "created_at": timezone.now()},
                    ["int8", "text", "bytea", "timestamptz"])


def artifact_bytes(build_id: int, name: str) -> bytes:
    """Return the bytes of artifact ``name`` of build ``build_id``; raise ``BuildError`` when it is missing."""
    data = blob_read(BuildArtifact.objects.filter(build_id=build_id, name=name).values_list("data"))
    if data is None:
        raise BuildError(f"Build #{build_id} has no artifact {name!r}; run a full build.")
    return data


def state_save(build_id: int, data: LoadedData, model) -> None:
    """Store what a worker needs to score the build's users: the model, the index maps and the two matrices."""
    artifact_save(build_id, "model", model.save)
    artifact_save(
        build_id,
        "maps",
        lambda f: np.savez(
            f,
            item_ct=np.asarray([k[0] for k in data.item_map], dtype=np.int64),
            item_id=np.asarray([k[1] for k in data.item_map], dtype=str),
            user_id=np.asarray([str(u) for u in data.user_map], dtype=str),
            item_words=data.item_words,
        ),
    )
    for name, matrix in (("user_items", data.user_items), ("negatives", data.negatives)):
        artifact_save(build_id, name, lambda f, m=matrix: sp.save_npz(f, m.tocsr(), compressed=False))


def item_item(model) -> sp.csr_matrix | None:
    """Return the model's item-item weights, if it has any.

    Pure item-item models keep them as ``similarity_``; a blend keeps its item-item part as
    ``item_similarity_`` (e.g. ``auto`` with an iALS term). This is the one place that knows both names.
    """
    similarity = getattr(model, "similarity_", None)
    if similarity is None:
        similarity = getattr(model, "item_similarity_", None)
    return similarity


class BuildState:
    """What a process needs of one build: its maps, and its model and matrices loaded on first use.

    Built from artifacts by ``build_state()``; tests may pass the model and matrices directly.
    """

    def __init__(self, model, item_map: IndexMap, user_keys: list[str], item_words: np.ndarray,
                 user_items: sp.csr_matrix | None, negatives: sp.csr_matrix | None, *, build_id: int | None = None):
        self.build_id = build_id
        self.item_map, self.user_keys, self.item_words = item_map, user_keys, item_words
        self._model, self._user_items, self._negatives = model, user_items, negatives
        self._rating_model: Any = None
        self._rating_loaded = False
        self._user_map: IndexMap | None = None
        self._dense: np.ndarray | None = None
        self._groups: list[np.ndarray] | None = None
        self.titles: dict = {}  # (ct_id, object_id) -> title, filled by the build's chunks
        self.cold_model: Any = None  # the build's cold model (``cold.ColdModel``), loaded by ``cold.cold_view``
        self.cold_loaded = build_id is None  # a state made by hand (tests) has no cold model

    @classmethod
    def from_artifacts(cls, build_id: int) -> BuildState:
        """Parse the build's maps; everything else is loaded when first used."""
        with np.load(io.BytesIO(artifact_bytes(build_id, "maps")), allow_pickle=False) as maps:
            item_map = IndexMap(zip(maps["item_ct"].tolist(), maps["item_id"].tolist()))
            user_keys = maps["user_id"].tolist()
            item_words = maps["item_words"]
        return cls(None, item_map, user_keys, item_words, None, None, build_id=build_id)

    @property
    def model_loaded(self) -> bool:
        """Whether the fitted model was loaded (serving predicted stars never needs it)."""
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(io.BytesIO(artifact_bytes(self.build_id, "model")))
        return self._model

    @property
    def user_items(self) -> sp.csr_matrix:
        if self._user_items is None:
            self._user_items = sp.load_npz(io.BytesIO(artifact_bytes(self.build_id, "user_items"))).tocsr()
        return self._user_items

    @property
    def negatives(self) -> sp.csr_matrix:
        if self._negatives is None:
            self._negatives = sp.load_npz(io.BytesIO(artifact_bytes(self.build_id, "negatives"))).tocsr()
        return self._negatives

    @property
    def rating_model(self) -> BiasedMF | None:
        """The star predictor, or None when the build has none (too few ratings)."""
        if not self._rating_loaded:
            try:
                self._rating_model = BiasedMF.load(io.BytesIO(artifact_bytes(self.build_id, "rating_model")))
            except BuildError:
                self._rating_model = None
            self._rating_loaded = True
        return self._rating_model

    @property
    def user_map(self) -> IndexMap:
        """User keys (text) -> row positions."""
        if self._user_map is None:
            self._user_map = IndexMap(self.user_keys)
        return self._user_map

    def item_groups(self) -> list[np.ndarray]:
        """Column positions of each item model (content type), in position order."""
        if self._groups is None:
            cts = np.asarray([key[0] for key in self.item_map], dtype=np.int64)
            self._groups = [np.flatnonzero(cts == ct) for ct in np.unique(cts)]
        return self._groups

    def dense_similarity(self, max_bytes: int = 256 * 2**20) -> np.ndarray | None:
        """The model's item-item weights as a dense array, when that fits in ``max_bytes``."""
        similarity = item_item(self.model)
        if similarity is None or similarity.shape[0] * similarity.shape[1] * 4 > max_bytes:
            return None
        if self._dense is None:
            self._dense = similarity.toarray().astype(np.float32, copy=False)
        return self._dense


_STATES: OrderedDict[int, BuildState] = OrderedDict()
_STATES_LOCK = threading.Lock()


def build_state(build_id: int) -> BuildState:
    """Return the state of build ``build_id``, parsed once per process (the last ``STATES_KEPT`` builds are kept)."""
    with _STATES_LOCK:
        state = _STATES.get(build_id)
        if state is not None:
            _STATES.move_to_end(build_id)
            return state
    state = BuildState.from_artifacts(build_id)
    with _STATES_LOCK:
        _STATES[build_id] = state
        while len(_STATES) > STATES_KEPT:
            _STATES.popitem(last=False)
    return state


def build_state_forget(build_id: int) -> None:
    """Drop the cached state of a build (its rows are being deleted or rewritten)."""
    with _STATES_LOCK:
        _STATES.pop(build_id, None)


@retry_when_locked
def build_rows_delete(build_id: int) -> None:
    """Delete every result row and artifact of a build, and forget its cached state."""
    for model in (UserRecommendation, SimilarItem, PopularItem, BuildArtifact, ArmPicks):
        model.objects.filter(build_id=build_id).delete()
    build_state_forget(build_id)
