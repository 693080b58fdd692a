"""Tests for weighting functions and the IndexMap / user_items builder."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms.matrices import IndexMap, build_user_items
from recommendations.algorithms.weighting import bm25_weight, normalize, tfidf_weight

X = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0], [1, 1, 0], [0, 0, 4]], dtype=np.float32))


def test_tfidf_by_hand():
    W = tfidf_weight(X).toarray()
    idf = np.log(4 / (1 + np.array([2, 2, 2])))
    expected = np.sqrt(X.toarray()) * idf[None, :]
    np.testing.assert_allclose(W, expected, rtol=1e-6)
    assert W.dtype == np.float32


def test_bm25_matches_implicit():
    from implicit.nearest_neighbours import bm25_weight as implicit_bm25

    ours = bm25_weight(X, K1=1.2, B=0.75).toarray()
    theirs = implicit_bm25(sp.coo_matrix(X), K1=1.2, B=0.75).toarray()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_bm25_rejects_bad_parameters():
    with pytest.raises(ValueError):
        bm25_weight(X, K1=0)


def test_normalize_rows():
    N = normalize(sp.vstack([X, sp.csr_matrix((1, 3), dtype=np.float32)]))
    norms = np.sqrt(np.asarray(N.multiply(N).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, [1, 1, 1, 1, 0], rtol=1e-6)


def test_index_map_round_trip_with_tuple_keys():
    index = IndexMap([(12, 1), (12, 7), "x"])
    assert index.position((12, 7)) == 1 and index.key(2) == "x"
    assert index.add((12, 1)) == 0 and len(index) == 3
    assert (12, 7) in index and index.get("missing") is None
    assert index.keys() == [(12, 1), (12, 7), "x"]


def test_build_user_items_sums_duplicates_and_extends_maps():
    items = IndexMap(["a", "b", "c"])
    matrix, users, items = build_user_items(
        [("u1", "b", 1.0), ("u2", "a", 2.0), ("u1", "b", 0.5), ("u2", "d", 1.0)], item_map=items
    )
    assert matrix.shape == (2, 4) and matrix.dtype == np.float32
    assert users.keys() == ["u1", "u2"] and items.keys() == ["a", "b", "c", "d"]
    np.testing.assert_allclose(matrix.toarray(), [[0, 1.5, 0, 0], [2, 0, 0, 1]])
