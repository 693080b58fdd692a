"""Auto tunes itself on the data it is given, and only on that data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms.auto import (FOLDS_MAX_USERS, MIN_TUNING_USERS, MIN_VALIDATION_USERS, VALIDATION_CELLS,
                                             Auto, tune_folds_for, validation_users)
from recommendations.algorithms.auto_candidates import LARGE_NNZ
from recommendations.algorithms.blend import AUTO_DEFAULTS
from recommendations.algorithms.splits import last_timestamp_matrix

from .synthetic import record_tuning

FAST = {
    "rp3beta": {"alpha": 0.7, "beta": 0.2, "top_k": 20},
    "itemknn": {"top_k": 20, "shrink": 10.0},
    "ease": {"l2_norm": 50.0, "top_k": None},
    "ials": {"factors": 8, "regularization": 0.1, "alpha": 5.0, "iterations": 3, "random_state": 0},
}


def _clustered(n_users: int = 80, n_items: int = 40, seed: int = 0) -> sp.csr_matrix:
    """Two taste groups with noise: enough users with 2+ items for a validation split."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n_users)
    likes = np.where(group[:, None] == (np.arange(n_items) < n_items // 2)[None, :], 0.35, 0.04)
    return sp.csr_matrix((rng.random((n_users, n_items)) < likes).astype(np.float32))


@pytest.fixture
def spy(monkeypatch):
    return record_tuning(monkeypatch)


def test_default_fit_tunes_and_records_its_choice(spy):
    X = _clustered()
    model = Auto(**FAST, tune_budget=30, tune_iter=1, random_state=0).fit(X)
    tuning = model.tuning_
    assert tuning["tuned"] is True and len(spy) == 1
    assert (spy[0][0] != X).nnz == 0  # exactly the data given to fit
    assert tuning["validation"] == "random leave-one-out"
    assert set(tuning["member_scores"]) == {"rp3beta", "itemknn", "ease", "ials", "userknn"}
    assert np.isfinite(tuning["blend"]) and tuning["blend"] >= max(tuning["member_scores"].values()) - 1e-9
    assert tuning["seconds"] > 0 and tuning["budget_seconds"] == 30
    chosen = tuning["params"]["weights"]
    assert dict(zip(model.components_.tolist(), model.effective_weights_.tolist())) == pytest.approx(chosen)
    # the chosen member parameters are the ones fitted: refitting them untuned gives the same model
    untuned = Auto(**{k: v for k, v in tuning["params"].items()}, random_state=0).fit(X)
    assert untuned.tuning_ == {"tuned": False, "reason": "weights given"}
    assert (untuned.item_similarity_ != model.item_similarity_).nnz == 0


def test_items_nobody_interacted_with_cannot_change_the_choice(spy):
    # a catalogue's cold items (or the test-only items evaluate indexes) are empty columns: tuning skips them
    X = _clustered(seed=4)
    rows, cols = X.nonzero()
    at = np.array([0, 7, 7, 25, X.shape[1]])  # empty columns before, between and after the active ones
    padded = sp.csr_matrix(np.insert(X.toarray(), at, 0.0, axis=1))
    stamps = last_timestamp_matrix(rows, cols, np.arange(rows.size, dtype=np.float64), X.shape)
    padded_stamps = sp.csr_matrix(np.insert(stamps.toarray(), at, 0.0, axis=1))
    plain = Auto(**FAST, tune_iter=2, random_state=0).fit(X, timestamps=stamps)
    model = Auto(**FAST, tune_iter=2, random_state=0).fit(padded, timestamps=padded_stamps)
    for key in ("params", "blend", "member_scores", "default_scores", "candidates", "items"):
        assert model.tuning_[key] == plain.tuning_[key], key
    assert model.tuning_["items"] == X.shape[1]
    assert (spy[1][0] != X).nnz == 0 and (spy[1][1] != stamps).nnz == 0  # the tuner saw the active columns only
    assert model.item_similarity_.shape == (padded.shape[1], padded.shape[1])  # the model keeps the catalogue


def test_timestamps_hold_out_each_users_latest_item(spy):
    X = _clustered(seed=1)
    rows, cols = X.nonzero()
    stamps = last_timestamp_matrix(rows, cols, np.arange(rows.size, dtype=np.float64), X.shape)
    model = Auto(**FAST, tune_budget=5, tune_iter=0).fit(X, timestamps=stamps)
    assert model.tuning_["validation"] == "latest interaction per user"
    assert (spy[0][1] != stamps).nnz == 0


def test_the_time_budget_is_only_a_safety_net_on_random_points(spy):
    from recommendations.algorithms.auto_tuning import BASELINE_POINTS

    X = _clustered(seed=2)
    model = Auto(**FAST, tune_budget=0, tune_iter=3).fit(X)
    # the fixed candidates (start, registry defaults, baselines) are always tried; random points are cut
    fixed = {name: 2 + len(BASELINE_POINTS.get(name, [])) for name in ("rp3beta", "itemknn", "ease", "ials")}
    fixed["userknn"] = 1  # UserKNN starts at its registry defaults: one fixed fit
    assert model.tuning_["candidates"] == fixed
    assert sorted(model.tuning_["budget_cut"]) == ["ease", "ials", "itemknn", "rp3beta", "userknn"]
    roomy = Auto(**FAST, tune_budget=600, tune_iter=3).fit(X)
    assert roomy.tuning_["budget_cut"] == []
    assert sum(roomy.tuning_["candidates"].values()) > sum(fixed.values())


def test_the_search_is_a_count_of_fits_and_repeats_exactly(spy, monkeypatch):
    from recommendations.algorithms import auto_tuning

    X = _clustered(seed=12)
    first = Auto(**FAST, tune_iter=2, random_state=3).fit(X)
    # a slower machine: every fit takes longer; without a safety net in reach the search is the same
    clock = {"t": 0.0}
    monkeypatch.setattr(auto_tuning.time, "perf_counter", lambda: clock.__setitem__("t", clock["t"] + 7.0) or clock["t"])
    second = Auto(**FAST, tune_iter=2, random_state=3).fit(X)
    for key in ("params", "blend", "member_scores", "default_scores", "candidates", "fits"):
        assert first.tuning_[key] == second.tuning_[key], key
    assert (first.item_similarity_ != second.item_similarity_).nnz == 0


@pytest.mark.parametrize("seed", [13, 14, 15])
def test_the_choice_never_validates_below_the_best_default_member(spy, seed):
    X = _clustered(n_users=120, n_items=50, seed=seed)
    tuning = Auto(tune_iter=1, random_state=seed).fit(X).tuning_
    defaults = tuning["default_scores"]
    assert set(defaults) == {"rp3beta", "itemknn", "ease", "ials", "userknn"}
    assert all(np.isfinite(v) for v in defaults.values())
    assert tuning["blend"] >= max(tuning["member_scores"].values()) - 1e-9
    assert tuning["blend"] >= max(defaults.values()) - 1e-9


def test_given_weights_or_tune_false_skip_tuning(spy):
    X = _clustered(seed=3)
    assert Auto(**FAST, weights={"rp3beta": 1.0}).fit(X).tuning_["reason"] == "weights given"
    assert Auto(**FAST, tune=False).fit(X).tuning_["reason"] == "tune=False"
    assert Auto(**FAST, weights={"rp3beta": 1.0}, tune=True, tune_budget=1, tune_iter=0).fit(X).tuning_["tuned"]
    assert len(spy) == 1


def test_thin_data_keeps_the_defaults(spy):
    X = _clustered(n_users=MIN_TUNING_USERS - 1)
    model = Auto(**FAST).fit(X)
    assert model.tuning_["tuned"] is False and "tuning needs" in model.tuning_["reason"]
    assert spy == []


def test_tuning_record_survives_save_and_load(tmp_path):
    from recommendations.algorithms import load_model

    model = Auto(**FAST, tune_budget=5, tune_iter=0).fit(_clustered(seed=4))
    model.save(tmp_path / "auto.npz")
    assert load_model(tmp_path / "auto.npz").tuning_ == json.loads(json.dumps(model.tuning_))


def test_untuned_defaults_give_ease_a_weight():
    assert AUTO_DEFAULTS["weights"].get("ease", 0) > 0
    small = Auto(tune=False).component_weights(1000)
    assert small["ease"] > 0
    big = Auto(tune=False).component_weights(30_000)
    assert "ease" not in big and big["itemknn"] == pytest.approx(small["itemknn"] + small["ease"])


def test_default_members_start_from_auto_defaults_with_dense_ease_on_small_catalogues(monkeypatch):
    from recommendations.algorithms import auto_tuning, get_estimator

    tried = []
    real = auto_tuning._Search.try_member

    def record(self, member, params):
        tried.append((member.name, dict(params)))
        return real(self, member, params)

    monkeypatch.setattr(auto_tuning._Search, "try_member", record)
    small = {"rp3beta": FAST["rp3beta"], "itemknn": FAST["itemknn"], "ials": FAST["ials"]}
    Auto(**small, tune_budget=0, tune_iter=0).fit(_clustered(seed=5))
    ease_start = next(params for name, params in tried if name == "ease")
    # dense, at the registry's lambda: the start is also EASE^R's registry defaults (one fit, not two)
    registry = get_estimator("ease").get_params()
    assert ease_start["l2_norm"] == registry["l2_norm"] and ease_start["top_k"] is None is registry["top_k"]
    assert [name for name, _ in tried].count("ease") == 1


def test_timestamps_of_pairs_the_matrix_dropped_are_ignored(spy):
    X = _clustered(seed=6)
    rows, cols = X.nonzero()
    extra_rows, extra_cols = np.array([0, 1]), np.array([X.shape[1] - 1, X.shape[1] - 2])
    stamps = last_timestamp_matrix(np.r_[rows, extra_rows], np.r_[cols, extra_cols],
                                   np.arange(rows.size + 2, dtype=np.float64), X.shape)
    X[0, X.shape[1] - 1] = 0  # a pair with a time but no weight (e.g. a zero rating)
    X[1, X.shape[1] - 2] = 0
    X.eliminate_zeros()
    model = Auto(**FAST, tune_budget=1, tune_iter=0).fit(X, timestamps=stamps)
    assert model.tuning_["validation"] == "latest interaction per user"
    seen_times = spy[0][1]
    assert seen_times.nnz == X.nnz and np.array_equal(seen_times.indices, X.indices)


def test_sampled_negatives_set_the_validation_protocol(monkeypatch):
    from recommendations.algorithms import auto as auto_module

    asked = []
    real = auto_module.tune_auto
    monkeypatch.setattr(auto_module, "tune_auto", lambda train, **kw: asked.append(kw) or real(train, **kw))
    X = _clustered(seed=7)
    sampled = Auto(**FAST, tune_budget=1, tune_iter=0, tune_negatives=15).fit(X)
    full = Auto(**FAST, tune_budget=1, tune_iter=0).fit(X)
    assert [kw["n_negatives"] for kw in asked] == [15, None]
    assert sampled.tuning_["protocol"] == "15 sampled negatives" and full.tuning_["protocol"] == "full ranking"
    # "auto" validation users follow the catalogue: more users on a smaller one
    assert asked[0]["max_users"] == validation_users(X.shape[1]) >= MIN_VALIDATION_USERS
    assert validation_users(100_000) == MIN_VALIDATION_USERS < validation_users(5_000) == VALIDATION_CELLS // 5_000


def test_several_folds_wherever_the_full_search_runs_and_one_carving_validates_few_users(monkeypatch):
    from recommendations.algorithms import auto as auto_module

    # CiteULike-a's TRAIN: 199,435 pairs, one carving scores 2,944 users (too noisy to choose on alone)
    assert tune_folds_for(199_435, 2_944) == 3
    assert tune_folds_for(LARGE_NNZ, 2_000) == 3 and tune_folds_for(LARGE_NNZ + 1, 2_000) == 1
    assert tune_folds_for(100_000, FOLDS_MAX_USERS - 1) == 3 and tune_folds_for(100_000, FOLDS_MAX_USERS) == 1
    asked = []
    monkeypatch.setattr(auto_module, "tune_auto", lambda train, **kw: asked.append(kw["n_folds"]) or 1 / 0)
    X = _clustered(seed=9)  # 80 users, all validated
    for max_users in (FOLDS_MAX_USERS, 80):
        monkeypatch.setattr(auto_module, "FOLDS_MAX_USERS", max_users)
        with pytest.raises(ZeroDivisionError):
            Auto(**FAST, tune_iter=0).fit(X)
    assert asked == [3, 1]


def test_members_try_their_registry_defaults_then_the_baselines_after_their_start(monkeypatch):
    from recommendations.algorithms import auto_tuning, get_estimator

    tried = []
    real = auto_tuning._Search.try_member

    def record(self, member, params):
        tried.append((member.name, dict(params)))
        return real(self, member, params)

    monkeypatch.setattr(auto_tuning._Search, "try_member", record)
    Auto(**FAST, tune_budget=600, tune_iter=1).fit(_clustered(seed=8))
    for name in ("rp3beta", "itemknn", "ials"):
        first, second, *rest = [params for member, params in tried if member == name]
        assert first == FAST[name]
        registry = get_estimator(name).get_params()
        assert second == {**FAST[name], **{k: v for k, v in registry.items() if k not in ("n_threads", "random_state")}}
        # then the baselines' configurations (implicit's Cosine, BM25 and ALS defaults)
        baselines = [{**FAST[name], **p} for p in auto_tuning.BASELINE_POINTS.get(name, [])]
        assert rest[: len(baselines)] == baselines


def test_blend_search_starts_from_the_untuned_blend_when_it_validates_better(monkeypatch):
    from recommendations.algorithms import auto_tuning

    assert auto_tuning.default_blend_weights(["rp3beta", "itemknn", "ials"]) == pytest.approx(
        {"rp3beta": 1.0, "itemknn": 1.0, "ials": 0.05})  # EASE^R's weight moves to ItemKNN, as in Auto
    # validation prefers the untuned blend; a grid of 0 and 1 alone cannot reach its weights from one member
    monkeypatch.setattr(auto_tuning._Search, "blend_score",
                        lambda self, obj, weights, exponent=0.0:
                        (1.0 if weights == AUTO_DEFAULTS["weights"] and not exponent else 0.5, []))
    result = auto_tuning.tune_auto(_clustered(seed=9), start_params=FAST, n_iter=0, weight_grid=(0.0, 1.0))
    started = [t for t in result.trials if t.get("start") == "untuned defaults"]
    assert len(started) == 1 and started[0]["weights"] == AUTO_DEFAULTS["weights"]
    assert result.best_params["weights"] == AUTO_DEFAULTS["weights"] and result.best_score == 1.0


def test_large_data_tunes_the_fixed_candidates_only_and_validates_ials_with_its_fitted_factors(monkeypatch):
    from recommendations.algorithms import auto as auto_module
    from recommendations.algorithms import auto_candidates
    from recommendations.algorithms.auto_tuning import BASELINE_POINTS, tune_iterations

    assert tune_iterations(auto_candidates.LARGE_NNZ) == 3 and tune_iterations(auto_candidates.LARGE_NNZ + 1) == 0
    asked = []
    real = auto_module.tune_auto
    monkeypatch.setattr(auto_module, "tune_auto", lambda train, **kw: asked.append(kw) or real(train, **kw))
    X = _clustered(seed=10)
    small = Auto(**FAST, random_state=0).fit(X)
    monkeypatch.setattr(auto_candidates, "LARGE_NNZ", X.nnz - 1)  # the same data, now counted as large
    large = Auto(**FAST, random_state=0).fit(X)
    assert [(kw["n_iter"], kw["ials_fitted_factors"]) for kw in asked] == [(3, False), (0, True)]
    fixed = {name: 2 + len(BASELINE_POINTS.get(name, [])) for name in ("rp3beta", "itemknn", "ease", "ials")}
    assert large.tuning_["candidates"] == fixed and large.tuning_["budget_cut"] == []
    assert large.tuning_["fits"] == sum(fixed.values()) * large.tuning_["folds"]
    assert sum(small.tuning_["candidates"].values()) > sum(fixed.values())
def test_a_userknn_member_joins_the_blend_row_scaled_and_survives_save_and_load(tmp_path):
    from recommendations.algorithms import get_estimator, load_model
    from recommendations.algorithms.blend import row_max_scaled, unit_scale

    X = _clustered(seed=5)
    model = Auto(rp3beta=FAST["rp3beta"], weights={"rp3beta": 1.0, "userknn": 0.5}).fit(X)
    assert not model.item_based and model.user_model_ is not None
    rp3 = unit_scale(get_estimator("rp3beta", **FAST["rp3beta"]).fit(X).similarity_)[0]
    user = get_estimator("userknn", **AUTO_DEFAULTS["userknn"]).fit(X)
    expected = (X[:10] @ rp3).toarray() + 0.5 * row_max_scaled(user.score(X[:10]))
    np.testing.assert_allclose(model.score(X[:10]), expected, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "auto.npz")
    loaded = load_model(tmp_path / "auto.npz")
    np.testing.assert_array_equal(loaded.score(X[:10]), model.score(X[:10]))
    np.testing.assert_array_equal(loaded.recommend_all(X, n=5)[0], model.recommend_all(X, n=5)[0])


def test_auto_tries_a_userknn_member_only_up_to_its_data_size():
    from recommendations.algorithms.auto_candidates import LARGE_NNZ, member_names

    assert "userknn" in member_names(None, 100, 20_000, LARGE_NNZ)
    assert "userknn" not in member_names(None, 100, 20_000, LARGE_NNZ + 1)
    assert "userknn" in member_names(["rp3beta", "userknn"], 100, 20_000, LARGE_NNZ + 1)


def test_the_popularity_exponent_scales_every_term_and_keeps_the_item_part_item_based(tmp_path):
    from recommendations.algorithms import load_model

    X = _clustered(seed=11)
    counts = np.maximum(np.diff(X.tocsc().indptr), 1).astype(np.float64)
    for weights in ({"rp3beta": 1.0, "itemknn": 0.5}, {"rp3beta": 1.0, "ials": 0.5, "userknn": 0.2}):
        params = {**FAST, "weights": weights}
        plain = Auto(**params).fit(X)
        discounted = Auto(**params, popularity_exponent=0.4).fit(X)
        expected = plain.score(X[:12]) * (counts ** -0.4)[None, :]
        np.testing.assert_allclose(discounted.score(X[:12]), expected, rtol=1e-5, atol=1e-7)
        assert plain.column_scale_ is None
        assert not np.array_equal(discounted.recommend_all(X, n=5)[0], plain.recommend_all(X, n=5)[0])
        discounted.save(tmp_path / "auto.npz")
        loaded = load_model(tmp_path / "auto.npz")
        np.testing.assert_array_equal(loaded.score(X[:12]), discounted.score(X[:12]))
    item_based = Auto(**FAST, weights={"rp3beta": 1.0}, popularity_exponent=0.4).fit(X)
    np.testing.assert_allclose((X[:12] @ item_based.similarity_).toarray(), item_based.score(X[:12]), rtol=1e-6)


def test_the_blend_search_takes_a_popularity_exponent_when_it_validates_better(monkeypatch):
    from recommendations.algorithms import auto_tuning

    monkeypatch.setattr(auto_tuning._Search, "blend_score",
                        lambda self, obj, weights, exponent=0.0: (1.0 if exponent == 0.1 else 0.5, []))
    result = auto_tuning.tune_auto(_clustered(seed=12), start_params=FAST, n_iter=0)
    assert result.best_params["popularity_exponent"] == 0.1 and result.best_score == 1.0
    assert any(t.get("popularity_exponent") == 0.1 for t in result.trials)
    model = Auto(**{k: v for k, v in result.best_params.items()}).fit(_clustered(seed=12))
    assert model.popularity_exponent == 0.1 and model.column_scale_ is not None


def test_the_blend_search_walks_past_a_grid_edge_while_validation_improves(monkeypatch):
    from recommendations.algorithms import auto_tuning
    from recommendations.algorithms.auto_blend import POPULARITY_EXPONENTS

    top = max(POPULARITY_EXPONENTS)

    def score(self, obj, weights, exponent=0.0):
        # best at exponent .5 (beyond the grid) and, with it, an ItemKNN weight of 4.5 (beyond 2.0)
        return 1.0 - abs(exponent - 0.5) - 0.01 * abs(weights.get("itemknn", 0.0) - 4.5) / 4.5, []

    monkeypatch.setattr(auto_tuning._Search, "blend_score", score)
    result = auto_tuning.tune_auto(_clustered(seed=13), start_params=FAST, n_iter=0, members=["rp3beta", "itemknn"])
    assert top < 0.5 and result.best_params["popularity_exponent"] == pytest.approx(0.5)
    assert result.best_params["weights"] in ({"rp3beta": 1.0, "itemknn": 4.5}, {"itemknn": 1.0, "rp3beta": 1.0 / 4.5})


def test_a_choice_inside_the_grids_is_not_walked(monkeypatch):
    from recommendations.algorithms import auto_tuning

    seen = []

    def score(self, obj, weights, exponent=0.0):
        seen.append(exponent)
        return 1.0 - abs(exponent - 0.1), []

    monkeypatch.setattr(auto_tuning._Search, "blend_score", score)
    result = auto_tuning.tune_auto(_clustered(seed=14), start_params=FAST, n_iter=0, members=["rp3beta", "itemknn"])
    assert result.best_params["popularity_exponent"] == 0.1
    assert set(seen) <= set(auto_tuning.POPULARITY_EXPONENTS)


@pytest.mark.parametrize("moves, sweeps", [(99, 4), (2, 3), (0, 1)])
def test_the_blend_ascent_sweeps_until_a_sweep_moves_nothing_at_most_four_times(monkeypatch, moves, sweeps):
    from recommendations.algorithms import auto_blend, auto_tuning

    assert auto_blend.ASCENT_PASSES == 4
    calls = []

    def sweep(self, anchor, weight_grid, exponents):
        calls.append(anchor)
        return len(calls) <= moves  # the first ``moves`` sweeps move a coordinate, later ones do not

    monkeypatch.setattr(auto_blend._Ascent, "sweep", sweep)
    monkeypatch.setattr(auto_blend, "_walk_edges", lambda *args: False)
    auto_tuning.tune_auto(_clustered(seed=15), start_params=FAST, n_iter=0, members=["rp3beta", "itemknn"])
    assert len(calls) == sweeps
