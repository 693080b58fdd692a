"""Provides the cold-item part of a build: item features, the fitted ``ColdStartHybrid``, and its blend into picks.

A full build encodes every item (``SITE_ENCODER``, an ``algorithms.encoders`` encoder), fits the cold model on the
interactions and those features, and stores both. Scoring a reader then blends, for every item,
the warm model's score and the cold model's (rescaled to the reader's warm scale) by the item's
warmth, so an item few readers have read competes on its content. An item saved after the build
is encoded and mapped with the stored model (``cold_place``) and kept as an artifact of the
build (``cold_item:<ct>:<id>``), so later refreshes of any reader score it too.
"""
from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..adapters import DefaultAdapter, get_adapter
from ..algorithms import load_model
from ..algorithms.cold import COLD_SCALE_RANK, ColdStartHybrid, blend_scores
from ..algorithms.encoders import ItemRecord, load_encoder, make_encoder
from ..algorithms.matrices import IndexMap
from ..conf import app_settings
from ..items import items_by_key
from ..models import BuildArtifact
from .errors import BuildError
from .load import LoadedData
from .state import artifact_bytes, artifact_save

EXTENSION_PREFIX = "cold_item:"
#: The site's item features: TF-IDF of an item's text beside its diversity key (an author) at half weight.
SITE_ENCODER = {"tfidf": {"weight": 1.0, "ngram_range": (1, 1), "max_features": 50_000},
                "authors": {"weight": 0.5, "idf": False}}


def item_records(texts: list[str], keys: list) -> list[ItemRecord]:
    """Return what the encoder reads of each item: its text, and its diversity key as its one author."""
    return [ItemRecord(text=text or "", authors=[] if key is None else [str(key)]) for text, key in zip(texts, keys)]


def diversity_keys(keys: list[tuple[int, str]]) -> list:
    """Return the adapter's ``diversity_key()`` of each item (all None when the adapter gives none)."""
    adapter = get_adapter()
    if type(adapter).diversity_key is DefaultAdapter.diversity_key:
        return [None] * len(keys)
    objects = items_by_key(keys, queryset=lambda model: model._base_manager.all())
    return [adapter.diversity_key(objects[key]) if key in objects else None for key in keys]


def readers_per_item(user_items: sp.csr_matrix) -> np.ndarray:
    """Return how many readers have a positive interaction with each item."""
    return np.asarray((user_items > 0).sum(axis=0)).ravel().astype(np.float64)


def cold_fit(build_id: int, data: LoadedData) -> int:
    """Fit and store the build's cold model on every item's features; return how many items it maps (0: off)."""
    if not app_settings.COLD_START or not len(data.item_map):
        return 0
    texts = [""] * len(data.item_map)
    for ct_id, pairs in data.texts.items():
        for object_id, text in pairs:
            texts[data.item_map.position((ct_id, object_id))] = text
    records = item_records(texts, diversity_keys(list(data.item_map)))
    encoder = make_encoder(SITE_ENCODER).fit(records)
    features = encoder.transform(records)
    if features.nnz == 0:
        return 0
    model = ColdStartHybrid(**app_settings.COLD_START_PARAMS).fit(data.user_items, features)
    mapped = np.asarray(model.map_items(features), dtype=np.float32)
    artifact_save(build_id, "cold_model", model.save)
    artifact_save(build_id, "cold_encoder", encoder.save)
    artifact_save(build_id, "cold_features", lambda f: sp.save_npz(f, features, compressed=False))
    artifact_save(build_id, "cold_items", lambda f: np.savez(f, mapped=mapped, readers=readers_per_item(data.user_items)))
    return len(data.item_map)


