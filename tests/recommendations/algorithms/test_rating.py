"""Tests for recommendations.algorithms.rating: baselines with known answers and BiasedMF recovering a low-rank matrix."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.algorithms.rating import BiasBaseline, BiasedMF, GlobalMean, kfold_indices, mae, rmse


def test_metrics_hand_computed():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)


def test_global_mean_predicts_the_mean():
    m = GlobalMean().fit([0, 1, 1], [0, 0, 1], [1.0, 2.0, 4.5])
    assert m.predict([0, 5], [1, 9]).tolist() == pytest.approx([2.5, 2.5])


def test_bias_baseline_without_regularisation_matches_closed_form():
    # two users, two items, full matrix r = mu + b_u + b_i exactly
    users = np.array([0, 0, 1, 1])
    items = np.array([0, 1, 0, 1])
    ratings = np.array([4.0, 2.0, 5.0, 3.0])  # user 1 +0.5, item 0 +1 around mu=3.5
    m = BiasBaseline(user_regularization=0.0, item_regularization=0.0, iterations=20).fit(users, items, ratings)
    assert m.predict(users, items) == pytest.approx(ratings)
    assert m.global_mean_ == pytest.approx(3.5)


def test_bias_baseline_shrinks_rare_items_towards_the_mean():
    users = np.array([0, 1, 2, 3, 0])
    items = np.array([0, 0, 0, 0, 1])
    ratings = np.array([5.0, 5.0, 5.0, 5.0, 1.0])
    m = BiasBaseline(user_regularization=0.0, item_regularization=5.0).fit(users, items, ratings)
    mu = ratings.mean()
    # item 1 has one rating: its bias is pulled strongly towards 0
    assert abs(m.item_bias_[1]) < abs(1.0 - mu)


def test_predictions_clipped_and_cold_entries_fall_back():
    m = BiasBaseline(0.0, 0.0).fit([0, 1], [0, 1], [5.0, 5.0])
    assert m.predict([0], [0])[0] <= 5.0
    # unknown user and item: global mean
    assert m.predict([99], [99])[0] == pytest.approx(5.0)


def _low_rank_ratings(n_users=120, n_items=80, rank=3, density=0.5, seed=0):
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.5, (n_users, rank))
    Q = rng.normal(0, 0.5, (n_items, rank))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    full = np.clip(3.5 + bu[:, None] + bi[None, :] + P @ Q.T, 1, 5)
    mask = rng.random(full.shape) < density
    u, i = np.nonzero(mask)
    return u, i, full[u, i], full


def test_biased_mf_recovers_held_out_cells_of_a_low_rank_matrix():
    u, i, r, full = _low_rank_ratings()
    (tr, te) = kfold_indices(r.size, 5, random_state=0)[0]
    base = BiasBaseline().fit(u[tr], i[tr], r[tr], 120, 80)
    mf = BiasedMF(factors=3, regularization=0.01, iterations=20, random_state=0).fit(u[tr], i[tr], r[tr], 120, 80)
    e_base = rmse(r[te], base.predict(u[te], i[te]))
    e_mf = rmse(r[te], mf.predict(u[te], i[te]))
    assert e_mf < 0.3 * e_base
    assert e_mf < 0.15
    pred = mf.predict(u[te], i[te])
    assert pred.min() >= 1.0 and pred.max() <= 5.0


def test_biased_mf_is_reproducible_and_ensemble_averages(tmp_path):
    u, i, r, _ = _low_rank_ratings(40, 30, seed=1)
    a = BiasedMF(factors=4, iterations=3, random_state=3).fit(u, i, r)
    b = BiasedMF(factors=4, iterations=3, random_state=3).fit(u, i, r)
    assert np.allclose(a.predict(u, i), b.predict(u, i))
    ens = BiasedMF(factors=4, iterations=3, random_state=3, n_models=2).fit(u, i, r)
    assert ens.user_factors_.shape == (2, 40, 4)
    path = tmp_path / "mf.npz"
    ens.save(path)
    loaded = BiasedMF.load(path)
    assert np.allclose(loaded.predict(u, i), ens.predict(u, i))


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError):
        BiasedMF().fit([0, 1], [0], [1.0, 2.0])
    with pytest.raises(ValueError):
        GlobalMean().fit([], [], [])
    with pytest.raises(ValueError):
        BiasBaseline().fit([0], [0], [np.nan])


def test_kfold_indices_partition():
    folds = kfold_indices(103, 5, random_state=0)
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(103))
    for tr, te in folds:
        assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == 103
