"""Known-answer tests: tiny matrices whose similarities and rankings were worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms.topk import blockwise_topk, topk_sparse_rows
from recommendations.algorithms.content import ContentSimilarity
from recommendations.algorithms.graph import P3alpha, RP3beta
from recommendations.algorithms.hybrid import Auto, Hybrid, unit_scale
from recommendations.algorithms.knn import ItemKNN, UserKNN
from recommendations.algorithms.linear import EASE
from recommendations.algorithms.popularity import TopPop

# Users 0 and 1 read items 0 and 1; user 2 read items 1 and 2.
#   item 0: users {0, 1}; item 1: users {0, 1, 2}; item 2: user {2}.
TINY = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))


class TestItemKNNKnownAnswers:
    def test_cosine_without_shrink(self):
        model = ItemKNN(top_k=5, shrink=0).fit(TINY)
        c01 = 2 / np.sqrt(2 * 3)  # 0.8165: two common users, |i0| = sqrt 2, |i1| = sqrt 3
        c12 = 1 / np.sqrt(3 * 1)  # 0.5774
        expected = np.array([[0, c01, 0], [c01, 0, c12], [0, c12, 0]])
        np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5)

    def test_shrink_damps(self):
        model = ItemKNN(top_k=5, shrink=1).fit(TINY)
        assert model.similarity_[0, 1] == pytest.approx(2 / (np.sqrt(6) + 1 + 1e-6), rel=1e-5)

    def test_top_k_is_per_candidate_column(self):
        # top_k=1: item 0 keeps neighbour 1, item 1 keeps neighbour 0, item 2 keeps neighbour 1.
        model = ItemKNN(top_k=1).fit(TINY)
        S = model.similarity_.toarray()
        assert (S[:, 0] > 0).tolist() == [False, True, False]
        assert (S[:, 1] > 0).tolist() == [True, False, False]
        assert (S[:, 2] > 0).tolist() == [False, True, False]

    def test_tfidf_weights_users_by_inverse_activity(self):
        # Users: u0 = {0, 1}, u1 = {2, 3}, u2 = {0, 1, 2, 3}; TF-IDF on the transposed matrix
        # gives user weights idf = log(4 / (1 + n_items_of_user)): a = log(4/3), b = log(4/5).
        X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=np.float32))
        plain = ItemKNN(top_k=5).fit(X).similarity_.toarray()
        weighted = ItemKNN(top_k=5, feature_weighting="tfidf").fit(X).similarity_.toarray()
        a, b = np.log(4 / 3), np.log(4 / 5)
        assert plain[0, 2] == pytest.approx(0.5, rel=1e-5)  # one common user of two each
        assert weighted[0, 2] == pytest.approx(b * b / (a * a + b * b), rel=1e-4)  # 0.375
        assert weighted[0, 1] == pytest.approx(1.0, rel=1e-4)

    def test_known_ranking(self):
        model = ItemKNN(top_k=5).fit(TINY)
        history = sp.csr_matrix(np.array([[0, 1, 0]], dtype=np.float32))
        indices, scores = model.recommend(0, history, n=2)
        assert indices.tolist() == [0, 2]
        np.testing.assert_allclose(scores, [2 / np.sqrt(6), 1 / np.sqrt(3)], rtol=1e-5)

    def test_explain_names_the_biggest_contributor(self):
        model = ItemKNN(top_k=5).fit(TINY)
        history = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
        items, contributions = model.explain(history, 1)
        assert items.tolist() == [0, 2]
        np.testing.assert_allclose(contributions, [2 / np.sqrt(6), 1 / np.sqrt(3)], rtol=1e-5)

    def test_blockwise_equals_one_block(self):
        rng = np.random.default_rng(3)
        X = sp.csr_matrix((rng.random((60, 40)) < 0.2).astype(np.float32))
        one = ItemKNN(top_k=7, shrink=2, n_threads=1).fit(X).similarity_
        dense = X.T @ X
        dense = dense.toarray()
        norms = np.sqrt(np.diag(dense))
        S = dense / (np.outer(norms, norms) + 2 + 1e-6)
        np.fill_diagonal(S, 0)
        # brute force: per candidate i keep its top 7 (ties broken arbitrarily, so compare values)
        kept = np.sort(S, axis=1)[:, ::-1][:, :7]
        got = np.sort(one.T.toarray(), axis=1)[:, ::-1][:, :7]
        np.testing.assert_allclose(got, kept, rtol=1e-5, atol=1e-7)


def test_blockwise_topk_small_blocks_and_threads_match_brute_force():
    rng = np.random.default_rng(5)
    dense = rng.random((23, 17)).astype(np.float32)
    result = blockwise_topk(23, 17, lambda s, e: dense[s:e], k=4, n_threads=2, block_rows=5).toarray()
    for row in range(23):
        top = np.argsort(-dense[row])[:4]
        assert set(np.flatnonzero(result[row]).tolist()) == set(top.tolist())
        np.testing.assert_allclose(result[row, top], dense[row, top])


def test_topk_sparse_rows():
    M = sp.csr_matrix(np.array([[3, 1, 2, 0], [0, 0, 5, 4], [1, 0, 0, 0]], dtype=np.float32))
    out = topk_sparse_rows(M, 2).toarray()
    np.testing.assert_array_equal(out, [[3, 0, 2, 0], [0, 0, 5, 4], [1, 0, 0, 0]])


def _topk_by_sorting(M: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Reference: each row's stored values sorted by value (stable, so ties go to the lower column)."""
    M = sp.csr_matrix(M)
    M.sort_indices()
    keep = []
    for row in range(M.shape[0]):
        start, stop = M.indptr[row], M.indptr[row + 1]
        keep += sorted(start + np.argsort(-M.data[start:stop], kind="stable")[:k])
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[keep]
    return sp.csr_matrix((M.data[keep], (rows, M.indices[keep])), shape=M.shape)  # stored zeros stay stored


