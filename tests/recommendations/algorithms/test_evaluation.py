"""Tests for recommendations.algorithms.evaluation: metrics against hand-computed values, splits, protocols, tuning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import evaluation as ev


class FixedScores:
    """Fake estimator whose score() returns rows of a fixed dense matrix (keyed by the train row)."""

    def __init__(self, scores, **params):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.params = params
        self.fitted_on = None

    def fit(self, user_items):
        self.fitted_on = user_items.copy()
        # remember which user each train row is, by content, through the calling order
        return self

    def score(self, rows):
        # identify users by matching train rows (test helper: rows are unique here)
        out = []
        dense = rows.toarray()
        fitted = self.fitted_on.toarray()
        for r in dense:
            u = int(np.flatnonzero((fitted == r).all(axis=1))[0])
            out.append(self.scores[u])
        return np.array(out)




def test_rank_counts_half_of_ties():
    # positive 0.5 vs [0.9, 0.5, 0.5, 0.1]: 1 higher, 2 tied -> 1 + 0.5*2 = 2
    r = ev.tie_aware_ranks(np.array([0.5]), np.array([[0.9, 0.5, 0.5, 0.1]]))
    assert r.tolist() == [2.0]


def test_rank_ignores_nan_padding_and_minus_inf_loses():
    r = ev.tie_aware_ranks(np.array([0.2, -np.inf]), np.array([[np.nan, -np.inf, 0.3], [-np.inf, 0.0, np.nan]]))
    # first: only 0.3 is higher -> 1; second: -inf ties with -inf (0.5), 0.0 higher (1) -> 1.5
    assert r.tolist() == [1.0, 1.5]


def test_hr_and_ndcg_hand_computed_with_ties():
    # three users, one positive each, positions 0, 1.5 and 9.5
    pos = np.array([0.0, 1.5, 9.5])
    m = ev.metrics_from_positions(pos, np.array([0, 1, 2]), ks=(1, 2, 10))
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@2"] == pytest.approx(2 / 3)  # 1.5 < 2
    assert m["HR@10"] == pytest.approx(1.0)  # 9.5 < 10
    # NDCG@10 = mean(1/log2(2), 1/log2(1+2), 1/log2(9+2))
    expected = (1.0 + 1 / math.log2(3) + 1 / math.log2(11)) / 3
    assert m["NDCG@10"] == pytest.approx(expected)
    assert m["NDCG@2"] == pytest.approx((1.0 + 1 / math.log2(3)) / 3)
    # with one positive: Recall = HR, Precision = HR / k, MAP = [r<k] / (floor(r) + 1)
    assert m["Recall@10"] == pytest.approx(m["HR@10"])
    assert m["Precision@10"] == pytest.approx(1.0 / 10)
    assert m["MAP@10"] == pytest.approx((1.0 + 1 / 2 + 1 / 10) / 3)


def test_rank_exactly_k_is_a_miss():
    m = ev.metrics_from_positions(np.array([10.0, 9.5]), np.array([0, 1]), ks=(10,))
    assert m["HR@10"] == pytest.approx(0.5)


def test_multiple_positives_per_user():
    # user 0 has positives at positions 0 and 3 (in the joint list), k=5
    m = ev.metrics_from_positions(np.array([0.0, 3.0]), np.array([0, 0]), ks=(5,))
    assert m["HR@5"] == 1.0
    assert m["Recall@5"] == 1.0
    assert m["Precision@5"] == pytest.approx(2 / 5)
    idcg = 1 + 1 / math.log2(3)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(5)) / idcg)
    assert m["MAP@5"] == pytest.approx((1 / 1 + 2 / 4) / 2)


def _m(rows):
    return sp.csr_matrix(np.array(rows, dtype=np.float32))


def test_sampled_protocol_masks_train_negatives_with_minus_inf():
    # 1 user, 5 items. train {0}; test {1}; negatives {0, 2, 3}: item 0 is in train.
    train = _m([[1, 0, 0, 0, 0]])
    test = _m([[0, 1, 0, 0, 0]])
    neg = _m([[1, 0, 1, 1, 0]])
    # the model loves item 0 (a train item) and item 4 (not a candidate), ties 1 with 2
    est = FixedScores([[9.0, 0.5, 0.5, 0.1, 8.0]])
    res = ev.evaluate(est, train, test, ks=(1, 2), negatives=neg)
    # candidates: 0 -> -inf (lower), 2 tied, 3 lower -> rank 0.5
    assert res.protocol == "sampled"
    assert res.metrics["HR@1"] == 1.0
    assert res.metrics["NDCG@1"] == pytest.approx(1.0)
    # full ranking instead: item 4 (8.0) higher, item 2 tied -> rank 1.5
    full = ev.evaluate(est, train, test, ks=(1, 2))
    assert full.protocol == "full"
    assert full.metrics["HR@1"] == 0.0
    assert full.metrics["HR@2"] == 1.0
    assert full.metrics["NDCG@2"] == pytest.approx(1 / math.log2(3))
    assert full.fit_seconds >= 0 and full.score_seconds >= 0


def test_without_masking_the_result_would_differ():
    # sanity: the train item with a huge score would push the positive down if it were not masked
    train = _m([[1, 0, 0]])
    test = _m([[0, 1, 0]])
    neg = _m([[1, 0, 1]])
    est = FixedScores([[5.0, 1.0, 0.0]])
    res = ev.evaluate(est, train, test, ks=(1,), negatives=neg)
    assert res.metrics["HR@1"] == 1.0


def test_full_ranking_coverage_and_skipped_users():
    train = _m([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    test = _m([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    scores = [[0, 3, 2, 1], [3, 0, 2, 1], [1, 1, 1, 1]]
    est = FixedScores(scores)
    est.fit(train)
    metrics, n_users, skipped = ev.evaluate_scores(lambda rows: np.asarray(scores, float)[rows], train, test, ks=(1, 2))
    assert (n_users, skipped) == (2, 1)
    # user 0 top-1 = item 1 (hit); user 1: item 0 (score 3) first, then 2 -> rank 1
    assert metrics["HR@1"] == 0.5
    assert metrics["HR@2"] == 1.0
    # top-1 lists {1, 0} -> 2 of 4 items; top-2 {1,2,0} -> 3 of 4
    assert metrics["Coverage@1"] == 0.5
    assert metrics["Coverage@2"] == 0.75


def test_full_ranking_all_ties_gives_half_rank():
    n = 11
    train = sp.csr_matrix(([1.0], ([0], [0])), shape=(1, n), dtype=np.float32)
    test = sp.csr_matrix(([1.0], ([0], [5])), shape=(1, n), dtype=np.float32)
    metrics, _, _ = ev.evaluate_scores(lambda rows: np.zeros((len(rows), n)), train, test, ks=(5, 10))
    # 9 other candidates all tied (train item excluded): rank 4.5 -> hit at 5, NDCG 1/log2(6)
    assert metrics["HR@5"] == 1.0
    assert metrics["NDCG@5"] == pytest.approx(1 / math.log2(6))


def test_leave_one_out_split_partitions_interactions():
    rng = np.random.default_rng(1)
    X = sp.random(50, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)
    X.data[:] = 1
    train, test = ev.leave_one_out_split(X, random_state=rng)
    assert (train + test - X).nnz == 0
    assert train.multiply(test).nnz == 0
    counts = np.diff(X.indptr)
    per_user = np.diff(test.indptr)
    assert np.all(per_user[counts >= 2] == 1)
    assert np.all(per_user[counts < 2] == 0)
    # reproducible
    a, b = ev.leave_one_out_split(X, random_state=7), ev.leave_one_out_split(X, random_state=7)
    assert (a[1] != b[1]).nnz == 0


def test_leave_last_out_split_holds_latest():
    users = np.array([0, 0, 0, 1, 1, 0])
    items = np.array([0, 1, 2, 1, 2, 0])
    ts = np.array([10, 30, 20, 5, 1, 40])  # user 0 re-reads item 0 at t=40: its latest item
    T = ev.last_timestamp_matrix(users, items, ts, (2, 3))
    X = sp.csr_matrix((np.ones(6, dtype=np.float32), (users, items)), shape=(2, 3))
    train, test = ev.leave_last_out_split(X, T)
    assert test.toarray().tolist() == [[2.0, 0, 0], [0, 1.0, 0]]
    assert train.toarray().tolist() == [[0, 1, 1], [0, 0, 1]]


def test_sample_negatives_avoids_seen_items():
    X = sp.random(40, 60, density=0.1, format="csr", random_state=3, dtype=np.float32)
    train, test = ev.leave_one_out_split(X, random_state=0)
    neg = ev.sample_negatives(train, test, n_negatives=20, random_state=0)
    assert neg.multiply(train).nnz == 0
    assert neg.multiply(test).nnz == 0
    test_users = np.flatnonzero(np.diff(test.indptr))
    assert np.all(np.diff(neg.indptr)[test_users] == 20)


def test_tune_uses_only_train_and_writes_params(tmp_path):
    # factory builds a fake whose score is better with better "quality"; the search must pick it
    rng = np.random.default_rng(0)
    X = (rng.random((60, 25)) < 0.3).astype(np.float32)
    train = sp.csr_matrix(X)
    seen_shapes = []

    class Oracle:
        def __init__(self, quality=0.0):
            self.quality = quality

        def fit(self, ui):
            seen_shapes.append(ui.nnz)
            self.ui = ui
            return self

        def score(self, rows):
            # quality 1: knows the full train matrix (held-out validation items score high)
            full = train[np.asarray(self._rows(rows))].toarray()
            return self.quality * full + rng.random(full.shape) * 0.01

        def _rows(self, rows):
            dense_fit = self.ui.toarray()
            out = []
            for r in rows.toarray():
                out.append(int(np.flatnonzero((dense_fit == r).all(axis=1))[0]))
            return out

    def factory(name, **params):
        return Oracle(**params)

    res = ev.tune("oracle", train, {"quality": [0.0, 1.0]}, factory=factory, metric="NDCG@10", random_state=0)
    assert res.best_params == {"quality": 1.0}
    # every fit saw fewer interactions than train (validation items carved out)
    assert all(n < train.nnz for n in seen_shapes)
    path = tmp_path / "p.json"
    ev.save_params(path, "oracle", res.best_params)
    assert json.loads(path.read_text())["params"] == {"quality": 1.0}
    assert ev.load_params(path) == ("oracle", {"quality": 1.0})


def test_load_params_rejects_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{\n  nope\n")
    with pytest.raises(ValueError, match=r"bad.json:2:"):
        ev.load_params(path)


def test_tune_max_users_scores_a_sample_of_validation_users():
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((80, 30)) < 0.3).astype(np.float32))
    scored_rows = []

    class Pop:
        def __init__(self, **params):
            pass

        def fit(self, ui):
            self.pop = np.asarray(ui.sum(axis=0)).ravel()
            return self

        def score(self, rows):
            scored_rows.append(rows.shape[0])
            return np.tile(self.pop, (rows.shape[0], 1))

    ev.tune("pop", train, {}, factory=lambda name, **p: Pop(**p), max_users=10, random_state=0)
    assert sum(scored_rows) == 10


def _clustered(n_users=240, n_items=90, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 4, n_users)
    ig = rng.integers(0, 4, n_items)
    p = np.where(g[:, None] == ig[None, :], 0.2, 0.03) * (1 + rng.random((n_users, n_items)))
    return sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(np.float32))


FAST_SPACES = {
    "itemknn": {"top_k": [20, 50], "shrink": [0, 10]},
    "rp3beta": {"alpha": [0.5, 1.0], "beta": [0.0, 0.3], "top_k": [50]},
    "ease": {"l2_norm": [10.0, 100.0]},
    "ials": {"factors": [8], "iterations": [3], "regularization": [0.1]},
}




def _tuned_on_validation(n_iter: int):
    """Tune ``auto`` for both protocols on the clustered data; return the results and the validation split it used."""
    train = _clustered()
    results = ev.tune_auto_protocols(train, {"sampled": 30, "full": None}, n_iter=n_iter, search_spaces=FAST_SPACES,
                                     random_state=3)
    fit_part, valid, _ = ev.validation_split(sp.csr_matrix(train), None, None, 3)
    return results, fit_part, valid, ev.sample_negatives(fit_part, valid, n_negatives=30, random_state=4)


def test_tune_auto_blend_score_is_what_auto_gets_on_validation():
    """The cached-score search must equal a real Auto fit on the same validation split (no shortcut error)."""
    from recommendations.algorithms import get_estimator

    results, fit_part, valid, negatives = _tuned_on_validation(n_iter=2)
    for protocol, neg in (("sampled", negatives), ("full", None)):
        res = results[protocol]
        assert res.algorithm == "auto"
        weights = res.best_params["weights"]
        assert all(w > 0 for w in weights.values())
        assert set(res.best_params) - {"popularity_exponent"} == {"weights", *weights}
        # the blend is at least as good as its best member alone, on validation
        assert res.best_score >= max(m.best_score for m in res.members.values()) - 1e-12
        est = get_estimator("auto", **res.best_params)
        again = ev.evaluate(est, fit_part, valid, ks=(10,), negatives=neg)
        assert again.metrics["NDCG@10"] == pytest.approx(res.best_score, abs=1e-6)
        # each member's tuned params are the best of that member's own trials
        for name, member in res.members.items():
            assert member.best_score == max(t["NDCG@10"] for t in member.trials)


def test_a_cached_blend_with_a_popularity_exponent_is_what_auto_gets_on_validation(monkeypatch):
    """The popularity factor on cached scores (full ranking and the sampled candidates) equals a real Auto fit's."""
    from recommendations.algorithms import auto_tuning, get_estimator

    captured = {}
    real = auto_tuning._blend_result
    monkeypatch.setattr(auto_tuning, "_blend_result",
                        lambda search, obj, *rest: captured.setdefault("search", search) and real(search, obj, *rest))
    results, fit_part, valid, negatives = _tuned_on_validation(n_iter=1)
    for protocol, neg in (("sampled", negatives), ("full", None)):
        params = {**results[protocol].best_params, "weights": {"rp3beta": 1.0, "itemknn": 0.5, "ials": 0.2}}
        params.update({n: results[protocol].members[n].best_params for n in params["weights"]})
        for exponent in (0.3, -0.2):
            cached, _ = captured["search"].blend_score(protocol, params["weights"], exponent)
            est = get_estimator("auto", **{**params, "popularity_exponent": exponent})
            again = ev.evaluate(est, fit_part, valid, ks=(10,), negatives=neg)
            assert again.metrics["NDCG@10"] == pytest.approx(cached, abs=1e-6)


