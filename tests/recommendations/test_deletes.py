"""Deleting readers and items after commit: no error, no refresh for a deleted reader, no stale rows."""
from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from recommendations import services
from recommendations.models import SimilarItem, UserPayload, UserRecommendation, UserRefresh
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
        monkeypatch.setattr("recommendations.services.user_refresh_request",
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
