"""Contract checks shared by every estimator in the registry (one mixin, many estimators)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import ALGORITHMS, get_estimator, load_model

from .synthetic import checkerboard, random_user_items

# Small, fast parameters per registry name; every registry entry must be listed here.
FAST_PARAMS = {
    "toppop": {},
    "itemknn": {"top_k": 10, "shrink": 1.0, "feature_weighting": "tfidf"},
    "userknn": {"top_k": 8, "shrink": 1.0, "feature_weighting": "bm25"},
    "p3alpha": {"alpha": 0.8, "top_k": 10},
    "rp3beta": {"alpha": 0.8, "beta": 0.3, "top_k": 10},
    "ease": {"l2_norm": 5.0},
    "ials": {"factors": 8, "iterations": 5, "regularization": 0.05, "random_state": 1},
    "cold_hybrid": {"factors": 8, "iterations": 5, "regularization": 0.05, "alpha": 1.0, "random_state": 1},
    "hybrid": {"collaborative": "itemknn", "collaborative_params": {"top_k": 10}, "content_weight": 0.0},
    "auto": {
        "rp3beta": {"alpha": 0.8, "beta": 0.3, "top_k": 10},
        "itemknn": {"top_k": 10, "shrink": 1.0},
        "ease": {"l2_norm": 5.0, "top_k": 10},
        "weights": {"rp3beta": 1.0, "ease": 1.0, "itemknn": 0.5},
    },
}


def test_every_registered_estimator_is_covered():
    assert set(FAST_PARAMS) == set(ALGORITHMS)


class EstimatorContract:
    """Mixin: the checks every estimator must pass. Subclasses set ``name``."""

    name: str

    def make(self):
        return get_estimator(self.name, **FAST_PARAMS[self.name])

    @pytest.fixture
    def user_items(self) -> sp.csr_matrix:
        return random_user_items()

    @pytest.fixture
    def fitted(self, user_items):
        return self.make().fit(user_items)

    def test_init_stores_params_only(self):
        model = self.make()
        assert model.get_params() == {**model.get_params(), **FAST_PARAMS[self.name]}
        assert not [name for name in vars(model) if name.endswith("_") and not name.startswith("_")]

    def test_fit_returns_self_and_learns_shapes(self, user_items):
        model = self.make()
        assert model.fit(user_items) is model
        assert model.n_items_ == user_items.shape[1]
        assert model.item_popularity_.shape == (user_items.shape[1],)
        assert model.item_popularity_.dtype == np.float32

    def test_unfitted_model_raises(self, user_items):
        with pytest.raises(RuntimeError):
            self.make().recommend(0, user_items[0])

    def test_recommend_shapes_and_order(self, fitted, user_items):
        for user in range(user_items.shape[0]):
            indices, scores = fitted.recommend(user, user_items[user], n=5)
            assert indices.dtype == np.int64 and scores.dtype == np.float32
            assert indices.shape == scores.shape and len(indices) <= 5
            assert np.all(np.diff(scores) <= 1e-6), "scores must be best first"
            assert len(set(indices.tolist())) == len(indices)
            assert np.all(np.isfinite(scores))

    def test_seen_items_excluded(self, fitted, user_items):
        for user in range(user_items.shape[0]):
            indices, _ = fitted.recommend(user, user_items[user], n=25)
            assert not set(indices.tolist()) & set(user_items[user].indices.tolist())

    def test_seen_items_kept_when_asked(self, fitted, user_items):
        indices, _ = fitted.recommend(0, user_items[0], n=25, exclude_seen=False)
        assert len(indices) == user_items.shape[1]

    def test_n_larger_than_catalogue(self, fitted, user_items):
        row = user_items[0]
        indices, scores = fitted.recommend(0, row, n=1000)
        assert len(indices) == user_items.shape[1] - row.nnz
        assert np.all((indices >= 0) & (indices < user_items.shape[1]))

    def test_empty_user_gets_fallback(self, fitted, user_items):
        empty = sp.csr_matrix((1, user_items.shape[1]), dtype=np.float32)
        indices, scores = fitted.recommend(3, empty, n=5)
        assert len(indices) == 5
        popularity = fitted.item_popularity_
        assert np.all(popularity[indices] >= np.sort(popularity)[-5])

    def test_recommend_all_matches_recommend(self, fitted, user_items):
        all_indices, all_scores = fitted.recommend_all(user_items, n=6, batch_size=7)
        assert all_indices.shape == (user_items.shape[0], 6) and all_indices.dtype == np.int64
        assert all_scores.shape == (user_items.shape[0], 6) and all_scores.dtype == np.float32
        for user in range(user_items.shape[0]):
            indices, scores = fitted.recommend(user, user_items[user], n=6)
            np.testing.assert_allclose(all_scores[user, : len(scores)], scores, rtol=1e-5, atol=1e-6)
            assert set(all_indices[user, : len(indices)].tolist()) == set(indices.tolist()) or np.any(
                np.diff(scores) == 0
            )

    def test_recommend_all_pads_short_rows(self, fitted, user_items):
        indices, scores = fitted.recommend_all(user_items, n=40, users=np.array([0, 3]))
        assert indices.shape == (2, 40)
        seen = user_items[0].nnz
        n_items = user_items.shape[1]
        assert np.all(indices[0, : n_items - seen] >= 0)
        assert np.all(indices[0, n_items - seen :] == -1)
        assert np.all(np.isneginf(scores[0, n_items - seen :]))

    def test_score_shape(self, fitted, user_items):
        scores = fitted.score(user_items[:4])
        assert scores.shape == (4, user_items.shape[1]) and scores.dtype == np.float32

    def test_item_based_score_is_row_times_similarity(self, fitted, user_items):
        if not fitted.item_based:
            # Factor and popularity models must not pretend to be item-item (the app relies on it).
            assert getattr(fitted, "similarity_", None) is None
            return
        similarity = fitted.similarity_
        assert sp.issparse(similarity) and similarity.shape == (user_items.shape[1],) * 2
        expected = (user_items @ similarity).toarray()
        np.testing.assert_allclose(fitted.score(user_items), expected, rtol=1e-5, atol=1e-6)

    def test_similar_items(self, fitted):
        indices, scores = fitted.similar_items(0, n=4)
        assert 0 not in indices.tolist() and len(indices) <= 4
        assert np.all(np.diff(scores) <= 1e-6)

    def test_explain_uses_history(self, fitted, user_items):
        row = user_items[0]
        recommended, _ = fitted.recommend(0, row, n=3)
        for item in recommended:
            history, contributions = fitted.explain(row, int(item))
            assert len(history) <= 3
            assert set(history.tolist()) <= set(row.indices.tolist())
            assert np.all(contributions > 0) and np.all(np.diff(contributions) <= 1e-6)

    def test_save_load_round_trip(self, fitted, user_items):
        buffer = io.BytesIO()
        fitted.save(buffer)
        buffer.seek(0)
        loaded = load_model(buffer)
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        before = fitted.recommend_all(user_items, n=5)
        after = loaded.recommend_all(user_items, n=5)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])

    def test_wrong_width_is_rejected(self, fitted):
        with pytest.raises(ValueError):
            fitted.recommend(0, sp.csr_matrix((1, 3), dtype=np.float32))


class PersonalisedContract(EstimatorContract):
    """Extra known-answer check for personalised models: the checkerboard."""

    def test_checkerboard_recommends_same_parity(self):
        user_items = checkerboard()
        model = self.make().fit(user_items)
        indices, _ = model.recommend_all(user_items, n=1)
        parity_ok = indices[:, 0] % 2 == np.arange(user_items.shape[0]) % 2
        assert parity_ok.all(), indices[:, 0]


class TestTopPopContract(EstimatorContract):
    name = "toppop"


class TestItemKNNContract(PersonalisedContract):
    name = "itemknn"


class TestUserKNNContract(PersonalisedContract):
    name = "userknn"


class TestP3alphaContract(PersonalisedContract):
    name = "p3alpha"


class TestRP3betaContract(PersonalisedContract):
    name = "rp3beta"


class TestEASEContract(PersonalisedContract):
    name = "ease"


class TestIALSContract(PersonalisedContract):
    name = "ials"


class TestColdStartHybridContract(PersonalisedContract):
    name = "cold_hybrid"


class TestHybridContract(PersonalisedContract):
    name = "hybrid"


class TestAutoContract(PersonalisedContract):
    name = "auto"


class TestAutoWithFactorsContract(PersonalisedContract):
    """Auto with its iALS term (not purely item-based)."""

    name = "auto"

    def make(self):
        params = dict(FAST_PARAMS["auto"])
        params["ials"] = {"factors": 8, "iterations": 5, "regularization": 0.05, "alpha": 5.0, "random_state": 1}
        params["weights"] = {"rp3beta": 1.0, "itemknn": 0.5, "ials": 0.2}
        return get_estimator("auto", **params)

    def test_init_stores_params_only(self):
        model = self.make()
        assert not [name for name in vars(model) if name.endswith("_") and not name.startswith("_")]

    def test_factor_term_is_added_to_item_scores(self, fitted, user_items):
        assert not fitted.item_based
        X = user_items[:3]  # users with history (row 3 is empty)
        item_part = (X @ fitted.item_similarity_).toarray()
        factor = fitted.factor_model_.score(X)
        factor = factor / np.abs(factor).max(axis=1, keepdims=True)
        np.testing.assert_allclose(fitted.score(X), item_part + 0.2 * factor, rtol=1e-4, atol=1e-5)


def test_get_estimator_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="itemknn"):
        get_estimator("nope")


def test_get_estimator_unknown_param():
    with pytest.raises(ValueError, match="unknown parameter"):
        get_estimator("itemknn", topK=5)
