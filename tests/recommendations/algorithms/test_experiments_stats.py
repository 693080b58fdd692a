"""Tests of the experiment statistics: ratio intervals, the sequential test, SRM and team-draft interleaving."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from recommendations.algorithms import experiments_stats as es

DAYS = 14


def _readers(rng: np.random.Generator, n: int, ctr: float, concentration: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered readers: each has their own click rate (beta around ``ctr``) and a number of impressions."""
    impressions = rng.poisson(4, n) + 1
    rates = rng.beta(concentration, concentration * (1 - ctr) / ctr, n)
    return rng.binomial(impressions, rates).astype(float), impressions.astype(float)


def _daily_looks(rng, ctr_a: float, ctr_b: float, per_day: int = 150):
    """Yield the cumulative ``Difference`` of each day of one simulated experiment."""
    a = ([], [])
    b = ([], [])
    for _ in range(DAYS):
        for arm, ctr in ((a, ctr_a), (b, ctr_b)):
            clicks, imps = _readers(rng, per_day, ctr)
            arm[0].append(clicks)
            arm[1].append(imps)
        yield es.ratio_difference((np.concatenate(a[0]), np.concatenate(a[1])),
                                  (np.concatenate(b[0]), np.concatenate(b[1])), tau=0.01)


def _rejections(seed: int, n_sims: int, ctr_b: float) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    naive = sequential = final = 0
    for _ in range(n_sims):
        looks = list(_daily_looks(rng, 0.1, ctr_b))
        naive += any(d.p_value < 0.05 for d in looks)
        sequential += min(es.sequential_p_values([d.diff for d in looks], [d.se**2 for d in looks], 0.01)) < 0.05
        final += looks[-1].p_value < 0.05
    return {"naive": naive / n_sims, "sequential": sequential / n_sims, "final": final / n_sims}


class RatioEstimateTests:
    def test_value_is_the_ratio_of_sums(self):
        estimate = es.ratio_estimate([1, 0, 3], [2, 2, 4])
        assert estimate.value == pytest.approx(0.5)
        assert estimate.n_units == 3 and estimate.ci_low < 0.5 < estimate.ci_high

    def test_delta_method_matches_a_bootstrap_over_readers(self):
        rng = np.random.default_rng(3)
        clicks, imps = _readers(rng, 2000, 0.1)
        estimate = es.ratio_estimate(clicks, imps)
        picks = rng.integers(0, clicks.size, (2000, clicks.size))
        boot = clicks[picks].sum(axis=1) / imps[picks].sum(axis=1)
        assert estimate.se == pytest.approx(boot.std(ddof=1), rel=0.1)

    def test_clustered_readers_widen_the_interval_over_the_per_impression_one(self):
        rng = np.random.default_rng(4)
        clicks, imps = _readers(rng, 2000, 0.1, concentration=0.5)
        ratio = clicks.sum() / imps.sum()
        per_impression = math.sqrt(ratio * (1 - ratio) / imps.sum())
        assert es.ratio_estimate(clicks, imps).se > 1.2 * per_impression

    def test_one_unit_has_no_interval(self):
        assert math.isnan(es.ratio_estimate([1], [2]).se)

    def test_mismatched_lengths_are_refused(self):
        with pytest.raises(ValueError, match="differ in length"):
            es.ratio_estimate([1, 2], [3])


class SequentialTests:
    def test_aa_false_positives_stay_at_alpha_with_daily_peeking(self):
        rates = _rejections(seed=11, n_sims=200, ctr_b=0.1)
        # Reading a fixed-horizon p-value every day inflates false positives; the mSPRT does not.
        assert rates["naive"] > 0.1
        assert rates["sequential"] <= 0.07
        assert 0.01 <= rates["final"] <= 0.1

    def test_a_real_lift_is_detected(self):
        rates = _rejections(seed=12, n_sims=40, ctr_b=0.13)
        assert rates["sequential"] >= 0.8

    def test_sequential_p_value_never_increases(self):
        p = es.sequential_p_values([0.0, 0.02, 0.0, 0.03], [1e-4, 5e-5, 3e-5, 2e-5], tau=0.01)
        assert p == sorted(p, reverse=True) and p[0] == 1.0

    def test_always_valid_interval_is_wider_than_the_fixed_one(self):
        d = es.ratio_difference(([1, 2, 0, 1] * 50, [5] * 200), ([2, 2, 1, 1] * 50, [5] * 200))
        assert d.sequential_ci_low < d.ci_low < d.diff < d.ci_high < d.sequential_ci_high
        assert d.sequential_p_value >= d.p_value


