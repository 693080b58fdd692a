"""Tests of recommendations/build/state.py: artifacts and the loaded state of a build."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import override_settings

from recommendations import selectors, services
from recommendations.build import lease, parts, pipeline, rows, state
from recommendations.models import BuildLock, BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.recommendations.columns import assert_columns_match_rows
from tests.recommendations.testapp.models import Item, Like, Score


class TestArtifacts:
    def test_saved_bytes_read_back_and_replaced(self, db):
        build = BuildRun.objects.create(triggered_by="test")
        payload = bytes(range(256)) * 1000  # every byte value, incl. NUL and backslash
        state.artifact_save(build.pk, "blob", lambda f: f.write(payload))
        assert state.artifact_bytes(build.pk, "blob") == payload
        state.artifact_save(build.pk, "blob", lambda f: f.write(b"second"))
        assert state.artifact_bytes(build.pk, "blob") == b"second"

    def test_missing_artifact_is_a_build_error(self, db):
        build = BuildRun.objects.create(triggered_by="test")
        with pytest.raises(services.BuildError, match="has no artifact 'model'"):
            state.artifact_bytes(build.pk, "model")
