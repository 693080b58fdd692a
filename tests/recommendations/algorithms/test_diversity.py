"""Tests of recommendations.algorithms.diversity: the cap by key and the beyond-accuracy metrics (no Django)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.algorithms import diversity as dv


def _max_prefix_counts(keys, chosen):
    """Largest count of one key in each prefix of the chosen list."""
    out, counts = [], Counter()
    for position in chosen:
        if keys[position] is not None:
            counts[keys[position]] += 1
        out.append(max(counts.values(), default=0))
    return out


class TestCapLimits:
    def test_default_caps(self):
        assert dv.cap_limits(dv.DEFAULT_CAPS, 12).tolist() == [2] * 6 + [3] * 6

    def test_beyond_the_largest_window_scales(self):
        assert dv.cap_limits([(12, 3)], 25).tolist()[11:] == [3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6]  # floor(L / 4)

    def test_order_of_pairs_does_not_matter(self):
        assert dv.cap_limits([(12, 3), (6, 2)], 12).tolist() == dv.cap_limits([(6, 2), (12, 3)], 12).tolist()

    def test_no_caps(self):
        assert (dv.cap_limits([], 4) > 10**9).all()

    @pytest.mark.parametrize(
        "caps", [[(6, 0)], [(0, 1)], [(6, 2), (6, 3)], "6,2", [(6,)], [(6, 2.5)], [(True, 1)], None])
    def test_invalid(self, caps):
        with pytest.raises(ValueError):
            dv.validate_caps(caps)


class TestCappedRanking:
    def test_one_author_is_pushed_down_and_others_move_up(self):
        keys = ["king"] * 8 + ["grisham"] * 4 + ["austen"] * 4
        chosen = dv.capped_ranking(keys, 12, fill=False)
        assert chosen[:6] == [0, 1, 8, 9, 12, 13]  # at most 2 of one author among the first 6
        assert chosen[6] == 2  # a skipped candidate takes the first slot its cap allows, before worse ones
        assert Counter(keys[i] for i in chosen) == {"king": 3, "grisham": 3, "austen": 3}
        # Only three authors cannot fill 12 within the cap: the best skipped complete the list.
        assert dv.capped_ranking(keys, 12) == chosen + [3, 4, 5]

    def test_order_kept_when_nothing_repeats(self):
        assert dv.capped_ranking(list("abcdefghijklmn"), 12) == list(range(12))

    def test_none_is_never_capped_and_does_not_count(self):
        keys = [None] * 10 + ["a"] * 5
        assert dv.capped_ranking(keys, 12) == list(range(12))  # 10 keyless, then 2 "a" within the 6-12 limit of 3
        assert dv.capped_ranking(["a", None, "a", None, "a"], 5, [(5, 2)], fill=False) == [0, 1, 2, 3]

    def test_fill_completes_a_uniform_pool_with_the_best_skipped(self):
        keys = ["a"] * 10 + ["b"]
        assert dv.capped_ranking(keys, 6) == [0, 1, 10, 2, 3, 4]
        assert dv.capped_ranking(keys, 6, fill=False) == [0, 1, 10]

    def test_list_shorter_than_the_pool(self):
        assert dv.capped_ranking(["a", "b"], 12) == [0, 1]
        assert dv.capped_ranking([], 12) == []
        assert dv.capped_ranking(["a", "b"], 0) == []

    def test_empty_caps_is_the_plain_top_n(self):
        assert dv.capped_ranking(["a"] * 20, 12, []) == list(range(12))

    def test_random_pools_respect_every_prefix_and_stay_full(self):
        rng = np.random.default_rng(0)
        limits = dv.cap_limits(dv.DEFAULT_CAPS, 12)
        for _ in range(300):
            m = int(rng.integers(0, 40))
            keys = [None if v == 0 else int(v) for v in rng.integers(0, 5, size=m)]
            strict = dv.capped_ranking(keys, 12, fill=False)
            assert len(set(strict)) == len(strict)
            assert all(c <= limits[i] for i, c in enumerate(_max_prefix_counts(keys, strict)))
            filled = dv.capped_ranking(keys, 12)
            assert len(filled) == min(12, m)
            assert filled[: len(strict)] == strict

    def test_penalty_moves_repeats_down(self):
        keys = ["a", "a", "b", "c"]
        assert dv.capped_ranking(keys, 4, [(4, 2)]) == [0, 1, 2, 3]
        # The second "a" competes at 1 + 2 = 3: after "b" (2), before "c" (3, a tie goes to the better-ranked).
        assert dv.capped_ranking(keys, 4, [(4, 2)], penalty=2) == [0, 2, 1, 3]
        assert dv.capped_ranking(keys, 4, [(4, 2)], penalty=2.5) == [0, 2, 3, 1]
        assert dv.capped_ranking(keys, 4, [], penalty=2.5) == [0, 2, 3, 1]

    def test_penalty_never_breaks_the_caps(self):
        rng = np.random.default_rng(1)
        limits = dv.cap_limits(dv.DEFAULT_CAPS, 12)
        for _ in range(300):
            keys = [None if v == 0 else int(v) for v in rng.integers(0, 6, size=int(rng.integers(0, 40)))]
            for penalty in (1.0, 8.0):
                strict = dv.capped_ranking(keys, 12, penalty=penalty, fill=False)
                assert all(c <= limits[i] for i, c in enumerate(_max_prefix_counts(keys, strict)))
                assert len(dv.capped_ranking(keys, 12, penalty=penalty)) == min(12, len(keys))

    def test_greedy_is_best_first_among_the_allowed(self):
        # Brute force on small pools: slot by slot, the pick is the best candidate the caps allow.
        for keys in itertools.product("ab", repeat=7):
            chosen = dv.capped_ranking(list(keys), 5, [(3, 1), (5, 2)], fill=False)
            counts: Counter = Counter()
            left = list(range(7))
            limits = dv.cap_limits([(3, 1), (5, 2)], 5)
            for slot, position in enumerate(chosen):
                allowed = [p for p in left if counts[keys[p]] < limits[slot]]
                assert position == allowed[0]
                left.remove(position)
                counts[keys[position]] += 1


class TestCappedTopN:
    def test_rows_and_padding(self):
        item_keys = np.array([0, 0, 0, 1, -1, 2])
        candidates = np.array([[0, 1, 2, 3, 4, 5], [5, 4, -1, -1, -1, -1]])
        out = dv.capped_top_n(candidates, item_keys, 4, [(4, 2)])
        assert out.tolist() == [[0, 1, 3, 4], [5, 4, -1, -1]]

    def test_max_key_counts(self):
        item_keys = np.array([0, 0, 0, 1, -1, -1])
        lists = np.array([[0, 1, 2, 3], [4, 5, 3, -1], [-1, -1, -1, -1]])
        assert dv.max_key_counts(lists, item_keys).tolist() == [3, 1, 0]


class TestMetrics:
    lists = np.array([[0, 1, 2], [0, 3, -1]])

    def test_catalogue_coverage(self):
        assert dv.catalogue_coverage(self.lists, 8) == pytest.approx(4 / 8)
        assert np.isnan(dv.catalogue_coverage(self.lists, 0))

    def test_intra_list_diversity_by_key(self):
        item_keys = np.array([0, 0, 1, -1])
        # list 1: pairs (0,1) alike, (0,2), (1,2) different -> 2/3; list 2: (0,3) different -> 1.
        assert dv.intra_list_diversity(self.lists, item_keys=item_keys) == pytest.approx((2 / 3 + 1) / 2)

    def test_intra_list_diversity_by_similarity(self):
        sim = sp.csr_matrix(np.array([[1, 0.5, 0, 0], [0.5, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))
        assert dv.intra_list_diversity(self.lists, similarity=sim) == pytest.approx(((1 - 0.5 / 3) + 1) / 2)
        assert dv.intra_list_diversity(self.lists, similarity=sim.toarray()) == pytest.approx(((1 - 0.5 / 3) + 1) / 2)

    def test_intra_list_diversity_needs_one_source(self):
        with pytest.raises(ValueError):
            dv.intra_list_diversity(self.lists)
        assert np.isnan(dv.intra_list_diversity(np.array([[1, -1]]), item_keys=np.zeros(4, dtype=int)))

    def test_novelty(self):
        popularity = np.array([8, 4, 2, 0])
        # -log2(c / 8) for items 0, 1, 2, 0, 3 (an untouched item counts as one user): 0, 1, 2, 0, 3.
        assert dv.novelty(self.lists, popularity, 8) == pytest.approx((0 + 1 + 2 + 0 + 3) / 5)

    def test_popularity_share(self):
        popularity = np.array([9, 1, 1, 1, 1, 1, 1, 1, 1, 5])  # head (20% of 10 items): items 0 and 9
        assert dv.popularity_share(self.lists, popularity) == pytest.approx(2 / 5)
        assert np.isnan(dv.popularity_share(np.full((1, 2), -1), popularity))
