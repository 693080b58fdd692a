"""The CiteULike-a command-line benchmark scores ``recommend``'s own written lists."""

import pytest

from benchmarks.citeulike_cli import score_lists


def test_written_lists_are_scored_by_position_with_ties_sharing_their_positions(tmp_path):
    lists = tmp_path / "R.csv"
    lists.write_text("user,item,rank,score\n"
                     "u1,a,1,0.9\nu1,b,2,0.5\n"          # u1's test item at position 2
                     "u2,c,1,0.7\nu2,d,2,0.7\n"          # u2's test item tied with the first: mean of positions 1, 2
                     "u3,e,1,0.4\n")                     # u3's test item not in the list
    test = tmp_path / "TEST.csv"
    test.write_text("user,item\nu1,b\nu2,d\nu3,z\nu4,a\n")  # u4 has no list at all: a miss
    got = score_lists(lists, test, k=10)
    ideal_2 = 1 / 1.584962500721156
    assert got["users"] == 4
    assert got["HR@10"] == pytest.approx(2 / 4)
    assert got["NDCG@10"] == pytest.approx((ideal_2 + (1 + ideal_2) / 2) / 4)
    # scored as written: at k=1 u2's tied item is cut off, a miss
    assert score_lists(lists, test, k=1)["HR@1"] == 0.0
