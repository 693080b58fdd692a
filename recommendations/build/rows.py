"""Provides the rows a build stores: item neighbours, popular lists and per-user picks with their explanations.

Every function returns plain tuples in the column order of ``SIMILAR_COLUMNS``, ``PICK_COLUMNS``
or ``POPULAR_COLUMNS``, ready for ``recommendations.db.bulk.rows_insert``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.db import connections, router

from ..algorithms.base import topk_dense_rows, topk_sparse_rows
from ..algorithms.content import ContentSimilarity
from ..algorithms.matrices import IndexMap
from ..conf import app_settings
from ..models import SimilarItem, UserRecommendation
from .cold import ColdView, ExplorationPolicy, cold_view, exploration_insert, exploration_rng, new_explanations
from .load import LoadedData
from .state import BuildState, item_item

SIMILAR_COLUMNS = ("build", "kind", "content_type", "object_id", "target_content_type", "target_object_id",
                   "rank", "score")
PICK_COLUMNS = ("build", "user", "content_type", "object_id", "rank", "score", "explanation", "source")
POPULAR_COLUMNS = ("build", "window", "content_type", "object_id", "rank", "score")
EXPLAINED_PER_PICK = 3
COLLABORATIVE_BLOCK = 1024  # items whose neighbours are selected at once


def user_pk(key: str):
    """Return the user primary key stored in a build's maps as text."""
    return get_user_model()._meta.pk.to_python(key)


def db_user_ids(user_pks: Iterable[Any]) -> dict[Any, Any]:
    """Map user primary keys to the values the database stores (e.g. hex text for UUIDs on SQLite)."""
    connection = connections[router.db_for_write(UserRecommendation)]
    field = get_user_model()._meta.pk
    return {pk: field.get_db_prep_save(pk, connection) for pk in user_pks}


# --- neighbours ----------------------------------------------------------------------------------


def similar_rows(build_id: int, kind: str, item_map: IndexMap, positions: Iterable[int],
                 indices: np.ndarray, scores: np.ndarray) -> list[tuple]:
    """Return ``SIMILAR_COLUMNS`` tuples for the neighbours of each source position."""
    rows = []
    for source, idx_row, score_row in zip(positions, indices.tolist(), scores.tolist()):
        ct_id, object_id = item_map.key(source)
        rank = 0
        for target, score in zip(idx_row, score_row):
            if target < 0 or not math.isfinite(score) or score <= 0 or target == source:
                continue
            t_ct, t_id = item_map.key(target)
            rank += 1
            rows.append((build_id, kind, ct_id, object_id, t_ct, t_id, rank, float(score)))
    return rows