class SRMTests:
    def test_a_55_45_split_declared_50_50_is_flagged(self):
        rng = np.random.default_rng(5)
        arms = rng.random(2000) < 0.55
        result = es.srm_check([int(arms.sum()), int((~arms).sum())], [0.5, 0.5])
        assert result.flagged and result.p_value < es.SRM_ALPHA

    def test_a_fair_split_is_not_flagged(self):
        rng = np.random.default_rng(6)
        flags = sum(es.srm_check(np.bincount(rng.random(2000) < 0.5, minlength=2), [0.5, 0.5]).flagged
                    for _ in range(200))
        assert flags <= 2

    def test_hash_buckets_respect_shares(self):
        arms = np.bincount([es.bucket([0.2, 0.8], "salt", user) for user in range(5000)], minlength=2)
        assert not es.srm_check(arms, [0.2, 0.8]).flagged
        assert arms[0] / 5000 == pytest.approx(0.2, abs=0.02)


class TeamDraftTests:
    def test_merge_keeps_each_list_order_and_no_duplicate(self):
        items, teams = es.team_draft_interleave(list("abcdefgh"), list("bdfxyzuv"), 8, seed=1)
        assert len(items) == len(set(items)) == 8
        for team, ranking in ((0, "abcdefgh"), (1, "bdfxyzuv")):
            mine = [item for item, t in zip(items, teams) if t == team]
            assert mine == [item for item in ranking if item in mine]
        assert abs(teams.count(0) - teams.count(1)) <= 1

    def test_an_item_both_teams_propose_in_the_same_round_is_neutral(self):
        # Round 1: both propose "s" (neutral); round 2: "a" and "b"; round 3: "c" and "t" ("t" is B's, A has it later).
        items, teams = es.team_draft_interleave(list("sacte"), list("sbtc"), 5, seed=3)
        assert items[0] == "s" and teams[0] is None
        assert sorted(zip(teams[1:], items[1:])) == [(0, "a"), (0, "c"), (1, "b"), (1, "t")]
        assert es.interleaving_credit(teams, [0, 0]) == (0, 0)

    def test_identical_lists_credit_nobody(self):
        ranking = list(range(10))
        items, teams = es.team_draft_interleave(ranking, ranking, 10, seed="s")
        assert items == ranking and teams == [None] * 10
        assert es.interleaving_credit(teams, range(10)) == (0, 0)

    def test_overlapping_lists_are_credited_without_bias_under_clicks_by_position(self):
        # Clicks that depend on position alone prefer neither ranking, however much their lists overlap.
        rng = np.random.default_rng(17)
        ranking_a, ranking_b = list("sabcdefghi"), list("jsbkaclmno")
        credits = []
        for reader in range(3000):
            _, teams = es.team_draft_interleave(ranking_a, ranking_b, 10, seed=("salt", reader))
            clicked = [p for p in range(10) if rng.random() < 0.5 / (p + 1)]
            credits.append(es.interleaving_credit(teams, clicked))
        a, b = np.array(credits, dtype=float).T
        assert abs((b - a).mean()) < 3 * (b - a).std() / np.sqrt(a.size)

    def test_disjoint_lists_are_credited_without_bias(self):
        rng = np.random.default_rng(7)
        ranking_a, ranking_b = list(range(10)), list(range(100, 110))
        credits = []
        for reader in range(2000):
            _, teams = es.team_draft_interleave(ranking_a, ranking_b, 10, seed=("salt", reader))
            # Clicks fall with rank, as readers examine the top of a list more.
            clicked = [p for p in range(10) if rng.random() < 0.3 / (p + 1)]
            credits.append(es.interleaving_credit(teams, clicked))
        result = es.interleaving_preference([c[0] for c in credits], [c[1] for c in credits])
        assert result.p_value > 0.01
        assert abs(result.delta) < 0.05

    def test_the_better_ranking_wins(self):
        rng = np.random.default_rng(8)
        good, bad = list("abcdefgh"), list("stuvwxyz")
        credits = []
        for reader in range(200):
            items, teams = es.team_draft_interleave(bad, good, 8, seed=reader)
            clicked = [p for p, item in enumerate(items) if item in "abcd" and rng.random() < 0.5]
            credits.append(es.interleaving_credit(teams, clicked))
        result = es.interleaving_preference([c[0] for c in credits], [c[1] for c in credits])
        assert result.wins_b > result.wins_a and result.p_value < 1e-6 and result.delta > 0

    def test_the_draw_is_reproducible_from_its_seed(self):
        first = es.team_draft_interleave(list("abcd"), list("dcba"), 4, seed="s:1")
        assert es.team_draft_interleave(list("abcd"), list("dcba"), 4, seed="s:1") == first

    def test_short_lists_end_the_merge(self):
        items, teams = es.team_draft_interleave(["a"], ["a", "b"], 5)
        assert items == ["a", "b"] and len(teams) == 2