def test_topk_sparse_rows_keeps_the_lower_columns_of_ties_like_a_stable_sort():
    rng = np.random.default_rng(0)
    for trial in range(60):
        M = sp.random(int(rng.integers(1, 30)), int(rng.integers(1, 40)), density=float(rng.random()),
                      random_state=trial, dtype=np.float32, format="csr")
        M.data = np.round(M.data * 3) / 3 - (0.5 if trial % 2 else 0.0)  # many ties, some negative values
        if trial % 3 == 0:
            M.data[rng.random(M.data.size) < 0.3] = -np.inf
        k = int(rng.integers(1, 12))
        out, expected = topk_sparse_rows(M, k), _topk_by_sorting(M, k)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.indptr, expected.indptr)
        np.testing.assert_array_equal(out.indices, expected.indices)
        np.testing.assert_array_equal(out.data, expected.data)


class TestGraphKnownAnswers:
    # Hand computation for TINY with alpha = 1:
    #   P_ui (rows L1): u0 = u1 = [.5, .5, 0], u2 = [0, .5, .5]
    #   P_iu (item -> user, L1): i0 = [.5, .5, 0], i1 = [1/3, 1/3, 1/3], i2 = [0, 0, 1]
    #   P = P_iu @ P_ui: i0 = [.5, .5, 0], i1 = [1/3, 1/2, 1/6], i2 = [0, .5, .5]
    def test_p3alpha(self):
        S = P3alpha(alpha=1.0, top_k=5).fit(TINY).similarity_.toarray()
        np.testing.assert_allclose(S, [[0, 0.5, 0], [1 / 3, 0, 1 / 6], [0, 0.5, 0]], rtol=1e-5)

    def test_rp3beta(self):
        # beta = .5: columns times pop^-.5 = [1/sqrt2, 1/sqrt3, 1]; diagonal 0; rows L1-normalised.
        #   i1 = [1/3 / sqrt2, 0, 1/6] -> [0.5858, 0, 0.4142]; i0 and i2 -> [0, 1, 0].
        S = RP3beta(alpha=1.0, beta=0.5, top_k=5).fit(TINY).similarity_.toarray()
        a = (1 / 3) / np.sqrt(2)
        expected = [[0, 1, 0], [a / (a + 1 / 6), 0, (1 / 6) / (a + 1 / 6)], [0, 1, 0]]
        np.testing.assert_allclose(S, expected, rtol=1e-5)

    def test_rp3beta_alpha_exponent(self):
        S = RP3beta(alpha=2.0, beta=0.0, top_k=5, normalize_similarity=False).fit(TINY).similarity_.toarray()
        # alpha = 2 squares every transition: i0 -> i1 = .5^2 * .5^2 + .5^2 * .5^2 = 0.125
        assert S[0, 1] == pytest.approx(0.125, rel=1e-5)

    def test_rp3beta_column_top_k(self):
        # top_k=1 per row then per column: column 1 receives from i0 and i2 (both 1.0) and keeps one.
        S = RP3beta(alpha=1.0, beta=0.5, top_k=1).fit(TINY).similarity_.toarray()
        assert (S[:, 1] > 0).sum() == 1
        assert (S > 0).sum(axis=0).max() <= 1


