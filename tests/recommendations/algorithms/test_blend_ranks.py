"""Tests of recommendations/algorithms/blend_ranks.py: the blend search's positions from members' top columns."""
from __future__ import annotations

import numpy as np
import pytest

from recommendations.algorithms import auto_tuning, blend_ranks
from recommendations.algorithms.blend_ranks import blend_values, member_tops, top_column_positions

from .test_auto import FAST, _clustered


def _full_positions(terms, positives, scale):
    """The held-out items' tie-aware positions over every column of the full blend (the reference)."""
    S = blend_values(terms)
    if scale is not None:
        S = S * scale[None, :]
    held = S[np.arange(len(S)), positives][:, None]
    return (S > held).sum(axis=1) + 0.5 * ((S == held).sum(axis=1) - 1)


def _members(rng, n_rows, n_cols, n_members):
    """Score blocks with many ties (a few distinct values), negatives, and -inf where items were read."""
    read = rng.random((n_rows, n_cols)) < 0.2
    mats = []
    for _ in range(n_members):
        M = rng.integers(-3, 12, (n_rows, n_cols)).astype(np.float32) / np.float32(7.0)
        M[read] = -np.inf
        mats.append(M)
    positives = np.array([rng.choice(np.flatnonzero(~row)) for row in read])
    return mats, positives


@pytest.mark.parametrize("seed", range(6))
def test_positions_from_top_columns_equal_the_full_blends_below_the_cut_off(seed):
    rng = np.random.default_rng(seed)
    mats, positives = _members(rng, 60, 90, 3)
    k_max, settled = 10, 0
    for trial in range(20):
        weights = rng.choice([0.0, 0.05, 0.5, 1.0, 2.0, 1e6], size=3)
        weights[rng.integers(3)] = 1.0
        scale = None if trial % 3 == 0 else rng.choice([0.5, 1.0, 2.0], size=90).astype(np.float32)
        terms = [(M, w) for M, w in zip(mats, weights) if w > 0]
        tops = [member_tops(M, 8) for M, w in zip(mats, weights) if w > 0]
        got = top_column_positions(terms, tops, positives, scale, k_max)
        want = _full_positions(terms, positives, scale)
        known = ~np.isnan(got)
        settled += known.sum()
        below = known & (want < k_max)
        assert np.array_equal(got[below], want[below])  # exact, ties included
        assert (want[known & (got >= k_max)] >= k_max).all()  # past the cut-off for every metric
        assert (got[known & (want >= k_max)] >= k_max).all()
    assert settled > 0.5 * 20 * 60  # the top columns settle most rows


def test_the_bound_leaves_a_row_to_the_full_blend_when_an_outside_item_could_outscore_the_held_out_one():
    # the held-out item (column 3) is the member's 4th best; a top of 2 cannot rule out column 2
    M = np.array([[9.0, 8.0, 7.0, 6.0, 1.0, 0.0]], dtype=np.float32)
    tops = [member_tops(M, 2)]
    assert np.isnan(top_column_positions([(M, 1.0)], tops, np.array([3]), None, k_max=10)).all()
    # nor can a top of 4, whose smallest score is the held-out item's own (a column left out could tie it)
    assert np.isnan(top_column_positions([(M, 1.0)], [member_tops(M, 4)], np.array([3]), None, k_max=10)).all()
    # with a top of 5 the held-out item is above every column left out: exact
    assert top_column_positions([(M, 1.0)], [member_tops(M, 5)], np.array([3]), None, k_max=10).tolist() == [3.0]
    # with a cut-off of 2, two higher columns in the top already place it past every cut-off
    assert top_column_positions([(M, 1.0)], tops, np.array([3]), None, k_max=2).tolist() == [2.0]


def test_the_blend_search_chooses_the_same_through_the_top_columns_as_through_full_blends(monkeypatch):
    train = _clustered(n_users=120, n_items=60, seed=21)
    # popularity exponents (a column scale) and no exponent are both searched
    kwargs = dict(start_params=FAST, n_iter=1, members=["rp3beta", "itemknn", "ials"], ks=(5,), n_folds=2)
    fast = auto_tuning.tune_auto(train, **kwargs)
    # Every row left to the full blend: the search's original path.
    monkeypatch.setattr(auto_tuning, "top_column_positions",
                        lambda terms, tops, positives, scale, k_max: np.full(positives.size, np.nan))
    full = auto_tuning.tune_auto(train, **kwargs)
    assert fast.best_params == full.best_params and fast.best_score == full.best_score
    assert fast.trials == full.trials and len(fast.trials) > 10


def test_a_narrow_top_only_sends_more_rows_to_the_full_blend(monkeypatch):
    train = _clustered(n_users=120, n_items=60, seed=22)
    kwargs = dict(start_params=FAST, n_iter=0, members=["rp3beta", "itemknn"], ks=(10,))
    wide = auto_tuning.tune_auto(train, **kwargs)
    monkeypatch.setattr(blend_ranks, "TOP_WIDTH_MIN", 1)
    monkeypatch.setattr(auto_tuning, "TOP_WIDTH_MIN", 1)
    monkeypatch.setattr(auto_tuning, "TOP_WIDTH_PER_K", 1)
    narrow = auto_tuning.tune_auto(train, **kwargs)
    assert narrow.trials == wide.trials and narrow.best_params == wide.best_params
