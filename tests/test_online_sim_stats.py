"""Tests of the online simulation's statistics helpers (no database: the power search, re-splits, Wilson intervals)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.online_sim_stats import assign, readers_for_power, srm_rates, true_ctr_lift, wilson


class ReadersForPowerTests:
    def test_finds_the_threshold_within_five_percent(self):
        n, curve = readers_for_power(lambda rng, n: n >= 37, target=0.8, draws=3, seed=0)
        assert 37 <= n <= 39
        assert all((p == 1.0) == (m >= 37) for m, p in curve)

    def test_stops_between_neighbouring_counts(self):
        # 10 fails and 11 passes: the search must end although sqrt(10 * 11) rounds down to 10.
        n, _ = readers_for_power(lambda rng, n: n >= 11, target=0.8, draws=2, seed=0, low=10)
        assert n == 11

    def test_unreachable_power_is_none(self):
        n, curve = readers_for_power(lambda rng, n: False, target=0.8, draws=2, seed=0, high=100)
        assert n is None and curve[-1][0] == 100


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
