"""Provides the site's authentication backend: Django's ``ModelBackend``, with the user lookup compiled once.

Every signed-in request loads its user by the id in the session. Django builds that query afresh
each time; ``ModelBackend.get_user`` here runs the same SQL compiled once per process
(``recommendations.db.compiled``). The user is read from the database on every request, as
before, so a deactivated user or a changed password (the session's hash) signs out at once.
"""
from __future__ import annotations

import functools

from django.contrib.auth import backends, get_user_model
from django.core.exceptions import ValidationError
from django.db import router
from django.db.models import Value

from recommendations.db.compiled import CompiledQuery


@functools.lru_cache(maxsize=8)
def _lookup(model: type, alias: str) -> CompiledQuery:
    # The id is bound as an expression: an integer primary key would refuse the placeholder string.
    return CompiledQuery(lambda value: model._default_manager.filter(pk=Value(value)), alias)


class ModelBackend(backends.ModelBackend):
    """``django.contrib.auth.backends.ModelBackend`` whose ``get_user()`` runs a compiled query."""

    def get_user(self, user_id):
        model = get_user_model()
        lookup = _lookup(model, router.db_for_read(model))
        if not lookup.usable:
            return super().get_user(user_id)
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = lookup.first(pk)
        return user if user is not None and self.user_can_authenticate(user) else None
