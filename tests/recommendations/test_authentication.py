"""Tests of recommendations/api/authentication.py and compiled.py: the compiled token lookup answers as DRF's own."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import authentication as drf
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from recommendations.api import authentication

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    user = get_user_model().objects.create_user("reader", password="pw-reader-123", email="r@example.org")
    return Token.objects.create(user=user)


def _fields(obj) -> dict:
    return {name: value for name, value in vars(obj).items() if name != "_state"}


def _failure(auth, key) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        auth.authenticate_credentials(key)
    return str(caught.value.detail)


class TestTokenAuthentication:
    def test_is_the_sites_default(self, settings):
        assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == (
            "recommendations.api.authentication.TokenAuthentication")

    def test_same_token_and_user_as_drf(self, token):
        user, found = authentication.TokenAuthentication().authenticate_credentials(token.key)
        drf_user, drf_token = drf.TokenAuthentication().authenticate_credentials(token.key)
        assert (user, found) == (drf_user, drf_token)
        assert _fields(user) == _fields(drf_user) and _fields(found) == _fields(drf_token)
        assert found.user is user and not user._state.adding and user._state.db == drf_user._state.db

    def test_one_query(self, token):
        auth = authentication.TokenAuthentication()
        auth.authenticate_credentials(token.key)
        with CaptureQueriesContext(connection) as ctx:
            user, _ = auth.authenticate_credentials(token.key)
            assert user.username == "reader"  # the user came with the token
        assert len(ctx.captured_queries) == 1

    def test_bad_and_inactive_are_refused_like_drf(self, token):
        ours, theirs = authentication.TokenAuthentication(), drf.TokenAuthentication()
        for key in ("nope", token.key[:-1], token.key + "x", "", "%s", "' OR 1=1 --"):
            assert _failure(ours, key) == _failure(theirs, key) == "Invalid token."
        token.user.is_active = False
        token.user.save()
        assert _failure(ours, token.key) == _failure(theirs, token.key) == "User inactive or deleted."

    def test_nothing_is_cached_between_requests(self, token):
        auth = authentication.TokenAuthentication()
        assert auth.authenticate_credentials(token.key)[1] == token
        key = token.key
        token.delete()
        assert _failure(auth, key) == "Invalid token."

    def test_api_answers(self, token, testapp_settings):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        assert client.get("/api/recommendations/?limit=3").status_code == 200
        client.credentials(HTTP_AUTHORIZATION="Token wrong")
        response = client.get("/api/recommendations/?limit=3")
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
        assert response.json()["detail"] == "Invalid token."
