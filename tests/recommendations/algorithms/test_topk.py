"""Fast top-k paths give the same answers as the plain ones (ties, -inf, zeros, long rows)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import base, products
from recommendations.algorithms.products import sparse_dot_split, split_heavy_rows
from recommendations.algorithms.topk import topk_block, topk_dense_rows, topn_rows, topn_sparse_rows
from recommendations.algorithms.knn import ItemKNN


def _reference_topk(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row by a full stable sort: value descending, lowest column first on ties."""
    order = np.lexsort((np.broadcast_to(np.arange(block.shape[1]), block.shape), -block), axis=1)[:, :k]
    return order, np.take_along_axis(block, order, axis=1)


@pytest.mark.parametrize("kind", ["uniform", "integer_ties", "mostly_zero", "neg_inf", "all_equal", "some_rows_sparse"])
@pytest.mark.parametrize("shape,k", [((7, 2000), 10), ((5, 1001), 3), ((3, 650), 20), ((4, 97), 2)])
def test_topk_dense_rows_matches_full_sort(kind, shape, k):
    rng = np.random.default_rng(len(kind) * 100 + shape[1])
    block = rng.random(shape).astype(np.float32)
    if kind == "integer_ties":
        block = rng.integers(0, 3, shape).astype(np.float32)
    elif kind == "mostly_zero":
        block[rng.random(shape) < 0.95] = 0.0
    elif kind == "neg_inf":
        block[rng.random(shape) < 0.9] = -np.inf
        block[0, :] = -np.inf
    elif kind == "all_equal":
        block[:] = 1.0
    elif kind == "some_rows_sparse":  # a few positives in a row of zeros, next to ordinary rows
        sparse_rows = np.arange(0, shape[0], 2)
        block[sparse_rows] = 0.0
        block[sparse_rows, rng.integers(0, shape[1], sparse_rows.size)] = 0.5
        block[sparse_rows, rng.integers(0, shape[1], sparse_rows.size)] = -np.inf
    indices, values = topk_dense_rows(block, k)
    expected_indices, expected_values = _reference_topk(block, k)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(indices, expected_indices)


def test_split_heavy_rows_product_equals_sparse_product():
    rng = np.random.default_rng(3)
    M = sp.random(60, 300, density=0.05, random_state=4, format="csr", dtype=np.float32).toarray()
    M[:3] = rng.random((3, 300)).astype(np.float32)  # three full rows
    M = sp.csr_matrix(M)
    X = sp.random(25, 60, density=0.2, random_state=5, format="csr", dtype=np.float32)
    heavy, dense, light = split_heavy_rows(M, fraction=0.5)
    assert heavy.tolist() == [0, 1, 2] and dense.shape == (3, 300)
    assert light[:3].nnz == 0 and light.nnz == M.nnz - M[:3].nnz
    np.testing.assert_allclose(sparse_dot_split(X, heavy, dense, light), (X @ M).toarray(), rtol=1e-5, atol=1e-6)
    # the memory budget keeps only the longest rows
    heavy, dense, _ = split_heavy_rows(M, fraction=0.01, budget_bytes=2 * 4 * 300)
    assert heavy.size == 2


@pytest.mark.parametrize("fraction", [1.0, 0.05])
def test_item_based_topn_equals_dense_scoring(monkeypatch, fraction):
    """recommend_all (dense rows split off or not) == top-n of the masked dense scores."""
    monkeypatch.setattr(products, "HEAVY_ROW_FRACTION", fraction)
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, 401) ** 0.8
    dense = (rng.random((300, 400)) < 0.2 * popularity / popularity.mean()).astype(np.float32)
    dense[5] = 0  # an empty history: popularity fallback
    X = sp.csr_matrix(dense)
    model = ItemKNN(top_k=30).fit(X)
    heavy = model._topn_plan(model.similarity_)[2]
    assert (heavy.size > 0) == (fraction < 1.0)
    indices, scores = model.recommend_all(X, n=10, batch_size=64)
    expected_indices, expected_scores = topn_rows(model._scores_block(X, None, True), 10)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    same = np.all(indices == expected_indices, axis=1)
    # rows may differ only where float32 rounding reorders equal-looking scores
    for row in np.flatnonzero(~same):
        assert np.allclose(np.sort(scores[row]), np.sort(expected_scores[row]), rtol=1e-5)
    assert same.mean() > 0.95


def test_topn_plan_follows_a_new_similarity():
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float32))
    model = ItemKNN(top_k=3).fit(X)
    first = model.recommend_all(X, n=2)[0]
    model.similarity_ = sp.csr_matrix(np.eye(4, k=1, dtype=np.float32))  # item j points to j + 1 only
    second = model.recommend_all(X, n=1)[0]
    assert second[:, 0].tolist() == [2, 3, 0]  # user 2 has no positive score: popularity fallback
    assert not np.array_equal(first[:, :1], second)


