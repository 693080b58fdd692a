"""Measures EASE^R's pruning to its top-k weights per column: the dense selection against the sparse one.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ease_topk.py            # CiteULike-a's TRAIN (CMN split), l2 523, top 1,000

Fits EASE^R on the CMN npz's TRAIN (../shared/data/citeulike-a-cmn, or $BRE_DATA_DIR; when it is absent
the script says so and exits 0), keeps its dense weight matrix, then times, side by side and ``--repeats``
times, ``linear.topk_columns`` (one partition per column block) and the sparse selection it replaced
(each block made sparse, then ``topk_sparse_rows``), and checks that both keep the same entries.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.citeulike_cmn import DEFAULT_DATA, load  # noqa: E402
from recommendations.algorithms import linear  # noqa: E402
from recommendations.algorithms.base import topk_sparse_rows  # noqa: E402


def sparse_selection(B: np.ndarray, k: int, block: int = 512) -> sp.csr_matrix:
    """The selection ``topk_columns`` replaced: each column block made sparse, then ``topk_sparse_rows``."""
    parts = [topk_sparse_rows(sp.csr_matrix(B[:, s : s + block].T), k) for s in range(0, B.shape[1], block)]
    return sp.csr_matrix(sp.vstack(parts, format="csr").T, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    data_dir = os.environ.get("BRE_DATA_DIR")
    parser.add_argument("--data", default=str(Path(data_dir) / "citeulike-a-cmn" / "citeulike-a.npz") if data_dir
                        else str(DEFAULT_DATA))
    parser.add_argument("--l2", type=float, default=523.0)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        print(f"{args.data}: not found; nothing to measure")
        return 0
    train, _, _ = load(Path(args.data))
    B = linear.EASE(l2_norm=args.l2, top_k=None).fit(train).coef_
    print(f"EASE^R weights {B.shape[0]:,} x {B.shape[1]:,}, keeping the top {args.k:,} per column; "
          f"{len(os.sched_getaffinity(0))} cores")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dense = linear.topk_columns(B, args.k)
        t_dense = time.perf_counter() - t0
        t0 = time.perf_counter()
        sparse = sparse_selection(B, args.k)
        t_sparse = time.perf_counter() - t0
        same = dense.nnz == sparse.nnz and (dense != sparse).nnz == 0
        print(f"dense selection {t_dense:.2f} s, sparse selection {t_sparse:.2f} s, "
              f"ratio {t_dense / t_sparse:.2f}, the same entries: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