@dataclass
class ColdModel:
    """What a process needs of a build's cold model; loaded once per build (``BuildState.cold``)."""

    model: ColdStartHybrid
    encoder: Any  # an ``algorithms.encoders`` encoder, fitted at the build
    features: sp.csr_matrix  # build items x features, rows L2-normalised
    mapped: np.ndarray  # build items x factors
    readers: np.ndarray  # readers per build item at the build
    warmth: np.ndarray  # weight of the warm score per build item
    thresholds: dict = field(default_factory=dict)  # placement's per-reader match thresholds, per item model

    @classmethod
    def from_artifacts(cls, build_id: int) -> ColdModel | None:
        try:
            model = load_model(io.BytesIO(artifact_bytes(build_id, "cold_model")))
        except BuildError:
            return None  # a build without a cold model (COLD_START off, or no item features)
        try:
            encoder = load_encoder(io.BytesIO(artifact_bytes(build_id, "cold_encoder")))
        except (ValueError, KeyError):
            return None  # an encoder stored in an older format: no cold model until the next build
        features = sp.load_npz(io.BytesIO(artifact_bytes(build_id, "cold_features"))).tocsr()
        with np.load(io.BytesIO(artifact_bytes(build_id, "cold_items")), allow_pickle=False) as items:
            mapped, readers = items["mapped"], items["readers"]
        warmth = np.clip(np.asarray(model.warmth(readers), dtype=np.float32), 0.0, 1.0)
        return cls(model, encoder, features, mapped, readers, warmth)


@dataclass
class Extension:
    """Items mapped after the build (saved since): their keys, feature rows and factors."""

    keys: list[tuple[int, str]]
    features: sp.csr_matrix
    mapped: np.ndarray


def extension_load(build_id: int, n_features: int, n_factors: int) -> Extension:
    """Read the items ``cold_place`` mapped into build ``build_id`` since it was built."""
    rows = BuildArtifact.objects.filter(build_id=build_id, name__startswith=EXTENSION_PREFIX).order_by("pk")
    keys, features, mapped = [], [], []
    for name, data in rows.values_list("name", "data"):
        ct_id, object_id = name[len(EXTENSION_PREFIX):].split(":", 1)
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as item:
            keys.append((int(ct_id), object_id))
            features.append(sp.csr_matrix((item["data"], item["indices"], [0, len(item["indices"])]),
                                          shape=(1, n_features)))
            mapped.append(item["mapped"])
    return Extension(keys, sp.vstack(features, format="csr") if features else sp.csr_matrix((0, n_features)),
                     np.vstack(mapped).astype(np.float32) if mapped else np.zeros((0, n_factors), np.float32))


def extension_save(build_id: int, key: tuple[int, str], features: sp.csr_matrix, mapped: np.ndarray) -> None:
    """Store one item mapped after the build (replacing an earlier mapping of it)."""
    row = features.tocsr()
    artifact_save(build_id, f"{EXTENSION_PREFIX}{key[0]}:{key[1]}",
                  lambda f: np.savez(f, data=row.data.astype(np.float32), indices=row.indices.astype(np.int32),
                                     mapped=np.asarray(mapped, dtype=np.float32).reshape(1, -1)))


