"""Provides ``DefaultAdapter``: what the host's items and interactions are, as plain data.

The adapter turns the ``RECOMMENDATIONS`` setting into rows the algorithms understand:
interaction events ``(user_id, item_key, kind, stars, dwell, progress, timestamp)`` and
``item_key -> text`` for content similarity, where ``item_key`` is
``(content_type_id, object_id as str)``. Like allauth's ``ACCOUNT_ADAPTER``, a project
subclasses it and overrides only what it needs (``item_text()``, ``item_payload()``,
``interaction_rows()``), then names the subclass in ``RECOMMENDATIONS["ADAPTER"]``.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.module_loading import import_string

from .conf import app_settings

ItemKey = tuple[int, str]


@dataclass(frozen=True)
class InteractionRow:
    """One event of one user with one item."""

    user_id: Any
    item_key: ItemKey
    kind: str
    stars: float | None = None
    dwell_seconds: float | None = None
    progress: float | None = None
    timestamp: float | None = None
    weight: float | None = None


class DefaultAdapter:
    """Reads items and interactions as declared in ``RECOMMENDATIONS``."""

    # --- items -----------------------------------------------------------------------------------
    def item_models(self) -> list[type[models.Model]]:
        """Return the item model classes, in the order of ``ITEM_MODELS``."""
        return [apps.get_model(label) for label in app_settings.ITEM_MODELS]

    def item_queryset(self, model: type[models.Model]) -> models.QuerySet:
        """Return the items of ``model`` that may be recommended (``ITEM_FILTERS`` applied)."""
        qs = model._default_manager.all()
        lookups = app_settings.ITEM_FILTERS.get(model._meta.label, {})
        return qs.filter(**lookups) if lookups else qs

    def item_key(self, obj: models.Model) -> ItemKey:
        """Return ``(content_type_id, str(pk))`` of an item."""
        return (ContentType.objects.get_for_model(obj).pk, str(obj.pk))

    def text_fields(self, model: type[models.Model]) -> list[str]:
        return list(app_settings.TEXT_FIELDS.get(model._meta.label, []))

    def item_texts(self, model: type[models.Model]) -> Iterator[tuple[str, str]]:
        """Yield ``(str(pk), text)`` for every item of ``model``, joining its ``TEXT_FIELDS``."""
        fields = self.text_fields(model)
        m2m = [f for f in fields if isinstance(model._meta.get_field(f), models.ManyToManyField)]
        qs = self.item_queryset(model).prefetch_related(*m2m)
        for obj in qs.iterator(chunk_size=2000) if not m2m else qs:
            yield str(obj.pk), self.item_text(obj, fields)

    def item_text(self, obj: models.Model, fields: list[str] | None = None) -> str:
        """Return the text of one item used for content similarity."""
        fields = self.text_fields(type(obj)) if fields is None else fields
        parts = []
        for name in fields:
            field = obj._meta.get_field(name)
            if isinstance(field, models.ManyToManyField):
                parts.append(" ".join(str(related) for related in getattr(obj, name).all()))
            else:
                value = getattr(obj, name)
                if value:
                    parts.append(str(value))
        return "\n".join(parts)

    def item_title(self, obj: models.Model) -> str:
        return str(obj)

    def item_payload(self, obj: models.Model) -> dict[str, Any]:
        """Return the JSON the API shows for an item; override to add fields."""
        url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else None
        return {
            "type": obj._meta.label_lower,
            "id": str(obj.pk),
            "title": self.item_title(obj),
            "url": url,
        }

    # --- interactions ------------------------------------------------------------------------------
    def interaction_configs(self) -> list[dict[str, Any]]:
        return list(app_settings.INTERACTIONS)

    def interaction_rows(self, *, since=None, user_ids: Iterable[Any] | None = None) -> Iterator[InteractionRow]:
        """Yield every interaction (optionally only newer than ``since`` or of some users)."""
        for config in self.interaction_configs():
            yield from self._rows_for(config, since=since, user_ids=user_ids)

    def _rows_for(self, config: dict[str, Any], *, since=None, user_ids=None) -> Iterator[InteractionRow]:
        model = apps.get_model(config["model"])
        user_field = config.get("user_field", "user")
        item_field = config.get("item_field", "item")
        kind = config.get("kind", "weight")
        ts_field = config.get("timestamp_field")
        optional = {
            "stars": config.get("stars_field"),
            "dwell_seconds": config.get("dwell_field"),
            "progress": config.get("progress_field"),
            "weight": config.get("weight_field"),
        }
        field = _item_field(model, item_field)
        if isinstance(field, GenericForeignKey):
            ct_expr, id_expr = field.ct_field, field.fk_field
            fixed_ct = None
        else:
            fixed_ct = ContentType.objects.get_for_model(field.related_model).pk
            ct_expr, id_expr = None, field.attname
        names = [f"{user_field}_id" if not user_field.endswith("_id") else user_field, id_expr]
        if ct_expr:
            names.append(f"{ct_expr}_id")
        extra = [(key, name) for key, name in optional.items() if name]
        names += [name for _, name in extra]
        if ts_field:
            names.append(ts_field)
        qs = model._default_manager.all()
        if since is not None and ts_field:
            qs = qs.filter(**{f"{ts_field}__gt": since})
        if user_ids is not None:
            qs = qs.filter(**{f"{user_field}__in": list(user_ids)})
        constant_weight = config.get("weight")
        for values in qs.values_list(*names).iterator(chunk_size=5000):
            user_id, object_id = values[0], values[1]
            pos = 2
            if ct_expr:
                ct_id = values[pos]
                pos += 1
            else:
                ct_id = fixed_ct
            row: dict[str, Any] = {}
            for key, _ in extra:
                row[key] = values[pos]
                pos += 1
            timestamp = values[pos].timestamp() if ts_field and values[pos] is not None else None
            if constant_weight is not None and "weight" not in row:
                row["weight"] = float(constant_weight)
            yield InteractionRow(
                user_id=user_id, item_key=(ct_id, str(object_id)), kind=kind, timestamp=timestamp, **row
            )


def _item_field(model: type[models.Model], name: str):
    for field in model._meta.private_fields:
        if field.name == name:
            return field
    return model._meta.get_field(name)


@functools.lru_cache(maxsize=1)
def get_adapter() -> DefaultAdapter:
    """Return an instance of the adapter class named in ``RECOMMENDATIONS["ADAPTER"]``."""
    return import_string(app_settings.ADAPTER)()