class TestEASEKnownAnswers:
    def test_matches_closed_form(self):
        rng = np.random.default_rng(1)
        X = (rng.random((40, 12)) < 0.3).astype(np.float64)
        lam = 3.0
        P = np.linalg.inv(X.T @ X + lam * np.eye(12))
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        model = EASE(l2_norm=lam).fit(sp.csr_matrix(X.astype(np.float32)))
        np.testing.assert_allclose(model.coef_, B, rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(model.similarity_.toarray(), B, rtol=1e-3, atol=1e-5)

    def test_fewer_users_than_items_solves_the_dual_with_the_same_answer(self, monkeypatch):
        from recommendations.algorithms import linear

        dual_calls = []
        real = linear._ease_dual
        monkeypatch.setattr(linear, "_ease_dual", lambda *a, **k: dual_calls.append(a[0].shape) or real(*a, **k))
        rng = np.random.default_rng(2)
        X = (rng.random((15, 50)) < 0.2).astype(np.float64)
        X[:, 3] = 1.0  # an item every user has: 1 - H_jj is smallest there
        lam = 2.0
        P = np.linalg.inv(X.T @ X + lam * np.eye(50))
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        model = EASE(l2_norm=lam).fit(sp.csr_matrix(X.astype(np.float32)))
        assert dual_calls == [(15, 50)]
        np.testing.assert_allclose(model.coef_, B, rtol=1e-4, atol=1e-6)
        pruned = EASE(l2_norm=lam, top_k=5).fit(sp.csr_matrix(X.astype(np.float32)))
        assert (pruned.similarity_.toarray() != 0).sum(axis=0).max() <= 5

    def test_pruning_column_blocks_keeps_what_pruning_the_whole_matrix_keeps(self):
        from recommendations.algorithms.base import topk_sparse_rows
        from recommendations.algorithms.linear import topk_columns

        rng = np.random.default_rng(3)
        B = rng.standard_normal((23, 23)).astype(np.float32)
        np.fill_diagonal(B, 0.0)
        whole = sp.csr_matrix(topk_sparse_rows(sp.csr_matrix(B.T), 4).T)
        for block in (1, 5, 64):
            assert (topk_columns(B, 4, block=block) != whole).nnz == 0

    @pytest.mark.parametrize("seed", range(4))
    def test_the_dense_selection_keeps_exactly_what_the_sparse_selection_keeps(self, seed):
        from recommendations.algorithms.base import topk_sparse_rows
        from recommendations.algorithms.linear import topk_columns

        rng = np.random.default_rng(seed)
        # few distinct values (ties at the k-th), many zeros, negatives, and columns with fewer than k nonzeros
        B = (rng.integers(-3, 4, (40, 70)) * (rng.random((40, 70)) < 0.6)).astype(np.float32)
        B[:, :5] = 0.0
        B[:3, 5] = 2.0
        if seed == 3:
            B[7, 9] = np.inf  # a block with an infinity takes the sparse selection
        for k in (1, 4, 30, 45):
            whole = sp.csr_matrix(topk_sparse_rows(sp.csr_matrix(B.T), k).T)
            for block in (7, 512):
                got = topk_columns(B, k, block=block)
                assert got.shape == whole.shape and got.nnz == whole.nnz
                assert np.array_equal(got.indptr, whole.indptr) and np.array_equal(got.indices, whole.indices)
                assert np.array_equal(got.data, whole.data)

    def test_refuses_big_catalogue_with_clear_message(self):
        with pytest.raises(ValueError, match=r"max_items=2.*rp3beta"):
            EASE(max_items=2).fit(TINY)

    def test_top_k_sparsifies_columns(self):
        rng = np.random.default_rng(1)
        X = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))
        model = EASE(l2_norm=3.0, top_k=3).fit(X)
        assert model.coef_ is None
        assert (model.similarity_.toarray() != 0).sum(axis=0).max() <= 3