class ColdView:
    """A build's cold model with the items mapped since: scores, warmth and content over both.

    Columns ``0..m-1`` are the build's items (its ``item_map`` positions); ``m..m+e-1`` the extension.
    """

    def __init__(self, cold: ColdModel, extension: Extension, item_map: IndexMap):
        self.cold, self.extension, self.item_map = cold, extension, item_map
        self.n_build = len(item_map)
        self.ext_positions = {key: self.n_build + i for i, key in enumerate(extension.keys)}
        self.features = sp.vstack([cold.features, extension.features], format="csr")
        self.mapped = np.vstack([cold.mapped, extension.mapped]) if len(extension.keys) else cold.mapped
        norms = np.linalg.norm(self.mapped, axis=1, keepdims=True)
        self.unit = self.mapped / np.where(norms > 0, norms, 1.0)
        self.warmth = np.concatenate([cold.warmth, np.zeros(len(extension.keys), np.float32)])
        max_readers = app_settings.NEW_ITEM_MAX_READERS
        self.new = np.concatenate([cold.readers <= max_readers, np.ones(len(extension.keys), bool)])
        self.readers = np.concatenate([cold.readers, np.zeros(len(extension.keys), cold.readers.dtype)])

    @property
    def width(self) -> int:
        return self.n_build + len(self.extension.keys)

    def key(self, position: int) -> tuple[int, str]:
        return self.item_map.key(position) if position < self.n_build else self.extension.keys[position - self.n_build]

    def groups(self, build_groups: list[np.ndarray]) -> list[np.ndarray]:
        """Column positions of each item model, the extension's items added to their model's group."""
        by_ct = {self.item_map.key(int(g[0]))[0]: g for g in build_groups if len(g)}
        for key, position in self.ext_positions.items():
            by_ct[key[0]] = np.append(by_ct.get(key[0], np.zeros(0, np.int64)), position)
        return list(by_ct.values())

    def blend(self, rows: sp.csr_matrix, warm: np.ndarray, groups: list[np.ndarray],
              users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (blended scores over every column, cold scores on each reader's warm scale; ``-inf``: not positive).

        Within each item model (``groups``, as lists are kept), the cold scores are mapped by rank
        onto each reader's warm scores among the items they have not seen, the best cold score to
        their ``COLD_SCALE_RANK``-th best warm score (content alone never outranks their surest
        picks; see ``blend_scores``); an item then gets ``warmth * warm + (1 - warmth) * cold``.
        """
        cold = cold_scores(self.cold.model, rows, self.mapped, users)
        warm_all = np.zeros_like(cold)
        warm_all[:, : self.n_build] = warm
        w = np.concatenate([self.warmth[: self.n_build], np.zeros(self.width - self.n_build, np.float32)])
        # The rank map puts content matches on the warm scale, whose tail may be 0 or negative: whether content
        # matches at all (what exploration asks) is read before it.
        matches = cold > 0
        blended = blend_scores(warm_all, cold, w, groups, COLD_SCALE_RANK, seen=rows)
        cold[~matches] = -np.inf
        return blended, cold

    def nearest_in_rows(self, rows: sp.csr_matrix, target: int) -> np.ndarray:
        """Return, for each row's history, the position ``nearest_in_history`` gives for ``target`` (-1: no history)."""
        rows = sp.csr_matrix(rows)
        lengths = np.diff(rows.indptr)
        out = np.full(rows.shape[0], -1, dtype=np.int64)
        full = np.flatnonzero(lengths > 0)
        if not len(full):
            return out
        similarity = self.unit[rows.indices] @ self.unit[target]
        starts = rows.indptr[full]
        segment = np.repeat(np.arange(rows.shape[0]), lengths)
        top = np.maximum.reduceat(similarity, starts)
        heaviest = np.maximum.reduceat(rows.data, starts)
        # The first entry of each history at its maximum: of the similarity, else of the weight.
        by_similarity = top > 0
        wanted = np.where(by_similarity[np.searchsorted(full, segment)],
                          similarity == top[np.searchsorted(full, segment)],
                          rows.data == heaviest[np.searchsorted(full, segment)])
        hits = np.flatnonzero(wanted)
        first_rows, first = np.unique(segment[hits], return_index=True)
        out[first_rows] = rows.indices[hits[first]]
        return out

    def nearest_in_history(self, history: np.ndarray, weights: np.ndarray, targets: list[int]) -> dict[int, int]:
        """Return, for each target, the history position most like it (cosine of the mapped content), else the most weighted."""
        if len(history) == 0 or not targets:
            return {}
        similarity = self.unit[history] @ self.unit[targets].T
        best = np.where(similarity.max(axis=0) > 0, similarity.argmax(axis=0), int(np.argmax(weights)))
        return dict(zip(targets, history[best].tolist()))


def cold_scores(model: ColdStartHybrid, rows: sp.csr_matrix, mapped: np.ndarray,
                users: np.ndarray | None = None) -> np.ndarray:
    """``model.score(rows, mapped)``; for training rows (``users``, their positions) from the user factors the fit learned."""
    factors = getattr(model, "user_factors_", None)
    if users is not None and factors is not None:
        return np.asarray(factors[users] @ np.asarray(mapped, dtype=np.float32).T, dtype=np.float32)
    return np.asarray(model.score(rows, mapped), dtype=np.float32)


def cold_view(state) -> ColdView | None:
    """Return the cold view of a build's state (its cold model loaded once, the items mapped since read now), or None."""
    if not state.cold_loaded:
        state.cold_model = ColdModel.from_artifacts(state.build_id)
        state.cold_loaded = True
    cold = state.cold_model
    if cold is None:
        return None
    return ColdView(cold, extension_load(state.build_id, cold.features.shape[1], cold.mapped.shape[1]), state.item_map)


def exploration_slots(length: int, share: float) -> list[int]:
    """Return the 0-based places of a list of ``length`` given to new items: ``share`` of them, never the first.

    Slot ``j`` sits in the middle of the ``j``-th stretch of ``1 / share`` places (1 in 10: places 6, 16, ...).
    """
    if share <= 0 or length < 2:
        return []
    stride = 1.0 / share
    slots = [int((j + 0.5) * stride) for j in range(int(length * share + 1e-9))]
    return [max(1, s) for s in slots if s < length]


@dataclass(frozen=True)
class ExplorationPolicy:
    """How exploration slots are filled (the ``EXPLORATION_*`` settings); see ``exploration_choose``."""

    share: float
    candidates: int = 1
    choice: str = "content"
    epsilon: float = 0.0

    @classmethod
    def from_settings(cls) -> ExplorationPolicy:
        return cls(float(app_settings.EXPLORATION_SHARE), max(1, int(app_settings.EXPLORATION_CANDIDATES)),
                   str(app_settings.EXPLORATION_CHOICE), float(app_settings.EXPLORATION_EPSILON))

    @property
    def randomised(self) -> bool:
        return self.epsilon > 0 and self.candidates > 1


def exploration_rng(build_id: int, user_pk) -> np.random.Generator:
    """Return the draw of one reader's exploration slots in one build: a refresh of the reader draws the same."""
    return np.random.default_rng([int(build_id), zlib.crc32(str(user_pk).encode())])


def exploration_choose(block: np.ndarray, readers: np.ndarray, policy: ExplorationPolicy,
                       rng: np.random.Generator | None) -> tuple[int, float | None]:
    """Return the item of one slot among its candidates ``block`` (best content match first) and its propensity.

    The policy's own choice is the block's first ("content") or its most read at the build ("readers", ties
    to the better match); a randomised policy replaces it, with probability ``epsilon``, by a uniform draw in
    the block. The propensity is the probability that the item shown was shown (1 when not drawn), so an
    offline estimate can reweight it and an online measure can find the slot; None with 1 candidate.
    """
    greedy = int(block[int(np.argmax(readers[block]))]) if policy.choice == "readers" else int(block[0])
    if policy.candidates < 2:
        return greedy, None  # the plain slot: nothing to log
    if not policy.randomised or rng is None or len(block) < 2:
        return greedy, 1.0
    item = int(block[rng.integers(len(block))]) if rng.random() < policy.epsilon else greedy
    return item, policy.epsilon / len(block) + (1.0 - policy.epsilon) * (item == greedy)


def exploration_insert(view: ColdView, targets: np.ndarray, scores: np.ndarray, cold: np.ndarray,
                       share: float | ExplorationPolicy, rng: np.random.Generator | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, dict[int, float | None]]:
    """Give ``exploration_slots`` of one reader's list (best first) to new items chosen on content.

    ``cold`` is the reader's row of ``ColdView.blend``'s cold scores (``-inf``: no content match, or seen).
    Slot ``j`` takes one of the ``candidates`` new items that follow slot ``j - 1``'s in content order
    (``exploration_choose``; 1 candidate: the ``j``-th best match), so each slot's draw is independent.

    An inserted item takes a score between its neighbours', so serving, which orders by score,
    keeps it in its slot. Return the list, its scores and the inserted positions (item columns) with
    their propensities (None: not drawn).
    """
    policy = share if isinstance(share, ExplorationPolicy) else ExplorationPolicy(float(share))
    slots = exploration_slots(len(targets), policy.share)
    if not slots:
        return targets, scores, {}
    candidates = np.flatnonzero(view.new & np.isfinite(cold))
    candidates = candidates[~np.isin(candidates, targets)]
    order = candidates[np.argsort(-cold[candidates], kind="stable")]
    m = policy.candidates
    chosen = [exploration_choose(order[j * m:(j + 1) * m], view.readers, policy, rng)
              for j in range(min(len(slots), -(-len(order) // m)))]
    targets, scores = list(targets.tolist()), list(scores.tolist())
    for slot, (item, _) in zip(slots, chosen):
        above, below = scores[slot - 1], scores[slot] if slot < len(scores) else 0.0
        targets.insert(slot, item)
        scores.insert(slot, (above + below) / 2 if below > 0 else above / 2)
    return np.asarray(targets, dtype=np.int64), np.asarray(scores, dtype=np.float64), dict(chosen)


def new_explanations(view: ColdView, history: np.ndarray, weights: np.ndarray, targets: list[int], titles: dict,
                     explored: dict[int, float | None], cache: dict) -> dict[int, str]:
    """Return the stored explanation (JSON text) of each new target: the history item most like it, flagged new.

    An exploration pick is flagged ``"explore"``, with its ``"propensity"`` when it was drawn.
    ``cache`` keeps the texts of one call of ``pick_rows``: readers share history items.
    """
    out = {}
    for target, nearest in view.nearest_in_history(history, weights, targets).items():
        explore = target in explored
        propensity = explored.get(target)
        text = cache.get((nearest, explore, propensity))
        if text is None:
            ct_id, object_id = view.key(nearest)
            entry = {"content_type": ct_id, "object_id": object_id, "title": titles.get((ct_id, object_id), ""),
                     "new": True}
            if explore:
                entry["explore"] = True
            if propensity is not None:
                entry["propensity"] = round(float(propensity), 6)
            text = cache[(nearest, explore, propensity)] = json.dumps([entry])
        out[target] = text
    return out


@dataclass
class ColdScoring:
    """How the active build scores one item on content, for its admin page."""

    source: str  # "build" (mapped with the build's items), "saved since" (mapped on save) or "" (not mapped)
    readers: int | None  # readers at the build (None: saved since)
    warmth: float  # weight of the warm model's score; the cold score weighs 1 - warmth
    is_new: bool
    nearest: list[tuple[tuple[int, str], float]]  # the items closest by mapped content, with their cosine


def cold_scoring(state, key: tuple[int, str], n: int = 5) -> ColdScoring | None:
    """Return how ``key`` is scored by the build's cold model, or None without one."""
    view = cold_view(state)
    if view is None:
        return None
    position = state.item_map.get(key)
    if position is None:
        position = view.ext_positions.get(key)
    if position is None:
        return ColdScoring("", None, 0.0, True, [])
    similarity = view.unit @ view.unit[position]
    similarity[position] = -np.inf
    best = np.argsort(-similarity, kind="stable")[:n]
    nearest = [(view.key(int(p)), float(similarity[p])) for p in best.tolist() if similarity[p] > 0]
    in_build = position < view.n_build
    return ColdScoring("build" if in_build else "saved since", int(view.cold.readers[position]) if in_build else None,
                       float(view.warmth[position]), bool(view.new[position]), nearest)