def _interleaved_aa(rng, *, readers: int, lists: int, favourite: float):
    """Simulate one interleaving of two disjoint rankings under clicks by position alone: each reader keeps
    their coin (teams) and leans towards a favourite position; return per-reader credits (A, B), lists, and
    per-list credits."""
    ranking_a, ranking_b = list(range(10)), list(range(100, 110))
    per_reader, per_list = [], []
    for reader in range(readers):
        _, teams = es.team_draft_interleave(ranking_a, ranking_b, 10, seed=(rng.integers(1 << 30), reader))
        liking = rng.beta(1, 4)  # readers differ a lot in how much they click
        spot = int(rng.integers(0, 10))
        totals = [0, 0]
        for _ in range(lists):
            clicked = [p for p in range(10) if rng.random() < liking / (p + 1)]
            if rng.random() < favourite:
                clicked.append(spot)
            credit = es.interleaving_credit(teams, clicked)
            per_list.append(credit)
            totals = [totals[0] + credit[0], totals[1] + credit[1]]
        per_reader.append(totals)
    a, b = np.array(per_reader, dtype=float).T
    return a, b, np.full(readers, lists), np.array(per_list, dtype=float).T


class CreditDifferenceTests:
    def test_one_list_per_reader_is_the_one_sample_t_test(self):
        a, b = np.array([0, 2, 1, 0, 3, 1.0]), np.array([1, 2, 3, 0, 2, 4.0])
        result = es.credit_difference(a, b, np.ones(6))
        expected = stats.ttest_1samp(b - a, 0.0)
        assert result.diff == pytest.approx((b - a).mean())
        assert result.p_value == pytest.approx(expected.pvalue)
        assert result.se == pytest.approx(stats.sem(b - a))

    def test_each_reader_counts_once(self):
        # Reader 1: 4 lists, B +4 (+1 per list); reader 2: 1 list, B -1. Per reader: mean(+1, -1) = 0,
        # where pooling the lists would give (4 - 1) / 5.
        result = es.credit_difference([0, 1, 0], [4, 0, 1], [4, 1, 2])
        assert result.diff == pytest.approx((1 - 1 + 0.5) / 3)
        assert result.n_units == 3 and result.ci_low < result.diff < result.ci_high

    def test_no_clicks_is_no_evidence(self):
        assert es.credit_difference(np.zeros(5), np.zeros(5), np.ones(5)).p_value == 1.0
        assert es.interleaving_preference([0], [3], [1]).p_value == 1.0  # one reader decides nothing

    def test_aa_false_positive_rate_is_alpha_with_readers_as_the_unit(self):
        rng = np.random.default_rng(11)
        clustered = per_list = 0
        n = 300
        for _ in range(n):
            a, b, lists, (list_a, list_b) = _interleaved_aa(rng, readers=80, lists=5, favourite=0.6)
            clustered += es.interleaving_preference(a, b, lists).p_value < 0.05
            per_list += es.credit_difference(list_a, list_b, np.ones(list_a.size)).p_value < 0.05
        assert 0.02 * n <= clustered <= 0.08 * n
        # Lists of one reader share their coin and their taste: treating them as independent over-rejects.
        assert per_list > 0.12 * n

    def test_the_credit_test_is_more_sensitive_than_the_sign_test(self):
        rng = np.random.default_rng(12)
        good, bad = list(range(10)), list(range(100, 110))
        credit_hits = sign_hits = 0
        for _ in range(150):
            a, b, shown = [], [], []
            for reader in range(60):
                items, teams = es.team_draft_interleave(bad, good, 10, seed=(rng.integers(1 << 30), reader))
                liking = rng.beta(1, 3)
                totals = [0, 0]
                for _ in range(3):
                    clicked = [p for p, item in enumerate(items)
                               if rng.random() < liking * (1.25 if item < 100 else 1.0) / (p + 1)]
                    credit = es.interleaving_credit(teams, clicked)
                    totals = [totals[0] + credit[0], totals[1] + credit[1]]
                a.append(totals[0])
                b.append(totals[1])
                shown.append(3)
            result = es.interleaving_preference(a, b, shown)
            credit_hits += result.p_value < 0.05 and result.credit_diff > 0
            sign_hits += result.sign_p_value < 0.05 and result.delta > 0
        assert credit_hits > sign_hits
