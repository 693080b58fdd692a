"""ColdStartHybrid: the cold-item interface (fit, map_items, score, warmth) on data whose answer is known."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import get_estimator, load_model
from recommendations.algorithms.cold import ColdStartHybrid
from recommendations.algorithms.encoders import ItemRecord, make_encoder

N_TOPIC_ITEMS = 12


def two_topics(n_users: int = 40, seed: int = 0):
    """Readers of astronomy read astronomy, readers of cooking read cooking; the last item of each is cold."""
    rng = np.random.default_rng(seed)
    records = [ItemRecord(key=f"a{i}", text=f"astronomy galaxy telescope star{i}", tags=["space"])
               for i in range(N_TOPIC_ITEMS)]
    records += [ItemRecord(key=f"c{i}", text=f"cooking bread kitchen recipe{i}", tags=["food"])
                for i in range(N_TOPIC_ITEMS)]
    rows, cols = [], []
    for user in range(n_users):
        offset = 0 if user % 2 == 0 else N_TOPIC_ITEMS
        for item in rng.choice(N_TOPIC_ITEMS - 1, size=5, replace=False):  # the last item stays cold
            rows.append(user)
            cols.append(offset + item)
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, 2 * N_TOPIC_ITEMS))
    F = make_encoder("tfidf:1,tags:1").fit_transform(records)
    return X, F, records


COLD = [N_TOPIC_ITEMS - 1, 2 * N_TOPIC_ITEMS - 1]
PARAMS = {"factors": 8, "iterations": 10, "regularization": 0.1, "alpha": 5.0, "random_state": 0}


@pytest.fixture(scope="module", params=["factors", "interactions"])
def fitted(request):
    X, F, records = two_topics()
    return ColdStartHybrid(target=request.param, **PARAMS).fit(X, F), X, F


def test_fit_returns_self_and_is_in_the_registry():
    X, F, _ = two_topics()
    model = get_estimator("cold_hybrid", **PARAMS)
    assert isinstance(model, ColdStartHybrid) and model.fit(X, F) is model


def test_map_items_places_unseen_items_in_the_factor_space(fitted):
    model, X, F = fitted
    mapped = model.map_items(F[COLD])
    assert mapped.shape == (2, PARAMS["factors"]) and mapped.dtype == np.float32
    assert np.abs(mapped).sum() > 0


def test_score_sends_each_cold_item_to_its_topic(fitted):
    model, X, F = fitted
    scores = model.score(X, model.map_items(F[COLD]))
    assert scores.shape == (X.shape[0], 2)
    astronomy_readers = np.arange(X.shape[0]) % 2 == 0
    assert (scores[astronomy_readers, 0] > scores[astronomy_readers, 1]).all()
    assert (scores[~astronomy_readers, 1] > scores[~astronomy_readers, 0]).all()


def test_cold_scores_are_on_the_warm_scale(fitted):
    """On warm items, the calibrated cold score predicts the warm score with slope 1 (no shrinkage left)."""
    model, X, F = fitted
    warm = np.flatnonzero(np.diff(X.tocsc().indptr) > 0)
    warm_scores = model.user_factors(X) @ model.item_factors_[warm].T
    cold_scores = model.score(X, model.map_items(F[warm]))
    slope = float((warm_scores * cold_scores).sum() / (cold_scores * cold_scores).sum())
    assert slope == pytest.approx(1.0, abs=0.1)


def test_recommend_reaches_cold_items(fitted):
    model, X, F = fitted
    indices, _ = model.recommend_all(X, n=6)
    astronomy_readers = np.arange(X.shape[0]) % 2 == 0
    assert np.isin(COLD[0], indices[astronomy_readers]).any()
    assert not np.isin(COLD[0], indices[~astronomy_readers]).any()


def test_warmth_is_monotone_in_zero_one():
    model = ColdStartHybrid(warmth_shrink=5.0)
    w = model.warmth(np.array([0, 1, 5, 50, 10_000]))
    assert w[0] == 0.0 and w[2] == pytest.approx(0.5) and np.all(np.diff(w) > 0) and w[-1] < 1.0


def test_without_features_it_is_ials_and_cold_items_score_zero():
    X, F, _ = two_topics()
    model = ColdStartHybrid(**PARAMS).fit(X)
    ials = get_estimator("ials", **PARAMS).fit(X)
    np.testing.assert_allclose(model.score(X[:5]), ials.score(X[:5]), rtol=1e-4, atol=1e-5)
    assert not model.map_items(F[COLD]).any()


def test_bad_inputs():
    X, F, _ = two_topics()
    with pytest.raises(ValueError, match="rows"):
        ColdStartHybrid(**PARAMS).fit(X, F[:5])
    with pytest.raises(ValueError, match="target"):
        ColdStartHybrid(target="columns", **PARAMS).fit(X, F)
    model = ColdStartHybrid(**PARAMS).fit(X, F)
    with pytest.raises(ValueError, match="columns"):
        model.map_items(F[:, :3])


def test_save_and_load_keep_the_map():
    X, F, _ = two_topics()
    model = ColdStartHybrid(**PARAMS).fit(X, F)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = load_model(buffer)
    np.testing.assert_allclose(loaded.map_items(F[COLD]), model.map_items(F[COLD]))
    np.testing.assert_allclose(loaded.score(X[:4]), model.score(X[:4]), rtol=1e-5, atol=1e-6)


def test_blend_scales_cold_to_the_fifth_best_unseen_warm_score_and_weighs_by_warmth():
    from recommendations.algorithms.cold import blend_scores

    warm = np.array([[9.0, 8.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    cold = np.array([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]], dtype=np.float32)
    warmth = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=np.float32)
    seen = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, 7))  # the two best items were read
    blended = blend_scores(warm.copy(), cold.copy(), warmth, rank=5, seen=seen)
    # 5th best unseen warm score: 1 (not 3, which counts the seen items); the cold item gets it.
    assert blended[0, 7] == pytest.approx(1.0)
    np.testing.assert_allclose(blended[0, :7], warm[0, :7])
    assert blend_scores(warm.copy(), cold.copy(), warmth, rank=5)[0, 7] == pytest.approx(3.0)
    half = blend_scores(warm.copy(), cold.copy(), np.full(8, 0.5, np.float32), rank=5, seen=seen)
    assert half[0, 2] == pytest.approx(2.5, abs=1e-3) and half[0, 7] == pytest.approx(0.5)


def test_blend_keeps_an_item_model_the_reader_never_touched_below_their_picks():
    """A books-only reader: no warm score among the articles must not lift articles' cold scores to the top."""
    from recommendations.algorithms.cold import blend_scores

    books, articles = np.arange(0, 6), np.arange(6, 10)
    warm = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    cold = np.array([[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 3.0, 2.0, 1.0, 0.5]], dtype=np.float32)
    warmth = np.array([1, 1, 1, 1, 1, 1, 0.2, 0.2, 0.2, 0.2], dtype=np.float32)
    blended = blend_scores(warm.copy(), cold.copy(), warmth, [books, articles], rank=5)
    assert blended[0, articles].max() < blended[0, books].min() / 100
    assert list(np.argsort(-blended[0, articles])) == [0, 1, 2, 3]  # still ordered by content
    np.testing.assert_allclose(blended[0, books], warm[0, books])


