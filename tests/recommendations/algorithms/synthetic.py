"""Provides small synthetic interaction matrices with known structure for the algorithm tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def checkerboard(n_users: int = 20, n_items: int = 16, holdout: bool = True) -> sp.csr_matrix:
    """Even users like even items, odd users like odd items (implicit's checkerboard idea).

    With ``holdout`` each user misses one item of their own parity, so a sensible model
    must recommend same-parity items first.
    """
    rows, cols = [], []
    for u in range(n_users):
        own = [i for i in range(n_items) if i % 2 == u % 2]
        missing = own[(u // 2) % len(own)] if holdout else None
        for i in own:
            if i != missing:
                rows.append(u)
                cols.append(i)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))


def random_user_items() -> sp.csr_matrix:
    """30 x 25 binary matrix with one empty user (row 3) and one cold item (column 7)."""
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 25)) < 0.3).astype(np.float32)
    dense[3] = 0.0
    dense[:, 7] = 0.0
    dense[0, :3] = 1.0
    return sp.csr_matrix(dense)


def record_tuning(monkeypatch) -> list:
    """Make ``Auto`` record every (matrix, timestamps) its tuner is given; return the record list."""
    import scipy.sparse as sp

    from recommendations.algorithms import auto as auto_module

    seen: list = []
    real = auto_module.tune_auto

    def recording(train, **kwargs):
        seen.append((sp.csr_matrix(train, copy=True), kwargs.get("timestamps")))
        return real(train, **kwargs)

    monkeypatch.setattr(auto_module, "tune_auto", recording)
    return seen