def test_tune_auto_with_fitted_factors_scores_ials_as_a_build_serves_its_users():
    """With ``ials_fitted_factors`` the validation score is that of the stored user factors, not a fresh ALS step."""
    from recommendations.algorithms import get_estimator

    train = _clustered()
    res = ev.tune_auto_protocols(train, {"full": None}, n_iter=0, members=["rp3beta", "ials"],
                                 start_params={"ials": {"factors": 8, "iterations": 3, "regularization": 0.1}},
                                 random_state=3, ials_fitted_factors=True)["full"]
    fit_part, valid, _ = ev.validation_split(sp.csr_matrix(train), None, None, 3)
    ials = get_estimator("ials", **res.members["ials"].best_params).fit(fit_part)
    rows = np.arange(fit_part.shape[0])
    # the two ways of scoring differ, so the check below can fail
    assert np.abs(ials.score(fit_part, rows) - ials.score(fit_part)).max() > 1e-4
    served, _, _ = ev.evaluate_scores(lambda r: ials.score(fit_part[r], r), fit_part, valid, ks=(10,))
    assert served["NDCG@10"] == pytest.approx(res.members["ials"].best_score, abs=1e-6)
    auto = get_estimator("auto", **res.best_params).fit(fit_part)
    blended, _, _ = ev.evaluate_scores(lambda r: auto.score(fit_part[r], r), fit_part, valid, ks=(10,))
    assert blended["NDCG@10"] == pytest.approx(res.best_score, abs=1e-6)


