"""Tests of the site's session engine and authentication backend (bre_site/sessions.py, bre_site/auth.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bre_site.auth import ModelBackend
from bre_site.sessions import SessionStore

pytestmark = pytest.mark.django_db


class TestSessionStore:
    def test_reads_what_django_wrote_with_one_query(self):
        written = DjangoSessionStore()
        written["colour"] = "blue"
        written.create()
        with CaptureQueriesContext(connection) as ctx:
            assert SessionStore(written.session_key)["colour"] == "blue"
        assert len(ctx.captured_queries) == 1 and "django_session" in ctx.captured_queries[0]["sql"]

    def test_an_expired_or_unknown_session_is_empty_and_gets_a_new_key(self):
        old = SessionStore()
        old["colour"] = "red"
        old.create()
        Session.objects.filter(session_key=old.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
        for key in (old.session_key, "no-such-session-key-0123456789abcdef"):
            store = SessionStore(key)
            assert store.load() == {} and store.session_key is None

    def test_a_deleted_session_is_gone_for_every_store(self):
        """What logout does in one gunicorn worker holds in all of them: every load reads the database."""
        first = SessionStore()
        first["user"] = "1"
        first.create()
        other_process = SessionStore(first.session_key)
        assert other_process["user"] == "1"
        first.delete()
        assert SessionStore(first.session_key).load() == {}


class TestModelBackend:
    @pytest.fixture
    def user(self):
        return get_user_model().objects.create_user(username="ann", password="pw-ann-12345")

    def test_get_user_reads_the_user(self, user):
        backend = ModelBackend()
        with CaptureQueriesContext(connection) as ctx:
            found = backend.get_user(str(user.pk))
        assert found == user and found.username == "ann" and len(ctx.captured_queries) == 1

    def test_unknown_malformed_or_inactive_users_are_none(self, user):
        backend = ModelBackend()
        assert backend.get_user(user.pk + 1000) is None
        assert backend.get_user("not-a-number") is None
        user.is_active = False
        user.save()
        assert backend.get_user(user.pk) is None

    def test_a_deactivated_user_is_signed_out_at_once(self, user):
        client = Client()
        client.force_login(user)
        assert "Signed in as" in client.get("/").content.decode()
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        assert "Signed in as" not in client.get("/").content.decode()

    def test_a_password_change_signs_out_other_sessions(self, user):
        client = Client()
        client.force_login(user)
        assert "Signed in as" in client.get("/").content.decode()
        user.set_password("a-new-password-987")
        user.save()
        assert "Signed in as" not in client.get("/").content.decode()

    def test_signing_in_with_a_password_uses_this_backend(self, user):
        client = Client()
        assert client.login(username="ann", password="pw-ann-12345")
        assert client.session["_auth_user_backend"] == "bre_site.auth.ModelBackend"
        assert not Client().login(username="ann", password="wrong")
