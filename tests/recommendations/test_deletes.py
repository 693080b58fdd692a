"""Deleting readers and items after commit: no error, no refresh for a deleted reader, no stale rows."""
from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from recommendations import selectors, services
from recommendations.models import PopularItem, SimilarItem, UserPayload, UserRecommendation, UserRefresh
from tests.recommendations.testapp.models import Item, Like, Score

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def built(world):
    services.full_build_run()
    return world


def _no_errors_logged(caplog):
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


class TestUserDeleted:
    """Committed for real (a transactional test): the on-commit hooks of every cascaded interaction run."""

    def test_deleting_a_reader_with_interactions(self, built, caplog, monkeypatch):
        reader = built["users"]["space0"]
        assert Like.objects.filter(user=reader).exists() and Score.objects.filter(user=reader).exists()
        assert UserRecommendation.objects.filter(user=reader).exists()
        services.user_refresh_request(user_id=reader.pk)
        assert UserRefresh.objects.filter(user=reader).exists()
        queued = []
        monkeypatch.setattr("recommendations.tasks.user_refresh_request",
                            lambda *, user_id: queued.append(user_id))
        pk = reader.pk
        with caplog.at_level(logging.INFO):
            reader.delete()
        assert pk not in queued  # no refresh is asked for a deleted reader
        for model in (UserRecommendation, UserRefresh, UserPayload):
            assert not model.objects.filter(user_id=pk).exists(), model
        connection.check_constraints()
        _no_errors_logged(caplog)

    def test_deleting_a_reader_end_to_end(self, built, caplog):
        """The real refresh path (eager tasks): nothing raises after commit."""
        reader = built["users"]["space1"]
        pk = reader.pk
        with caplog.at_level(logging.INFO):
            reader.delete()
        assert not UserRefresh.objects.filter(user_id=pk).exists()
        assert not UserRecommendation.objects.filter(user_id=pk).exists()
        connection.check_constraints()
        _no_errors_logged(caplog)

    def test_deleting_readers_in_bulk(self, built, caplog):
        """The admin's "delete selected" deletes a queryset: the same, for every reader in it."""
        User = get_user_model()
        gone = [built["users"]["space2"].pk, built["users"]["cooking2"].pk]
        with caplog.at_level(logging.INFO):
            User.objects.filter(pk__in=gone).delete()
        assert not UserRefresh.objects.filter(user_id__in=gone).exists()
        assert not UserRecommendation.objects.filter(user_id__in=gone).exists()
        connection.check_constraints()
        _no_errors_logged(caplog)

    def test_a_refresh_queued_before_the_delete_does_nothing(self, built, caplog):
        """A worker running a refresh (queued with a countdown) after the reader was deleted."""
        reader = built["users"]["cooking1"]
        pk = reader.pk
        reader.delete()
        with caplog.at_level(logging.INFO):
            assert services.user_refresh(user_id=pk) == 0
            services.user_refresh_request(user_id=pk)
        assert not UserRefresh.objects.filter(user_id=pk).exists()
        assert not UserRecommendation.objects.filter(user_id=pk).exists()  # no orphan picks (no db constraint)
        connection.check_constraints()
        _no_errors_logged(caplog)


class TestItemDeleted:
    """Rows that point at a deleted item go with it, not at the next build."""

    def _pointing_at(self, pk):
        ct = ContentType.objects.get_for_model(Item)
        oid = str(pk)
        return {
            "neighbours of": SimilarItem.objects.filter(content_type=ct, object_id=oid).count(),
            "neighbour in": SimilarItem.objects.filter(target_content_type=ct, target_object_id=oid).count(),
            "picks": UserRecommendation.objects.filter(content_type=ct, object_id=oid).count(),
            "popular": PopularItem.objects.filter(content_type=ct, object_id=oid).count(),
        }

    def test_deleting_an_item_drops_its_rows(self, built, caplog):
        rockets = built["items"]["Rockets to Mars"]  # space0's pick, liked by the three other space readers
        pk = rockets.pk
        before = self._pointing_at(pk)
        assert all(before.values()), before
        kept = SimilarItem.objects.count() - before["neighbours of"] - before["neighbour in"]
        with caplog.at_level(logging.INFO):
            rockets.delete()  # committed: the refreshes of its three readers run too (eager tasks)
        assert self._pointing_at(pk) == dict.fromkeys(before, 0)
        assert SimilarItem.objects.count() == kept
        names = [p.name for p in selectors.recommended_for(built["users"]["space0"], n=5)]
        assert names and "Rockets to Mars" not in names
        _no_errors_logged(caplog)

    def test_a_later_refresh_does_not_bring_it_back(self, built):
        """The active model still has the deleted item's column: its former readers would get it as a pick."""
        rockets = built["items"]["Rockets to Mars"]
        pk = rockets.pk
        rockets.delete()
        readers = [u for name, u in built["users"].items() if name.startswith("space")]
        for reader in readers:
            services.user_refresh(user_id=reader.pk)
            ranks = list(UserRecommendation.objects.filter(build__is_active=True, user=reader)
                         .order_by("rank").values_list("rank", flat=True))
            assert ranks == list(range(1, len(ranks) + 1)), ranks
        assert self._pointing_at(pk)["picks"] == 0

    def test_deleting_items_in_bulk(self, built, caplog):
        gone = [built["items"]["Pasta from scratch"], built["items"]["Life on the moon"]]
        with caplog.at_level(logging.INFO):
            Item.objects.filter(pk__in=[i.pk for i in gone]).delete()
        for item in gone:
            assert not any(self._pointing_at(item.pk).values())
        _no_errors_logged(caplog)