def test_tune_auto_skips_ease_above_the_catalogue_limit_and_rejects_unknown_members():
    train = _clustered(n_users=120, n_items=40)
    res = ev.tune_auto(train, n_negatives=None, n_iter=1, search_spaces=FAST_SPACES, ease_max_items=10,
                       members=["rp3beta", "ease"])
    assert set(res.members) == {"rp3beta"}
    assert res.best_params["weights"] == {"rp3beta": 1.0}
    with pytest.raises(ValueError, match="unknown members"):
        ev.tune_auto(train, members=["svd"])
    with pytest.raises(ValueError, match="at least one of"):
        ev.tune_auto(train, members=["ials"])


def test_objective_value_adds_the_named_metrics_and_rejects_empty_parts():
    metrics = {"HR@10": 0.5, "NDCG@10": 0.25, "HR@5": 0.4}
    assert ev.objective_value(metrics, "NDCG@10") == 0.25
    assert ev.objective_value(metrics, "HR@10+NDCG@10") == pytest.approx(0.75)
    assert math.isnan(ev.objective_value(metrics, "HR@10+MAP@10"))
    assert ev.with_metric_k((5,), "HR@10+NDCG@20") == (5, 10, 20)
    with pytest.raises(ValueError, match="bad tuning metric"):
        ev.objective_value(metrics, "HR@10+")


