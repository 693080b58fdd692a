"""Tests of recommendations/refresh.py and the refresh request in recommendations/tasks.py."""
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


class TestIncrementalRefresh:
    def test_refresh_changes_picks_after_new_like(self, world):
        services.full_build_run()
        cook = world["users"]["cooking0"]
        before = [p.name for p in selectors.recommended_for(cook, n=3)]
        for name in ("Rockets to Mars", "Orbital mechanics for everyone", "Life on the moon"):
            Like.objects.create(user=cook, item=world["items"][name])
        assert services.user_refresh(user_id=cook.pk) > 0
        after = [p.name for p in selectors.recommended_for(cook, n=3)]
        assert after != before
        # The last unread space book now ties with the unread cooking book; ties break by item key (random UUIDs).
        assert "Stars and galaxies" in after[:2]

    def test_refresh_request_queues_on_commit(self, world, django_capture_on_commit_callbacks, monkeypatch):
        from recommendations import tasks

        services.full_build_run()
        queued = []
        monkeypatch.setattr(tasks.user_refresh, "apply_async", lambda args, **kw: queued.append(args))
        cook = world["users"]["cooking1"]
        with django_capture_on_commit_callbacks(execute=True):
            Like.objects.create(user=cook, item=world["items"]["Rockets to Mars"])
        assert queued == [[str(cook.pk)]]

    def test_refresh_without_broker_stays_pending(self, world, monkeypatch):
        from recommendations import tasks

        services.full_build_run()

        def down(*a, **kw):
            raise ConnectionError("broker down")

        monkeypatch.setattr(tasks.user_refresh, "apply_async", down)
        cook = world["users"]["cooking2"]
        services.user_refresh_request(user_id=cook.pk)
        assert cook.pk in services.pending_refreshes_list()
        assert tasks.pending_refreshes_run() >= 1
        assert cook.pk not in services.pending_refreshes_list()

    def test_item_content_refresh_on_save(self, world):
        services.full_build_run()
        new = Item.objects.create(name="Pasta sauces from scratch", description="Italian pasta cooking at home.")
        ct = ContentType.objects.get_for_model(Item)
        assert services.item_content_refresh(content_type_id=ct.pk, object_id=str(new.pk)) > 0
        names = [n.name for n in selectors.similar_to(new, kind="content", n=3)]
        assert "Pasta from scratch" in names
