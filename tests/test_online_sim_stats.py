"""Tests of the online simulation's statistics helpers (no database: needs at equal power, re-splits, Wilson intervals)."""
from __future__ import annotations

import numpy as np
import pytest

from scipy import stats

from benchmarks.online_sim_stats import (
    ab_need,
    clicked_only_gain,
    assign,
    expected_preference,
    interleaving_aa,
    interleaving_need,
    noise,
    ratio_parts,
    srm_rates,
    true_ctr_lift,
    wilson,
)


class NeedTests:
    def test_interleaving_need_is_the_normal_approximation_at_the_true_effect(self):
        rng = np.random.default_rng(3)
        a, b = rng.poisson(1.0, (200, 3)).astype(float), rng.poisson(1.2, (200, 3)).astype(float)
        lists = np.ones((200, 3))
        expected = np.full((200, 3), 0.1)
        need = interleaving_need(expected, a, b, lists, alpha=0.05, power_target=0.8)
        observed = (b[:, :1] - a[:, :1]).ravel()
        z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
        assert need.by_days[1][0] == pytest.approx(z**2 * observed.var(ddof=1) / 0.1**2)
        assert need.impressions == min(v[1] for v in need.by_days.values())
        assert need.impressions == pytest.approx(need.readers * need.days)

    def test_a_larger_effect_needs_fewer_impressions(self):
        rng = np.random.default_rng(4)
        clicks, lists = rng.binomial(1, 0.3, (400, 2)).astype(float), np.ones((400, 2))
        arms = np.arange(400) % 2
        small = np.where(arms[:, None] == 1, 0.33, 0.30) * lists
        large = np.where(arms[:, None] == 1, 0.45, 0.30) * lists
        need_small = ab_need(small, clicks, lists, arms, alpha=0.05, power_target=0.8)
        need_large = ab_need(large, clicks, lists, arms, alpha=0.05, power_target=0.8)
        # At the same variance the need scales as 1 / effect^2: (0.15 / 0.03)^2 = 25.
        assert need_small.by_days[2][0] / need_large.by_days[2][0] == pytest.approx(25, rel=1e-6)
        assert need_small.by_days[1][2] == pytest.approx(0.03)


class RatioPartsTests:
    def _designs(self, spread: float):
        """Readers whose expected clicks per list differ by ``spread``; an A/B phase and an interleaving phase."""
        rng = np.random.default_rng(11)
        n = 4000
        lists = np.ones((n, 1))
        arms = np.arange(n) % 2
        base = rng.gamma(1 / spread**2, spread**2, n) * 0.5 if spread else np.full(n, 0.5)
        expected_ab = (base * np.where(arms == 1, 1.2, 1.0))[:, None]
        clicks = rng.poisson(expected_ab).astype(float)
        expected_il = (base * 0.05)[:, None]  # B is credited a little more than A, in proportion to activity
        b, a = rng.poisson(base * 0.55)[:, None].astype(float), rng.poisson(base * 0.5)[:, None].astype(float)
        return expected_ab, clicks, lists, arms, expected_il, a, b

    def test_the_need_ratio_is_kept_squared_times_h(self):
        expected_ab, clicks, lists, arms, expected_il, a, b = self._designs(0.8)
        need_ab = ab_need(expected_ab, clicks, lists, arms, alpha=0.05, power_target=0.8)
        need_il = interleaving_need(expected_il, a, b, lists, alpha=0.05, power_target=0.8)
        kept = need_il.by_days[1][2] / need_ab.by_days[1][2]
        arms_noise = [noise(expected_ab[arms == k], clicks[arms == k], lists[arms == k], 1) for k in (0, 1)]
        parts = ratio_parts(arms_noise, noise(expected_il, b - a, lists, 1), days_ab=1, days_il=1, kept=kept)
        assert parts["kept_factor"] * parts["h"] == pytest.approx(need_ab.impressions / need_il.impressions)
        assert parts["h"] == pytest.approx(parts["w"] * (1 - parts["b_il"]) / (1 - parts["b_ab"]))

    def test_readers_alike_leave_no_between_reader_noise(self):
        expected_ab, clicks, lists, arms, expected_il, a, b = self._designs(0.0)
        arms_noise = [noise(expected_ab[arms == k], clicks[arms == k], lists[arms == k], 1) for k in (0, 1)]
        parts = ratio_parts(arms_noise, noise(expected_il, b - a, lists, 1), days_ab=1, days_il=1, kept=0.5)
        assert parts["b_ab"] == pytest.approx(0.0) and parts["cv_now"] == pytest.approx(0.0)
        # Poisson clicks, as many credited per interleaved list (.25 + .275) as an arm gets (.5 or .6):
        # with readers alike interleaving saves no noise per impression, h is near 1.
        assert parts["h"] == pytest.approx(0.55 / 0.525, rel=0.1)
        # 10x at kept .5 needs 10x the noise: 1 - w / 10 of the A/B noise between readers.
        assert parts["b_needed"] == pytest.approx(1 - parts["w"] / 10)


