"""Tests of recommendations/build/lease.py: one full build at a time, stale leases, unlocking."""
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


class TestLock:
    def test_second_build_refused_while_locked(self, world):
        build = BuildRun.objects.create()
        assert services.build_lock_acquire(build_id=build.pk)
        with pytest.raises(services.BuildAlreadyRunning, match="already running"):
            services.full_build_start()
        other = BuildRun.objects.create()
        assert services.build_prepare(build_id=other.pk) is None
        other.refresh_from_db()
        assert other.status == BuildRun.Status.FAILED and "holds the lock" in other.error

    def test_stale_lock_expires(self, world):
        from django.utils import timezone

        dead = BuildRun.objects.create()
        assert services.build_lock_acquire(build_id=dead.pk)
        BuildLock.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
        build = services.full_build_run()
        assert build.status == BuildRun.Status.SUCCEEDED
        assert not BuildLock.objects.exists()

    def test_twin_delivery_of_a_running_build_does_nothing(self, world):
        build = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=build.pk)
        assert not services.build_lock_acquire(build_id=build.pk)
        assert services.build_prepare(build_id=build.pk) is None
        build.refresh_from_db()
        assert build.status == BuildRun.Status.RUNNING  # not failed by its twin

    def test_stale_lock_takeover_fails_the_dead_build(self, world):
        from django.utils import timezone

        dead = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=dead.pk)
        BuildLock.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
        services.full_build_run()
        dead.refresh_from_db()
        assert dead.status == BuildRun.Status.FAILED and "lock expired" in dead.error


class TestUnlock:
    def test_live_lock_needs_force(self, world):
        build = BuildRun.objects.create(status=BuildRun.Status.RUNNING)
        assert services.build_lock_acquire(build_id=build.pk)
        with pytest.raises(services.BuildError, match="use --force"):
            services.build_lock_break()
        assert "Released the lock of build" in services.build_lock_break(force=True)
        build.refresh_from_db()
        assert build.status == BuildRun.Status.FAILED and not BuildLock.objects.exists()
        assert services.build_lock_break() == ""
        assert services.full_build_run().status == BuildRun.Status.SUCCEEDED