def test_warmth_makes_an_item_with_one_reader_mostly_warm_and_a_new_one_cold():
    w = ColdStartHybrid().warmth(np.array([0, 1, 5]))
    assert w[0] == 0.0 and w[1] > 0.6 and w[2] > 0.9


def test_blend_keeps_a_lukewarm_item_below_a_better_warm_one_when_the_warm_scores_are_peaked():
    """P3alpha-like scores (a few large, a long tail near 0): a middling content match must stay in the tail."""
    from recommendations.algorithms.cold import blend_scores

    m = 40
    warm = np.concatenate([[1.0, 0.9, 0.8, 0.7, 0.6, 0.05], np.linspace(0.01, 0.0, m - 6)]).astype(np.float32)[None]
    cold = np.linspace(1.0, 0.0, m).astype(np.float32)[None]
    lukewarm, better = 10, 5  # content rank 11 of 40; the 6th best warm item
    warm[0, lukewarm] = 0.0
    warmth = np.ones(m, dtype=np.float32)
    warmth[lukewarm] = 0.8  # two readers, with the default warmth_shrink of 0.5
    blended = blend_scores(warm.copy(), cold.copy(), warmth, rank=5)
    # A linear scale (best cold score = 5th best warm score) gave it 0.2 * 0.75 * 0.6 = 0.09 > 0.05.
    assert blended[0, lukewarm] < blended[0, better]
    assert list(np.argsort(-blended[0, :5])) == [0, 1, 2, 3, 4]


def test_blend_keeps_content_order_among_cold_items_where_the_warm_tail_is_flat():
    from recommendations.algorithms.cold import blend_scores

    warm = np.array([[0.9, 0.8, 0.7, 0.6, 0.5] + [0.0] * 15], dtype=np.float32)  # a sparse kNN row
    cold = np.linspace(1.0, 0.05, 20).astype(np.float32)[None]
    warmth = np.array([1.0] * 5 + [0.0] * 15, dtype=np.float32)
    blended = blend_scores(warm.copy(), cold.copy(), warmth, rank=5)
    assert np.all(np.diff(blended[0, 5:]) < 0)
    assert blended[0, 5] <= 0.5 + 1e-6
