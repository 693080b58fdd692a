"""Tests of the serving benchmark's measuring helpers (no server: round order and pooled percentiles)."""
from __future__ import annotations

from benchmarks.serving import OFF, pooled_percentile, round_order


def test_logging_on_and_off_swap_places_every_other_round():
    names = ["ping", "recommendations", OFF]
    orders = [round_order(list(names), k) for k in range(4)]
    assert orders[0] == orders[2] == names
    assert orders[1] == orders[3] == ["ping", OFF, "recommendations"]
    # Over an even number of rounds each side runs right after the other equally often.
    assert sum(o.index(OFF) > o.index("recommendations") for o in orders) == 2


def test_round_order_leaves_a_single_server_alone():
    assert round_order(["ping", "recommendations"], 1) == ["ping", "recommendations"]


def test_pooled_percentile_is_of_all_requests_together():
    fast = {"requests": 900, "grid": [(50.0, 1000.0), (60.0, 1100.0), (99.0, 2000.0), (100.0, 3000.0)]}
    slow = {"requests": 100, "grid": [(50.0, 10000.0), (99.0, 20000.0), (100.0, 30000.0)]}
    # The 500th of 1,000 requests is the fast round's 56th percentile (the grid's next step up: 60th); the
    # 990th is the slow round's 90th, whose grid step up is its 99th.
    assert pooled_percentile([fast, slow], 50) == 1.1
    assert pooled_percentile([fast, slow], 99) == 20.0
