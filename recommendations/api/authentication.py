"""Provides ``TokenAuthentication``: DRF's token authentication with its lookup compiled once per process.

DRF looks a token up with ``Token.objects.select_related("user").get(key=key)`` on every
request. Building that query costs more CPU than everything else a small API request does:
about 1 ms of the 1.7 ms of a trivial DRF endpoint in process (benchmarks/results/serving.md).
This class runs the same SQL, compiled by the ORM once per process and database alias
(``recommendations.compiled``), so everything else is DRF's: the header parsing, the ``401``
bodies ("Invalid token.", "User inactive or deleted."), ``WWW-Authenticate: Token``. Nothing
is cached between requests but the SQL text: a deleted token or a deactivated user is refused
at once. Use it in place of DRF's::

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "recommendations.api.authentication.TokenAuthentication", ...]}

It lives in the app's API because the app's hottest request, a reader's stored picks
(``recommendations.payloads``), is authentication plus one query: with DRF's own lookup,
authentication was most of its CPU.
"""
from __future__ import annotations

import functools

from django.db import router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from recommendations.compiled import CompiledQuery


@functools.lru_cache(maxsize=8)
def _lookup(model: type, alias: str) -> CompiledQuery:
    return CompiledQuery(lambda key: model.objects.select_related("user").filter(key=key), alias)


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
