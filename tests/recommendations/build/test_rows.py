"""Tests of recommendations/build/rows.py: explanations of picks."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import override_settings

from recommendations import selectors, services
from recommendations.build.rows import explanations, explanations_block
from recommendations.build.state import BuildState
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.columns import assert_columns_match_rows
from tests.recommendations.testapp.models import Item, Like, Score


class TestExplanationsBlock:
    """The chunk-wide explanation equals the per-user one, ties included."""

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_same_as_per_user(self, seed):
        import types

        import numpy as np
        import scipy.sparse as sp

        from recommendations.algorithms.matrices import IndexMap

        rng = np.random.default_rng(seed)
        n_items, n_users = 40, 60
        # Few distinct values: many ties between history items, and zeros and negatives to drop.
        similarity = sp.random(n_items, n_items, density=0.5, random_state=seed, format="csr",
                               data_rvs=lambda k: rng.integers(-1, 3, k).astype(np.float32))
        rows = sp.random(n_users, n_items, density=0.1, random_state=seed + 10, format="csr",
                         data_rvs=lambda k: rng.integers(1, 3, k).astype(np.float32))
        rows = sp.vstack([rows[:5], sp.csr_matrix((1, n_items), dtype=np.float32), rows[6:]], format="csr")  # no history
        state = BuildState(types.SimpleNamespace(similarity_=similarity), IndexMap([]), [], np.array([]), rows, rows)
        targets = [rng.choice(n_items, size=rng.integers(0, 12), replace=False) for _ in range(n_users)]
        expected = [explanations(state, rows[i], targets[i]) for i in range(n_users)]
        # A small bound: many groups, and users alone in theirs.
        for max_entries in (1 << 19, 40):
            assert explanations_block(state, rows, targets, max_entries=max_entries) == expected
        assert any(len(e) == 3 for user in expected for e in user)