def test_toppop_ranking():
    X = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float32))
    model = TopPop().fit(X)
    np.testing.assert_array_equal(model.item_popularity_, [1, 2, 3, 1])
    indices, scores = model.recommend(0, sp.csr_matrix((1, 4), dtype=np.float32), n=2)
    assert indices.tolist() == [2, 1] and scores.tolist() == [3.0, 2.0]


def test_userknn_known_answer():
    # User 0 = {0, 1}; its only neighbour with top_k=1 is user 1 = {0, 1, 2} (cos 2/sqrt6)
    # rather than user 2 = {3} (cos 0), so item 2 is recommended with score 2/sqrt6.
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32))
    model = UserKNN(top_k=1).fit(X)
    indices, scores = model.recommend(0, X[0], n=1)
    assert indices.tolist() == [2]
    assert scores[0] == pytest.approx(2 / np.sqrt(6), rel=1e-5)
    # Without the row index the user itself is a neighbour; it adds only to seen items.
    indices, _ = model.recommend(-1, X[0], n=1)
    assert indices.tolist() == [2]


TEXTS = [
    "apple banana fruit salad",
    "banana apple smoothie fruit",
    "dog cat pets at home",
    "cat dog pets and their food",
    "",
]


class TestContentSimilarity:
    def test_neighbours_follow_shared_words(self):
        model = ContentSimilarity(top_k=1, ngram_range=(1, 1)).fit(TEXTS)
        assert model.similar_items(0, n=3)[0].tolist() == [1]
        assert model.similar_items(2, n=3)[0].tolist() == [3]
        assert model.similar_items(4, n=3)[0].tolist() == []
        S = model.similarity_
        assert S.shape == (5, 5) and S.diagonal().sum() == 0
        assert np.diff(S.indptr).max() <= 1

    def test_save_load(self, tmp_path):
        model = ContentSimilarity(top_k=2).fit(TEXTS)
        model.save(tmp_path / "content.npz")
        loaded = ContentSimilarity.load(tmp_path / "content.npz")
        assert (loaded.similarity_ != model.similarity_).nnz == 0
        assert loaded.get_params() == model.get_params()


class TestHybrid:
    # Items 0-3 have interactions; item 4 is cold but its text matches items 0 and 1.
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=np.float32))
    texts = ["apple banana", "banana apple fruit", "dog cat", "cat dog pets", "apple banana fruit"]

    def test_cold_item_reached_through_content(self):
        history = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
        plain = Hybrid(collaborative="itemknn", content_weight=0.0).fit(self.X, item_texts=self.texts)
        blended = Hybrid(collaborative="itemknn", content_weight=0.5).fit(self.X, item_texts=self.texts)
        assert 4 not in plain.recommend(0, history, n=1)[0].tolist()
        assert blended.recommend(0, history, n=2)[0].tolist() == [1, 4]

    def test_cold_user_gets_popularity(self):
        model = Hybrid(collaborative="itemknn", content_weight=0.5).fit(self.X, item_texts=self.texts)
        indices, _ = model.recommend(-1, sp.csr_matrix((1, 5), dtype=np.float32), n=4)
        assert set(indices.tolist()) == {0, 1, 2, 3}

    def test_non_item_based_collaborative(self):
        model = Hybrid(
            collaborative="ials",
            collaborative_params={"factors": 4, "iterations": 3},
            content_weight=1.0,
        ).fit(self.X, item_texts=self.texts)
        assert not model.item_based
        history = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
        assert 4 in model.recommend(0, history, n=2)[0].tolist()


