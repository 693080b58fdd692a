"""The diversity benchmark's offline part runs end to end on a small matrix (it reads goodbooks-10k otherwise)."""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from benchmarks import diversity
from recommendations.algorithms import evaluation as ev


def test_the_offline_part_runs_and_its_default_cap_keeps_three_books_of_an_author(monkeypatch):
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((60, 40)) < 0.3).astype(np.float32))
    train, test = ev.leave_one_out_split(X, random_state=0)
    authors = np.arange(40) % 4  # 4 authors of 10 books each: uncapped top-10 lists repeat them
    monkeypatch.setattr(diversity, "_goodbooks", lambda seed: (train, test, authors))
    lines = diversity.offline(argparse.Namespace(seed=0, max_test_users=0, pool=30))
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines if line.startswith("| ")}
    header = rows.pop("list")
    most = header.index("max of one author")
    defaults = next(label for label in rows if label.endswith("(the defaults)"))
    assert int(rows["no cap"][most]) > 3 and int(rows[defaults][most]) == 3