def _popularity_factory(fitted_nnz):
    class Pop:
        def __init__(self, noise=0.0):
            self.noise = noise

        def fit(self, ui):
            fitted_nnz.append(ui.nnz)
            self.pop = np.asarray(ui.sum(axis=0)).ravel()
            return self

        def score(self, rows):
            rng = np.random.default_rng(0)
            return np.tile(self.pop, (rows.shape[0], 1)) + self.noise * rng.random((rows.shape[0], self.pop.size))

    return lambda name, **p: Pop(**p)


def test_tune_with_folds_averages_independent_carvings_and_fold_zero_is_the_single_split():
    train = _clustered(n_users=120, n_items=40)
    space = {"noise": [0.0, 5.0]}
    fitted: list[int] = []
    one = ev.tune("pop", train, space, factory=_popularity_factory(fitted), metric="HR@10+NDCG@10", random_state=1)
    fitted_three: list[int] = []
    three = ev.tune("pop", train, space, factory=_popularity_factory(fitted_three), metric="HR@10+NDCG@10",
                    n_folds=3, random_state=1)
    assert len(fitted_three) == 3 * len(fitted)  # every candidate is fitted once per fold
    for t1, t3 in zip(one.trials, three.trials):
        assert t1["params"] == t3["params"]
        assert len(t3["folds"]) == 3
        assert t3["folds"][0] == pytest.approx(t1["HR@10+NDCG@10"])  # fold 0 is the single split
        assert t3["HR@10+NDCG@10"] == pytest.approx(np.mean(t3["folds"]))
        assert len(set(t3["folds"])) > 1  # the folds hold out different items
    # each value is the sum of the two metrics measured directly on fold 1's carving
    fit_part, valid, _ = ev.validation_split(sp.csr_matrix(train), None, None, ev.fold_seed(1, 1))
    m = ev.evaluate(_popularity_factory([])("pop", noise=0.0), fit_part, valid, ks=(10,)).metrics
    assert three.trials[0]["folds"][1] == pytest.approx(m["HR@10"] + m["NDCG@10"])