class TestAuto:
    def test_similarity_is_weighted_sum_of_unit_scaled_components(self):
        rng = np.random.default_rng(2)
        X = sp.csr_matrix((rng.random((50, 20)) < 0.25).astype(np.float32))
        params = {
            "rp3beta": {"alpha": 0.7, "beta": 0.2, "top_k": 8},
            "itemknn": {"top_k": 8, "shrink": 2.0},
            "ease": {"l2_norm": 10.0, "top_k": 8},
        }
        model = Auto(**params, weights={"rp3beta": 1.0, "ease": 0.5, "itemknn": 0.25}).fit(X)
        assert model.item_based
        expected = (
            unit_scale(RP3beta(**params["rp3beta"]).fit(X).similarity_)[0]
            + 0.5 * unit_scale(EASE(**params["ease"]).fit(X).similarity_)[0]
            + 0.25 * unit_scale(ItemKNN(**params["itemknn"]).fit(X).similarity_)[0]
        )
        np.testing.assert_allclose(model.similarity_.toarray(), expected.toarray(), rtol=1e-4, atol=1e-6)
        assert model.components_.tolist() == ["rp3beta", "ease", "itemknn"]

    def test_item_similarity_is_the_one_name_and_similarity_stays_for_item_only_blends(self, tmp_path):
        from recommendations.algorithms import load_model

        rng = np.random.default_rng(6)
        X = sp.csr_matrix((rng.random((40, 15)) < 0.3).astype(np.float32))
        parts = {"rp3beta": {"top_k": 5}, "itemknn": {"top_k": 5}, "ials": {"factors": 4, "iterations": 2}}
        blend = Auto(**parts, weights={"rp3beta": 1.0, "ials": 0.1}).fit(X)
        assert blend.item_similarity_.shape == (15, 15) and not blend.item_based
        assert getattr(blend, "similarity_", None) is None
        item_only = Auto(**parts, weights={"rp3beta": 1.0, "itemknn": 0.5}).fit(X)
        assert item_only.similarity_ is item_only.item_similarity_
        knn = ItemKNN(top_k=5).fit(X)
        assert knn.item_similarity_ is knn.similarity_
        blend.save(tmp_path / "auto.npz")
        loaded = load_model(tmp_path / "auto.npz")
        assert (loaded.item_similarity_ != blend.item_similarity_).nnz == 0
        with pytest.raises(AttributeError, match="not fitted"):
            Auto().item_similarity_

    def test_defaults_blend_rp3beta_itemknn_and_ials(self):
        model = Auto()
        assert model.component_weights(100) == {"rp3beta": 1.0, "itemknn": 0.5, "ease": 0.5, "ials": 0.05}

    def test_ease_similarity_can_be_replaced_by_a_pruned_matrix(self):
        model = EASE(l2_norm=1.0).fit(TINY)
        model.similarity_ = topk_sparse_rows(model.similarity_, 1)
        assert model.coef_ is None and model.similarity_.nnz <= 3
        np.testing.assert_allclose(model.score(TINY), (TINY @ model.similarity_).toarray())

    def test_needs_an_item_component(self):
        with pytest.raises(ValueError, match="at least one"):
            Auto(weights={"ials": 1.0}).fit(TINY)

    def test_big_catalogue_falls_back_to_rp3beta_and_itemknn(self):
        model = Auto(
            rp3beta={"top_k": 3}, itemknn={"top_k": 3}, ease={"l2_norm": 1.0},
            weights={"rp3beta": 1.0, "ease": 1.0}, ease_max_items=2,
        ).fit(TINY)
        assert model.components_.tolist() == ["rp3beta", "itemknn"]
        np.testing.assert_allclose(model.effective_weights_, [1.0, 1.0])

    def test_unknown_component_rejected(self):
        with pytest.raises(ValueError, match="unknown components"):
            Auto(weights={"svd": 1.0}).fit(TINY)

    def test_ials_fitted_in_a_second_thread_gives_the_same_model(self, monkeypatch):
        import threading

        from recommendations.algorithms import factorization

        rng = np.random.default_rng(4)
        X = sp.csr_matrix((rng.random((60, 30)) < 0.2).astype(np.float32))
        params = {"rp3beta": {"top_k": 8}, "itemknn": {"top_k": 8}, "ials": {"factors": 8, "iterations": 3},
                  "weights": {"rp3beta": 1.0, "itemknn": 0.5, "ials": 0.2}, "random_state": 3}
        threads = []
        real_fit = factorization.IALS.fit

        def fit(self, user_items):
            threads.append(threading.current_thread() is threading.main_thread())
            return real_fit(self, user_items)

        monkeypatch.setattr(factorization.IALS, "fit", fit)
        serial = Auto(**params, n_threads=1).fit(X)
        overlapped = Auto(**params, n_threads=2).fit(X)
        assert threads == [True, False]
        np.testing.assert_array_equal(serial.factor_model_.item_factors_, overlapped.factor_model_.item_factors_)
        assert (serial.item_similarity_ != overlapped.item_similarity_).nnz == 0
        np.testing.assert_array_equal(serial.score(X), overlapped.score(X))

    def test_a_failing_ials_fit_in_its_thread_is_raised_by_fit(self, monkeypatch):
        from recommendations.algorithms import factorization

        def fit(self, user_items):
            raise MemoryError("factors too big")

        monkeypatch.setattr(factorization.IALS, "fit", fit)
        with pytest.raises(MemoryError, match="factors too big"):
            Auto(weights={"rp3beta": 1.0, "ials": 0.1}, n_threads=2).fit(TINY)