def _random_csr(rng, shape, density, negative=False, integer=False):
    values = rng.integers(1, 4, shape) if integer else rng.random(shape)
    if negative:
        values = values - 0.3
    dense = (rng.random(shape) < density) * values
    dense[rng.integers(0, shape[0])] = 0  # an empty row
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("negative", [False, True])
def test_sparse_matmul_equals_scipy_product(negative):
    rng = np.random.default_rng(7)
    A = _random_csr(rng, (40, 70), 0.1, negative)
    B = _random_csr(rng, (70, 90), 0.08, negative)
    got, expected = products.sparse_matmul(A, B), sp.csr_matrix(A @ B)
    assert got.dtype == np.float32 and got.shape == (40, 90)
    # the very same entries in the very same order as scipy's own product
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.data, expected.data)
    # products that cancel to 0 are dropped, as scipy does
    ones = sp.csr_matrix(np.array([[1.0, 1.0]], dtype=np.float32))
    cancel = sp.csr_matrix(np.array([[1.0], [-1.0]], dtype=np.float32))
    assert products.sparse_matmul(ones, cancel).nnz == 0
    assert products.sparse_matmul(sp.csr_matrix((3, 4), dtype=np.float32), B[:4]).nnz == 0


@pytest.mark.parametrize("kind", ["uniform", "integer_ties", "with_negatives"])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_topn_sparse_rows_equals_dense_topn(kind, exclude_seen):
    rng = np.random.default_rng(len(kind) + exclude_seen)
    scores = _random_csr(rng, (60, 400), 0.08, negative=kind == "with_negatives", integer=kind == "integer_ties")
    seen = _random_csr(rng, (60, 400), 0.05) if exclude_seen else None
    dense = scores.toarray()
    if seen is not None:
        dense[seen.toarray() != 0] = -np.inf
    expected_indices, expected_values = topn_rows(dense, 10)
    indices, values, short = topn_sparse_rows(scores.copy(), seen, 10)
    np.testing.assert_array_equal(short, ~(expected_values[:, -1] > 0))
    assert short.any() and not short.all()
    np.testing.assert_array_equal(indices[~short], expected_indices[~short])
    np.testing.assert_array_equal(values[~short], expected_values[~short])


def test_item_based_topn_sparse_and_dense_paths_agree(monkeypatch):
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((300, 400)) < 0.03).astype(np.float32))  # binary: many tied scores
    model = ItemKNN(top_k=8, neighbourhood="history").fit(X)
    assert model._topn_plan(model.similarity_)[2].size == 0  # no dense rows: the sparse path is eligible
    monkeypatch.setattr(base, "SPARSE_SCORES_FRACTION", 0.0)
    dense = model.recommend_all(X, n=10, batch_size=50)
    monkeypatch.setattr(base, "SPARSE_SCORES_FRACTION", 1.0)
    sparse = model.recommend_all(X, n=10, batch_size=50)
    np.testing.assert_array_equal(sparse[0], dense[0])
    np.testing.assert_array_equal(sparse[1], dense[1])
    assert (dense[0] == -1).sum() == 0  # every user got 10 items (popularity fills the short rows)


@pytest.mark.parametrize("ties", ["lowest", "partition"])
def test_topk_block_sparse_and_dense_keep_the_same_values(ties):
    rng = np.random.default_rng(8)
    dense = rng.integers(0, 4, (30, 50)).astype(np.float32)  # many ties, many zeros
    exclude = rng.integers(0, 50, 30)
    from_dense = topk_block(dense, 6, exclude, ties=ties)
    from_sparse = topk_block(sp.csr_matrix(dense), 6, exclude, ties=ties)
    for got in (from_dense, from_sparse):
        assert np.diff(got.indptr).max() <= 6 and (got.data != 0).all()
        assert not got[np.arange(30), exclude].any()
        assert got.has_sorted_indices
    # the kept values are each row's best six (which of the tied columns depends on the rule)
    expected = -np.sort(-np.where(np.arange(50) == exclude[:, None], 0, dense), axis=1)[:, :6]
    for got in (from_dense, from_sparse):
        kept = -np.sort(-got.toarray(), axis=1)[:, :6]
        np.testing.assert_array_equal(kept, expected)
    if ties == "lowest":
        assert (from_dense != from_sparse).nnz == 0
        reference = np.where(np.arange(50) == exclude[:, None], 0, dense)
        cols, _ = _reference_topk(reference, 6)
        for row in range(30):
            wanted = [c for c in cols[row] if reference[row, c] != 0]
            assert sorted(wanted) == from_dense[row].indices.tolist()


@pytest.mark.parametrize("shape,k", [((6, 40), 10), ((5, 12), 11), ((3, 9), 9)])
def test_topk_dense_rows_short_rows_keep_the_lowest_tied_columns(shape, k):
    block = np.random.default_rng(1).integers(0, 2, shape).astype(np.float32)
    indices, values = topk_dense_rows(block, k)
    expected_indices, expected_values = _reference_topk(block, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values)


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_toppop_recommend_all_needs_no_users_by_items_block(monkeypatch, exclude_seen):
    from recommendations.algorithms.popularity import TopPop

    rng = np.random.default_rng(9)
    dense = (rng.random((300, 80)) < 0.1 * (1 + (np.arange(80) % 7 == 0) * 4)).astype(np.float32)
    dense[4] = 0  # an empty history
    dense[5] = 1  # a user who has seen everything
    X = sp.csr_matrix(dense)
    model = TopPop().fit(X)
    expected = topn_rows(model._scores_block(X, None, exclude_seen), 10)

    def no_dense_block(*args, **kwargs):
        raise AssertionError("TopPop built a users x items score block")

    monkeypatch.setattr(TopPop, "_score", no_dense_block)
    monkeypatch.setattr(TopPop, "_scores_block", no_dense_block)
    indices, scores = model.recommend_all(X, n=10, exclude_seen=exclude_seen, batch_size=64)
    np.testing.assert_array_equal(indices, expected[0])
    np.testing.assert_array_equal(scores, expected[1])
