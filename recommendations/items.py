"""Provides ``items_by_key``: host items loaded by ``(content_type_id, object_id)`` key, one query per item model."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

ItemKey = tuple[int, str]


def items_by_key(keys: Iterable[tuple[int, Any]], *,
                 queryset: Callable[[type[models.Model]], models.QuerySet | None] | None = None) -> dict[ItemKey, Any]:
    """Return ``{(content_type_id, str(pk)): item}`` for the keys that exist, with one query per item model.

    ``queryset(model)`` narrows what may be returned (e.g. only published items); it may return
    None to skip a model. An id that is not valid for its model's primary key is skipped.
    """
    wanted: dict[int, set[str]] = {}
    for ct_id, object_id in keys:
        wanted.setdefault(ct_id, set()).add(str(object_id))
    found: dict[ItemKey, Any] = {}
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        qs = model._default_manager.all() if queryset is None else queryset(model)
        if qs is None:
            continue
        pk = model._meta.pk
        values = []
        for object_id in ids:
            try:
                values.append(pk.to_python(object_id))
            except ValidationError:
                continue
        for obj in qs.filter(pk__in=values):
            found[(ct_id, str(obj.pk))] = obj
    return found