class TestItemKNNHistoryNeighbourhood:
    def test_top_k_is_per_history_row(self):
        # top_k=1, row-wise: item 0 keeps 1, item 1 keeps 0 (0.8165 > 0.5774), item 2 keeps 1.
        S = ItemKNN(top_k=1, neighbourhood="history").fit(TINY).similarity_.toarray()
        assert (S > 0).tolist() == [[False, True, False], [True, False, False], [False, True, False]]

    def test_rows_are_the_brute_force_top_k(self):
        rng = np.random.default_rng(5)
        X = sp.csr_matrix((rng.random((80, 30)) < 0.25) * rng.random((80, 30)), dtype=np.float32)
        got = ItemKNN(top_k=6, shrink=3, neighbourhood="history", n_threads=1).fit(X).similarity_.toarray()
        dense = (X.T @ X).toarray().astype(np.float64)
        norms = np.sqrt(np.diag(dense))
        S = dense / (np.outer(norms, norms) + 3 + 1e-6)
        np.fill_diagonal(S, 0)
        assert ((got > 0).sum(axis=1) <= 6).all()
        kept = np.sort(S, axis=1)[:, ::-1][:, :6]
        np.testing.assert_allclose(np.sort(got, axis=1)[:, ::-1][:, :6], kept, rtol=1e-5, atol=1e-7)
        # the candidate default keeps the same values column-wise
        cand = ItemKNN(top_k=6, shrink=3, n_threads=1).fit(X).similarity_.toarray()
        np.testing.assert_allclose(np.sort(cand.T, axis=1)[:, ::-1][:, :6], kept, rtol=1e-5, atol=1e-7)

    def test_ties_keep_the_lowest_item_index(self):
        # One user holds all five items: every pair has the same cosine.
        X = sp.csr_matrix(np.ones((1, 5), dtype=np.float32))
        S = ItemKNN(top_k=2, neighbourhood="history", n_threads=1).fit(X).similarity_
        assert [S[i].indices.tolist() for i in range(5)] == [[1, 2], [0, 2], [0, 1], [0, 1], [0, 1]]
        assert S.has_sorted_indices

    def test_exact_path_matches_a_brute_force_with_ties(self, monkeypatch):
        # Binary data: many exact ties at the k-th value, kept lowest item index first.
        from recommendations.algorithms import knn

        monkeypatch.setattr(knn, "_history_topk_fast", lambda *args: None)  # the scipy path
        rng = np.random.default_rng(6)
        X = sp.csr_matrix((rng.random((60, 40)) < 0.15).astype(np.float32))
        got = ItemKNN(top_k=5, neighbourhood="history", n_threads=2).fit(X).similarity_
        item_users = sp.csr_matrix(X.T)
        squares = np.asarray(item_users.multiply(item_users).sum(axis=1), dtype=np.float64).ravel()
        norms = np.sqrt(squares).astype(np.float32)  # as fit computes them: same float32 values
        dense = (item_users @ X).toarray().astype(np.float32)
        dense /= np.outer(norms, norms) + np.float32(1e-6)
        np.fill_diagonal(dense, 0)
        order = np.lexsort((np.broadcast_to(np.arange(40), dense.shape), -dense), axis=1)[:, :5]
        expected = np.zeros_like(dense)
        rows = np.arange(40)[:, None]
        expected[rows, order] = dense[rows, order]
        assert (np.sort(dense, axis=1)[:, -5] == np.sort(dense, axis=1)[:, -6]).sum() > 5  # ties at the 5th
        np.testing.assert_array_equal(got.toarray(), expected)

    def test_equals_implicit_cosine_recommender(self):
        # implicit counts the item itself among its K neighbours, so its K equals our top_k + 1.
        implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
        rng = np.random.default_rng(8)
        X = sp.csr_matrix((rng.random((300, 50)) < 0.2) * rng.random((300, 50)), dtype=np.float32)
        theirs = implicit_nn.CosineRecommender(K=6)
        theirs.fit(X, show_progress=False)
        expected = theirs.similarity.toarray()
        np.fill_diagonal(expected, 0)
        ours = ItemKNN(top_k=5, neighbourhood="history").fit(X)
        np.testing.assert_allclose(ours.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)
        users = np.arange(X.shape[0])
        their_items, _ = theirs.recommend(users, X, N=10, filter_already_liked_items=True)
        our_items, _ = ours.recommend_all(X, n=10)
        np.testing.assert_array_equal(our_items, their_items)

    def test_unknown_neighbourhood_is_refused(self):
        with pytest.raises(ValueError, match="neighbourhood"):
            ItemKNN(neighbourhood="rows").fit(TINY)

    def test_default_is_candidate(self):
        assert ItemKNN().neighbourhood == "candidate"
        model = ItemKNN(top_k=1).fit(TINY)
        np.testing.assert_array_equal(
            model.similarity_.toarray(), ItemKNN(top_k=1, neighbourhood="candidate").fit(TINY).similarity_.toarray()
        )


