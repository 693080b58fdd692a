"""Provides ``TokenAuthentication``: DRF's token authentication with its lookup compiled once per process.

DRF builds the query ``Token.objects.select_related("user").get(key=key)`` afresh on every
request, which costs more CPU than the rest of a small API request. This class runs the same SQL,
compiled by the ORM once per process and database alias (``recommendations.db.compiled``);
everything else is DRF's: the header parsing, the ``401`` bodies, ``WWW-Authenticate: Token``.
Nothing but the SQL text is kept between requests, so a deleted token or a deactivated user is
refused at once. Use it in place of DRF's::

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "recommendations.api.authentication.TokenAuthentication", ...]}

``authenticate_with_stored_picks()`` also reads the reader's stored picks body, if it is fresh
(``payloads.fresh_body_subquery``), in the same round trip, so the app's hottest request is one
query. Anything it does not find (no token, an unknown key, an inactive user, a stale body) goes
back to the usual path, which gives DRF's answers. docs/decisions.md has the measurements.
"""
from __future__ import annotations

import functools

from django.db import router
from django.db.models import OuterRef
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from recommendations import payloads
from recommendations.db.compiled import CompiledQuery


@functools.lru_cache(maxsize=8)
def _lookup(model: type, alias: str) -> CompiledQuery:
    return CompiledQuery(lambda key: model.objects.select_related("user").filter(key=key), alias)


@functools.lru_cache(maxsize=8)
def _lookup_with_picks(model: type, alias: str, config: str) -> CompiledQuery:
    def queryset(key):
        picks = payloads.fresh_body_subquery(user=OuterRef("user_id"), config=config)
        return model.objects.select_related("user").filter(key=key).annotate(stored_picks=picks)

    return CompiledQuery(queryset, alias, binary=True)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, exactly as DRF's, with the lookup's SQL compiled once per process."""

    def authenticate_credentials(self, key):
        model = self.get_model()
        lookup = _lookup(model, router.db_for_read(model))
        if not lookup.usable:
            return super().authenticate_credentials(key)
        token = lookup.first(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)

    def authenticate_with_stored_picks(self, request, *, config: str):
        """Return ``(user, token, body)`` for a valid token, ``body`` being the reader's fresh stored picks or None.

        One query: the token, its user and the body (``payloads.fresh_body_subquery`` for the
        serving ``config``). Return None, having decided nothing, when the request has no well-formed
        token header, the key is unknown or the user inactive: ``authenticate()`` then answers as
        DRF does.
        """
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower().encode():
            return None
        try:
            key = parts[1].decode()
        except UnicodeError:
            return None
        model = self.get_model()
        lookup = _lookup_with_picks(model, router.db_for_read(model), config)
        if not lookup.usable:
            return None
        token = lookup.first(key)
        if token is None or not token.user.is_active:
            return None
        body = token.stored_picks
        return token.user, token, bytes(body) if body is not None else None
