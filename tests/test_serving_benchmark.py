"""Tests of the serving benchmark's measuring helpers (no server: round order and pooled percentiles)."""
from __future__ import annotations

import argparse

import pytest

from benchmarks import serving
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


def test_the_load_share_sets_each_connections_think_time(monkeypatch):
    """At 60% of 2,000 requests/s, 32 connections each send one request per 32 / 1,200 s: 26.7 ms apart."""
    seen = []

    def fake_wrk(binary, url, token, *, duration, connections, threads, think_ms=0.0):
        seen.append((url, think_ms))
        grid = [(50.0, 1000.0), (99.0, 4000.0 if url == "on" else 3000.0), (100.0, 9000.0)]
        return {"requests": 100, "rps": 20.0, "p99_ms": 4.0 if url == "on" else 3.0, "non_2xx": 0.0,
                "socket_errors": 0.0, "grid": grid}, ""

    monkeypatch.setattr(serving, "wrk", fake_wrk)
    args = argparse.Namespace(connections=32, load_share=0.6, rounds=2, duration=10, threads=2)
    at_load, think_ms = serving.logging_at_load("wrk", {"recommendations": "on", OFF: "off"}, "t", args, 2000.0)
    assert think_ms == pytest.approx(26.67, abs=0.01) and {t for _, t in seen} == {think_ms}
    assert [url for url, _ in seen] == ["on", "off", "off", "on"]  # ABBA, as the saturated rounds
    rows = serving.logging_at_load_rows(at_load, think_ms, 0.6)
    assert "1.33x of logging off (goal <= 1.1x): NOT met" in rows