class TestItemKNNHistoryFastPath:
    """The sparse_dot_topn superset + certificate path equals the exact scipy path."""

    @staticmethod
    def _both(monkeypatch, X, **params):
        from recommendations.algorithms import knn

        assert knn._product_is_dense(X)  # so the fit below takes the sparse_dot_topn path
        fast = ItemKNN(neighbourhood="history", **params).fit(X).similarity_
        with monkeypatch.context() as patch:
            patch.setattr(knn, "_history_topk_fast", lambda *args: None)
            exact = ItemKNN(neighbourhood="history", **params).fit(X).similarity_
        return fast.toarray(), exact.toarray()

    @pytest.mark.parametrize("shrink", [0.0, 2.0, 50.0])
    @pytest.mark.parametrize("binary", [True, False])
    def test_same_neighbours_as_the_exact_path(self, monkeypatch, shrink, binary):
        pytest.importorskip("sparse_dot_topn")
        rng = np.random.default_rng(11)
        mask = rng.random((400, 150)) < 0.1
        X = sp.csr_matrix(mask * (1.0 if binary else rng.random((400, 150))), dtype=np.float32)
        fast, exact = self._both(monkeypatch, X, top_k=4, shrink=shrink)
        # Ties at the k-th place may keep a different item: compare the sorted kept values per row.
        np.testing.assert_allclose(np.sort(fast, axis=1), np.sort(exact, axis=1), rtol=1e-5, atol=1e-7)
        if not binary:  # no ties: the very same items
            np.testing.assert_array_equal(fast > 0, exact > 0)

    def test_uncertified_rows_are_recomputed(self):
        pytest.importorskip("sparse_dot_topn")
        from recommendations.algorithms.knn import _history_topk_fast

        # Binary data with many tied cosines at the boundary, and a large shrink: some rows
        # cannot be certified from the superset and must be sent back to the exact path.
        rng = np.random.default_rng(4)
        item_users = sp.csr_matrix((rng.random((150, 400)) < 0.05).astype(np.float32))
        norms = np.sqrt(np.asarray(item_users.multiply(item_users).sum(axis=1)).ravel()).astype(np.float32)
        _, redo = _history_topk_fast(item_users, norms, 100.0, 4, 1)
        assert redo.size > 0
        # Without shrink and without ties, rows are certified from the superset.
        weighted = item_users.multiply(rng.random(item_users.shape)).tocsr().astype(np.float32)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel()).astype(np.float32)
        _, redo = _history_topk_fast(weighted, norms, 0.0, 4, 1)
        assert redo.size < 150 // 2

    def test_dense_product_rule(self):
        from recommendations.algorithms.knn import _product_is_dense

        # 3 users x 10 items each over 100 items: 300 multiply-adds / 100 items = 3 per row < 50.
        sparse_rows = sp.csr_matrix(np.kron(np.eye(10, dtype=np.float32), np.ones((1, 10), dtype=np.float32))[:3])
        sparse_rows = sp.csr_matrix((sparse_rows.data, sparse_rows.indices, sparse_rows.indptr), shape=(3, 100))
        assert not _product_is_dense(sparse_rows)
        assert _product_is_dense(sp.csr_matrix(np.ones((60, 100), dtype=np.float32)))

    def test_without_sparse_dot_topn_the_scipy_path_runs(self, monkeypatch):
        import builtins

        real_import = builtins.__import__

        def no_sdt(name, *args, **kwargs):
            if name.startswith("sparse_dot_topn"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_sdt)
        S = ItemKNN(top_k=1, neighbourhood="history").fit(TINY).similarity_.toarray()
        assert (S > 0).tolist() == [[False, True, False], [True, False, False], [False, True, False]]