class ExpectedPreferenceTests:
    def test_it_is_the_exact_probability_that_b_gets_more_clicks_minus_that_a_does(self):
        # B at p .5; A at .4; a neutral position at .9 counts for neither.
        p_b_more = 0.5 * 0.6
        p_a_more = 0.4 * 0.5
        assert expected_preference([(0.5, 1), (0.4, -1), (0.9, 0)]) == pytest.approx(p_b_more - p_a_more)
        assert expected_preference([(0.3, 1), (0.3, -1)]) == pytest.approx(0.0)
        assert expected_preference([]) == 0.0

    def test_it_matches_drawn_lists(self):
        rng = np.random.default_rng(9)
        positions = [(0.6, 1), (0.3, -1), (0.2, 1), (0.5, -1), (0.1, 1)]
        draws = rng.random((40000, len(positions))) < [p for p, _ in positions]
        signs = np.sign(draws.astype(float) @ np.array([s for _, s in positions], dtype=float))
        assert expected_preference(positions) == pytest.approx(signs.mean(), abs=0.015)


class InterleavingAATests:
    def test_recrediting_clicks_under_many_coins_rejects_about_alpha(self):
        rng = np.random.default_rng(5)
        units = [f"u:{i}" for i in range(120)]
        lists = [(i, day, 10, tuple(p for p in range(1, 11) if rng.random() < 0.3 / p))
                 for i in range(120) for day in range(3)]
        counts = interleaving_aa(units, lists, n_salts=100, alpha=0.05)
        assert 1 <= counts["credit"] <= 10
        assert counts == interleaving_aa(units, lists, n_salts=100, alpha=0.05)  # the coins are seeded


class SplitTests:
    def test_assignment_is_sticky_and_follows_the_shares(self):
        units = [f"u:{i}" for i in range(20000)]
        first = assign(units, "salt-1", (0.55, 0.45))
        assert np.array_equal(first, assign(units, "salt-1", (0.55, 0.45)))
        assert abs(np.mean(first == 0) - 0.55) < 0.015
        assert not np.array_equal(first, assign(units, "salt-2", (0.55, 0.45)))

    def test_srm_flags_the_broken_split_not_the_honest_one(self):
        rates = srm_rates([f"u:{i}" for i in range(8000)], n_salts=5, threshold=0.001)
        assert rates["broken"] == (5, 5) and rates["honest"][0] <= 1


def test_wilson_interval():
    low, high = wilson(10, 200)
    assert low == pytest.approx(0.0274, abs=1e-3) and high == pytest.approx(0.0897, abs=1e-3)


def test_true_lift_is_the_difference_of_expected_ctrs():
    expected = (np.array([1.0, 1.0]), np.array([3.0, 1.0]))
    impressions = (np.array([4.0, 4.0]), np.array([4.0, 4.0]))
    lift, low, high, control = true_ctr_lift(expected, impressions, draws=50, seed=0)
    assert lift == pytest.approx(0.25) and control == pytest.approx(0.25) and low <= lift <= high


def test_readers_who_never_click_cost_the_credit_test_little_when_the_effect_is_small():
    rng = np.random.default_rng(12)
    n = 6000
    clicker = rng.random(n) < 0.4
    a = rng.poisson(np.where(clicker, 1.0, 0.0))[:, None].astype(float)
    lists = np.ones((n, 1))
    small = rng.poisson(np.where(clicker, 1.05, 0.0))[:, None].astype(float)
    large = rng.poisson(np.where(clicker, 3.0, 0.0))[:, None].astype(float)
    gain_small = clicked_only_gain(small - a, a + small, lists, 1)
    gain_large = clicked_only_gain(large - a, a + large, lists, 1)
    # t² of all readers is q n m² / (s² + (1 - q) m²) against q n m² / s² for the clickers alone.
    assert gain_small == pytest.approx(1.0, abs=0.02)
    assert gain_large > 1.2