def topk_padded(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of every row of a sparse matrix, as padded dense arrays, best first.

    ``algorithms.base.topk_sparse_rows`` selects; this only lays its rows out (ties: lower column first).
    """
    top = topk_sparse_rows(matrix, k)
    n = top.shape[0]
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    counts = np.diff(top.indptr)
    rows = np.repeat(np.arange(n), counts)
    order = np.lexsort((top.indices, -top.data, rows))  # rows stay grouped: positions are within-row ranks
    rank = np.arange(top.nnz) - np.repeat(top.indptr[:-1], counts)
    indices[rows, rank] = top.indices[order]
    scores[rows, rank] = top.data[order]
    return indices, scores


def content_rows(build_id: int, item_map: IndexMap, texts: dict[int, list[tuple[str, str]]]) -> list[tuple]:
    """Fit TF-IDF per item model and return the top ``N_SIMILAR`` content neighbours of every item."""
    rows: list[tuple] = []
    for ct_id, pairs in texts.items():
        if len(pairs) < 2 or not any(text for _, text in pairs):
            continue
        content = ContentSimilarity(top_k=app_settings.N_SIMILAR).fit([text for _, text in pairs])
        positions = [item_map.position((ct_id, object_id)) for object_id, _ in pairs]
        local_idx, local_scores = topk_padded(content.similarity_, app_settings.N_SIMILAR)
        global_idx = np.where(local_idx >= 0, np.asarray(positions, dtype=np.int64)[np.maximum(local_idx, 0)], -1)
        rows += similar_rows(build_id, SimilarItem.Kind.CONTENT, item_map, positions, global_idx, local_scores)
    return rows


def collaborative_rows(build_id: int, item_map: IndexMap, user_items: sp.csr_matrix, model) -> list[tuple]:
    """Return the top ``N_SIMILAR`` collaborative neighbours of every item with interactions.

    Neighbours stay within the item's own model (an article's "Readers also read" lists articles).
    """
    n = app_settings.N_SIMILAR
    item_cts = np.asarray([k[0] for k in item_map], dtype=np.int64)
    active = np.flatnonzero(np.diff(user_items.tocsc().indptr) > 0)
    similarity = item_item(model)
    if similarity is not None:
        similarity = sp.csr_matrix(similarity)
        similarity.setdiag(0)
        similarity.eliminate_zeros()
    rows: list[tuple] = []
    for start in range(0, len(active), COLLABORATIVE_BLOCK):
        block = active[start : start + COLLABORATIVE_BLOCK]
        if similarity is not None:
            dense = similarity[block].toarray()
        else:
            dense = np.full((len(block), user_items.shape[1]), -np.inf, dtype=np.float32)
            for i, item in enumerate(block):
                idx, sc = model.similar_items(int(item), n=n * 4)
                dense[i, idx] = sc
        same_model = item_cts[None, :] == item_cts[block][:, None]
        dense = np.where(same_model, dense, -np.inf)
        dense[np.arange(len(block)), block] = -np.inf
        idx, sc = topk_dense_rows(dense, n)
        rows += similar_rows(build_id, SimilarItem.Kind.COLLABORATIVE, item_map, block, idx, sc)
    return rows


def popular_rows(build_id: int, data: LoadedData, recent: np.ndarray) -> list[tuple]:
    """Return the ``N_POPULAR`` most read items of each item model, of all time and of the recent window."""
    rows: list[tuple] = []
    item_cts = np.asarray([k[0] for k in data.item_map], dtype=np.int64)
    all_counts = np.asarray((data.user_items > 0).sum(axis=0)).ravel().astype(np.float64)
    for window, counts in (("all", all_counts), ("recent", recent)):
        for ct_id in np.unique(item_cts):
            positions = np.flatnonzero((item_cts == ct_id) & (counts > 0))
            order = positions[np.argsort(-counts[positions], kind="stable")][: app_settings.N_POPULAR]
            for rank, position in enumerate(order, 1):
                rows.append((build_id, window, int(ct_id), data.item_map.key(position)[1], rank,
                             float(counts[position])))
    return rows


# --- explanations ---------------------------------------------------------------------------------


def explanations(state: BuildState, row: sp.csr_matrix, targets: np.ndarray) -> list[list[int]]:
    """Return for each target the positions of the 1-3 history items that contributed most to its score."""
    similarity = item_item(state.model)
    history, weights = row.indices, row.data
    if len(history) == 0:
        return [[] for _ in targets]
    if similarity is None:
        out: list[list[int]] = []
        for target in targets:
            idx, contrib = state.model.explain(row, int(target), n=EXPLAINED_PER_PICK)
            out.append([int(i) for i, c in zip(idx, contrib) if c > 0])
        return out
    dense = state.dense_similarity()
    if dense is not None:
        contributions = dense[np.ix_(history, targets)] * weights[:, None]
    else:
        # Slice the user's few history rows first; their columns are then cheap to pick.
        contributions = similarity[history][:, targets].toarray() * weights[:, None]
    # One stable sort per user (all targets at once) instead of one per target.
    best = np.argsort(-contributions, axis=0, kind="stable")[:EXPLAINED_PER_PICK]
    positive = (np.take_along_axis(contributions, best, axis=0) > 0).T.tolist()
    positions = history[best].T.tolist()
    return [[p for p, ok in zip(ps, oks) if ok] for ps, oks in zip(positions, positive)]


def _explain_group(dense: np.ndarray, rows: sp.csr_matrix, group: np.ndarray, padded: np.ndarray,
                   targets: list[np.ndarray], lengths: np.ndarray) -> dict[int, list[list[int]]]:
    """Explain the picks of one group of users at once (see ``explanations_block``)."""
    seg_lengths = lengths[group]
    entries = np.concatenate([np.arange(rows.indptr[u], rows.indptr[u + 1]) for u in group])
    history = rows.indices[entries]
    owner = np.repeat(np.arange(group.size), seg_lengths)
    contributions = dense[history[:, None], padded[group][owner]] * rows.data[entries][:, None]
    starts = np.r_[0, np.cumsum(seg_lengths)[:-1]]
    order = np.arange(len(entries))[:, None]
    picked, picked_values = [], []
    for _ in range(EXPLAINED_PER_PICK):
        best = np.maximum.reduceat(contributions, starts, axis=0)
        first = np.minimum.reduceat(np.where(contributions == best[owner], order, len(entries)), starts, axis=0)
        first = np.minimum(first, len(entries) - 1)
        picked.append(history[first])
        picked_values.append(best)
        np.put_along_axis(contributions, first, -np.inf, axis=0)
    picked_arr, values_arr = np.stack(picked, axis=2), np.stack(picked_values, axis=2)
    out = {}
    for g, u in enumerate(group.tolist()):
        n_targets, n_hist = len(targets[u]), min(EXPLAINED_PER_PICK, int(seg_lengths[g]))
        ps, vs = picked_arr[g, :n_targets, :n_hist].tolist(), values_arr[g, :n_targets, :n_hist].tolist()
        out[u] = [[p for p, v in zip(p_row, v_row) if v > 0] for p_row, v_row in zip(ps, vs)]
    return out


def explanations_block(state: BuildState, rows: sp.csr_matrix, targets: list[np.ndarray],
                       max_entries: int = 1 << 19) -> list[list[list[int]]] | None:
    """``[explanations(state, rows[i], targets[i]) for i ...]`` for many users at once; None without a dense item-item matrix.

    Each history entry of a group of users gets its user's targets as one (entries x targets)
    array; each of the three rounds takes every (user, target)'s largest contribution with a
    segmented maximum (``reduceat``) and its first history entry among equals with a segmented
    minimum of positions (the order of ``explanations``' stable sort), then rules that entry out.
    ``max_entries`` bounds the array.
    """
    if item_item(state.model) is None:
        return None
    dense = state.dense_similarity()
    if dense is None:
        return None
    rows = rows.tocsr()
    out: list[list[list[int]]] = [[[] for _ in t] for t in targets]
    width = max((len(t) for t in targets), default=0)
    if width == 0:
        return out
    lengths = np.diff(rows.indptr)
    padded = np.zeros((rows.shape[0], width), dtype=np.intp)
    for i, t in enumerate(targets):
        padded[i, : len(t)] = t
    users = np.flatnonzero((lengths > 0) & np.asarray([len(t) > 0 for t in targets]))
    start = 0
    while start < users.size:
        # A group of users whose history entries times the width fit in max_entries (at least one user).
        budget = np.cumsum(lengths[users[start:]]) * width
        stop = start + max(1, int(np.searchsorted(budget, max_entries, side="right")))
        for u, explained in _explain_group(dense, rows, users[start:stop], padded, targets, lengths).items():
            out[u] = explained
        start = stop
    return out


# --- picks ------------------------------------------------------------------------------------------


def score_rows(state: BuildState, rows: sp.csr_matrix, negatives: sp.csr_matrix, n: int,
               users: np.ndarray | None = None, view: ColdView | None = None):
    """Score users' rows, hide what they have seen or rejected, return padded top-``n`` arrays per item model.

    ``users`` are the rows' positions in the build's ``user_items`` when they are those training
    rows: a factor model then uses the user factors it learned instead of solving for them again.
    With a cold ``view`` the scores are blended by warmth over the build's items and the items
    mapped since (columns past the build's); the third value is then the cold scores, else None.
    """
    scores = state.model.score(rows, users=users).astype(np.float32, copy=False)
    groups, cold = state.item_groups(), None
    if view is not None:
        groups = view.groups(groups)
        scores, cold = view.blend(rows, scores, groups, users)
    # Mask seen and rejected items in place: no dense (users x items) mask.
    seen_rows, seen_cols = (abs(rows) + abs(negatives)).nonzero()
    scores[seen_rows, seen_cols] = -np.inf
    if cold is not None:
        cold[seen_rows, seen_cols] = -np.inf
    # Top-n per item model, so that every surface ("articles for you", "books for you") is full.
    parts_idx, parts_scores = [], []
    for columns in groups:
        idx, sc = topk_dense_rows(scores[:, columns], min(n, len(columns)))
        parts_idx.append(np.where(idx >= 0, columns[np.maximum(idx, 0)], -1))
        parts_scores.append(sc)
    indices, top = np.hstack(parts_idx), np.hstack(parts_scores)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(top, order, axis=1), cold


def history_keys(state: BuildState, rows: sp.csr_matrix) -> list[tuple[int, str]]:
    """Return the item keys in the users' histories: the items an explanation may name."""
    return [state.item_map.key(int(p)) for p in np.unique(rows.tocsr().indices)]


def pick_rows(*, build_id: int, state: BuildState, user_pks: list, rows: sp.csr_matrix, negatives: sp.csr_matrix,
              titles: dict, source: str, users: np.ndarray | None = None) -> list[tuple]:
    """Return ``PICK_COLUMNS`` tuples: the top ``N_RECOMMENDATIONS`` of each user and item model, explained.

    ``titles`` maps the keys of ``history_keys(state, rows)`` to the titles the explanations
    show; ``source`` is stored with each pick ("build" or "refresh"). With the build's cold model,
    new items compete by warmth, ``EXPLORATION_SHARE`` of each list goes to them, and each one's
    explanation is the history item most like it, flagged ``"new"`` (and ``"explore"`` in a slot, with the
    slot's ``"propensity"`` when ``EXPLORATION_EPSILON`` draws it).
    """
    view = cold_view(state)
    indices, scores, cold = score_rows(state, rows, negatives, app_settings.N_RECOMMENDATIONS, users=users, view=view)
    rows = rows.tocsr()
    key = view.key if view is not None else state.item_map.key
    fragments: dict[int, str] = {}  # position -> its JSON, encoded once per call
    new_texts: dict = {}  # (history position, explore) -> a new item's explanation, encoded once per call

    def fragment(position: int) -> str:
        text = fragments.get(position)
        if text is None:
            ct_id, object_id = state.item_map.key(position)
            text = fragments[position] = json.dumps(
                {"content_type": ct_id, "object_id": object_id, "title": titles.get((ct_id, object_id), "")})
        return text

    db_ids = db_user_ids(user_pks)
    valid = (indices >= 0) & np.isfinite(scores) & (scores > 0)
    lists = [(indices[i][valid[i]], scores[i][valid[i]], {}) for i in range(len(user_pks))]
    policy = ExplorationPolicy.from_settings()
    if view is not None and policy.share > 0:
        lists = [exploration_insert(view, t, s, cold[i], policy,
                                    exploration_rng(build_id, user_pks[i]) if policy.randomised else None)
                 for i, (t, s, _) in enumerate(lists)]
    # Items mapped after the build have no column in the warm model: their explanation is their own.
    n_build = len(state.item_map)
    block = explanations_block(state, rows, [np.where(t < n_build, t, 0) for t, _, _ in lists])
    out: list[tuple] = []
    for i, (targets, picked_scores, explored) in enumerate(lists):
        if len(targets) == 0:
            continue
        explained = block[i] if block is not None else explanations(state, rows[i], np.where(targets < n_build,
                                                                                             targets, 0))
        user_db = db_ids[user_pks[i]]
        span = slice(rows.indptr[i], rows.indptr[i + 1])
        new = {} if view is None else new_explanations(
            view, rows.indices[span], rows.data[span], [t for t in targets.tolist() if view.new[t]], titles, explored,
            new_texts)
        for rank, (target, score, why) in enumerate(zip(targets.tolist(), picked_scores.tolist(), explained), 1):
            ct_id, object_id = key(target)
            # Same text as json.dumps(list of dicts): fragments joined with json's default ", ".
            text = new.get(target) or "[" + ", ".join(fragment(p) for p in why) + "]"
            out.append((build_id, user_db, ct_id, object_id, rank, float(score), text, source))
    return out
