"""Tests for the feedback model: stars, dwell, bounce, repeats, recency decay, not interested."""

from __future__ import annotations

import numpy as np
import pytest

from recommendations.algorithms.feedback import FeedbackConfig, FeedbackEvents, confidence_matrix

DAY = 86_400.0
NO_DECAY = FeedbackConfig(half_life_days=None)


def events(**columns):
    n = len(columns["user"])
    columns.setdefault("item", list(range(n)))
    columns.setdefault("timestamp", [0.0] * n)
    return FeedbackEvents(**columns)


def test_ratings_one_and_two_stars_are_negative():
    ev = events(user=[0] * 5, kind=["rating"] * 5, stars=[1, 2, 3, 4, 5])
    positive, negative = confidence_matrix(ev, 1, 5, NO_DECAY)
    np.testing.assert_allclose(positive.toarray(), [[0, 0, 1, 2, 3]])
    np.testing.assert_allclose(negative.toarray(), [[2, 1, 0, 0, 0]])


def test_rating_without_stars_is_an_error():
    ev = events(user=[0], kind=["rating"])
    with pytest.raises(ValueError, match="no stars"):
        confidence_matrix(ev, 1, 1, NO_DECAY)


def test_dwell_is_normalised_by_estimated_reading_time():
    # Item 0 has 460 words (2 min at 230 wpm), item 1 has 2300 words (10 min).
    # Both read for 120 s: item 0 fully engaged, item 1 at 20 %.
    ev = events(user=[0, 0], kind=["read", "read"], dwell_seconds=[120.0, 120.0], item_words=[460.0, 2300.0])
    positive, _ = confidence_matrix(ev, 1, 2, NO_DECAY)
    floor = NO_DECAY.min_read_fraction
    np.testing.assert_allclose(positive.toarray(), [[1.0, floor + (1 - floor) * 0.2]], rtol=1e-6)


def test_progress_counts_and_unknown_engagement_counts_fully():
    ev = events(user=[0, 0], kind=["read", "read"], progress=[0.5, np.nan])
    positive, _ = confidence_matrix(ev, 1, 2, NO_DECAY)
    floor = NO_DECAY.min_read_fraction
    np.testing.assert_allclose(positive.toarray(), [[floor + (1 - floor) * 0.5, 1.0]], rtol=1e-6)


def test_bounce_is_negative():
    ev = events(user=[0, 0], kind=["read", "read"], dwell_seconds=[3.0, 3.0], progress=[np.nan, 0.9])
    positive, negative = confidence_matrix(ev, 1, 2, NO_DECAY)
    assert negative[0, 0] == pytest.approx(NO_DECAY.bounce_weight)
    assert positive[0, 0] == 0
    # A short visit that still reached 90 % of the text is a fast read, not a bounce.
    assert positive[0, 1] > 0 and negative[0, 1] == 0


def test_not_interested_is_negative():
    ev = events(user=[0], kind=["not_interested"])
    positive, negative = confidence_matrix(ev, 1, 1, NO_DECAY)
    assert positive.nnz == 0
    assert negative[0, 0] == pytest.approx(NO_DECAY.not_interested_weight)


def test_repeated_reads_add_with_diminishing_returns():
    ev = events(user=[0, 0, 0], item=[0, 0, 0], kind=["read"] * 3, timestamp=[0.0, 10.0, 20.0])
    positive, _ = confidence_matrix(ev, 1, 1, NO_DECAY)
    assert positive[0, 0] == pytest.approx(1 + 0.5 + 0.25)


def test_decay_half_life_exactly_halves():
    config = FeedbackConfig(half_life_days=30.0)
    now = 100 * DAY
    ev = events(user=[0, 0, 0], kind=["read"] * 3, timestamp=[now, now - 30 * DAY, now - 60 * DAY])
    positive, _ = confidence_matrix(ev, 1, 3, config, now=now)
    np.testing.assert_allclose(positive.toarray(), [[1.0, 0.5, 0.25]], rtol=1e-6)


def test_positive_and_negative_net_out_per_cell():
    # A 5-star read then "not interested": 3 + 1 - 2 = 2 positive; a read then a 1-star: 1 - 2 = -1.
    ev = events(
        user=[0, 0, 0, 0, 0],
        item=[0, 0, 0, 1, 1],
        kind=["rating", "read", "not_interested", "read", "rating"],
        stars=[5, np.nan, np.nan, np.nan, 1],
    )
    positive, negative = confidence_matrix(ev, 1, 2, NO_DECAY)
    np.testing.assert_allclose(positive.toarray(), [[2.0, 0.0]])
    np.testing.assert_allclose(negative.toarray(), [[0.0, 1.0]])
    assert positive.dtype == np.float32 and negative.dtype == np.float32


def test_validation():
    with pytest.raises(ValueError, match="unknown values"):
        events(user=[0], kind=["click"])
    with pytest.raises(ValueError, match="outside"):
        confidence_matrix(events(user=[5], kind=["read"]), 1, 1, NO_DECAY)
    empty_pos, empty_neg = confidence_matrix(events(user=[], kind=[]), 2, 3)
    assert empty_pos.shape == (2, 3) and empty_pos.nnz == 0 and empty_neg.nnz == 0