def test_folds_need_the_random_split():
    train = _clustered(n_users=60, n_items=30)
    with pytest.raises(ValueError, match="random validation split"):
        ev.tune("pop", train, {}, factory=_popularity_factory([]), timestamps=train, n_folds=2)
    with pytest.raises(ValueError, match="at least 1"):
        ev.tune_auto(train, n_folds=0)


def test_tune_auto_with_folds_scores_what_auto_gets_on_every_fold():
    """With several folds, each cached-score blend equals the mean of real Auto fits on the folds."""
    from recommendations.algorithms import get_estimator

    train = _clustered()
    metric = "HR@10+NDCG@10"
    results = ev.tune_auto_protocols(train, {"sampled": 30, "full": None}, n_iter=2, search_spaces=FAST_SPACES,
                                     n_folds=2, metric=metric, random_state=3)
    for protocol, res in results.items():
        assert res.metric == metric
        per_fold = []
        for f in range(2):
            seed = ev.fold_seed(3, f)
            fit_part, valid, _ = ev.validation_split(sp.csr_matrix(train), None, None, seed)
            neg = ev.sample_negatives(fit_part, valid, n_negatives=30, random_state=seed + 1) if protocol == "sampled" else None
            m = ev.evaluate(get_estimator("auto", **res.best_params), fit_part, valid, ks=(10,), negatives=neg).metrics
            per_fold.append(m["HR@10"] + m["NDCG@10"])
        assert res.best_score == pytest.approx(np.mean(per_fold), abs=1e-6)
        assert res.best_score >= max(m.best_score for m in res.members.values()) - 1e-12
        for member in res.members.values():
            assert all(len(t["folds"]) == 2 for t in member.trials)
            assert member.best_score == max(t[metric] for t in member.trials)
        # the blend search never scores the same weights twice
        keys = [tuple(sorted(t["weights"].items())) + (t.get("popularity_exponent", 0.0),) for t in res.trials]
        assert len(keys) == len(set(keys))
