"""Provides ``DefaultAdapter``: what the host's items and interactions are, as plain data.

The adapter turns the ``RECOMMENDATIONS`` setting into rows the algorithms understand:
interaction events ``(user_id, item_key, kind, stars, dwell, progress, timestamp)`` and
``item_key -> text`` for content similarity, where ``item_key`` is
``(content_type_id, object_id as str)``. Like allauth's ``ACCOUNT_ADAPTER``, a project
subclasses it and overrides only what it needs (``item_text()``, ``item_payload()``,
``interaction_rows()``), then names the subclass in ``RECOMMENDATIONS["ADAPTER"]``.
How interactions are read from the database is not the adapter's job: ``recommendations.db.columns``.
"""
from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldError, ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from .conf import app_settings
from .db.columns import interaction_columns_read
from .interactions import InteractionColumns, InteractionQuery, InteractionRow, ItemKey, optional_fields
from .items import items_by_key

__all__ = ["DefaultAdapter", "InteractionColumns", "InteractionRow", "ItemKey", "get_adapter"]


class DefaultAdapter:
    """Reads items and interactions as declared in ``RECOMMENDATIONS``."""

    # --- items -----------------------------------------------------------------------------------
    def item_models(self) -> list[type[models.Model]]:
        """Return the item model classes, in the order of ``ITEM_MODELS``."""
        return [apps.get_model(label) for label in app_settings.ITEM_MODELS]

    def item_queryset(self, model: type[models.Model]) -> models.QuerySet:
        """Return the items of ``model`` that may be recommended (``ITEM_FILTERS`` applied).

        Raise ``ImproperlyConfigured`` when a lookup of ``ITEM_FILTERS`` does not apply to the
        model (check ``recommendations.E016`` reports it at startup).
        """
        qs = model._default_manager.all()
        lookups = app_settings.ITEM_FILTERS.get(model._meta.label, {})
        if not lookups:
            return qs
        try:
            return qs.filter(**lookups)
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"RECOMMENDATIONS['ITEM_FILTERS'][{model._meta.label!r}] does not apply to {model._meta.label}: {exc}"
            ) from exc

    def item_key(self, obj: models.Model) -> ItemKey:
        """Return ``(content_type_id, str(pk))`` of an item."""
        return (ContentType.objects.get_for_model(obj).pk, str(obj.pk))

    def text_fields(self, model: type[models.Model]) -> list[str]:
        return list(app_settings.TEXT_FIELDS.get(model._meta.label, []))

    def item_texts(self, model: type[models.Model]) -> Iterator[tuple[str, str]]:
        """Yield ``(str(pk), text)`` for every item of ``model``, joining its ``TEXT_FIELDS``.

        Related rows are loaded in bulk: foreign keys with the items, many-to-many fields with
        one query each, so the cost does not grow with the number of items.
        """
        fields = self.text_fields(model)
        m2m = [f for f in fields if isinstance(model._meta.get_field(f), models.ManyToManyField)]
        fks = [f for f in fields if isinstance(model._meta.get_field(f), models.ForeignKey)]
        qs = self.item_queryset(model).select_related(*fks).prefetch_related(*m2m)
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

    def explanation_text(self, explanation: list[dict[str, Any]]) -> str:
        """Return the sentence shown beside a pick, e.g. "Because you read Dune and Emma", or ``""``.

        ``explanation`` is the pick's list of ``{"title", "content_type", "object_id"}`` (the
        history items that contributed most); a new item's single entry also has ``"new": True``
        (and ``"explore": True`` in an exploration slot) and reads "New: like X, which you read". The text is translated into the active language;
        override to word it for your site (e.g. "Because you bought ...").
        """
        titles = [str(e["title"]) for e in explanation if e.get("title")]
        if not titles:
            return ""
        if any(e.get("new") for e in explanation):
            # A new item, placed by its content: the history item most like it.
            return gettext("New: like %(title)s, which you read") % {"title": titles[0]}
        if len(titles) == 1:
            return gettext("Because you read %(title)s") % {"title": titles[0]}
        return gettext("Because you read %(titles)s and %(last)s") % {
            "titles": ", ".join(titles[:-1]), "last": titles[-1]}

    def item_titles(self, keys: Iterable[ItemKey]) -> dict[ItemKey, str]:
        """Return the display title of items by key, with one query per item model."""
        return {key: self.item_title(obj) for key, obj in items_by_key(keys).items()}

    def diversity_key(self, obj: models.Model) -> Hashable | None:
        """Return what makes two items "the same again" in one list (an author, a series, a brand), or None.

        Serving caps how many picks share a key (``DIVERSITY_CAPS``: by default at most 2 among
        the first 6 and 3 in a list of 12). ``None``, the default, means the item is never capped
        and does not count. Override to return e.g. ``obj.author_id``; keys of different item
        models may be equal on purpose (an author who writes both books and articles). It is
        called on every served candidate, so read only fields loaded with the item.
        """
        return None

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

    def interaction_query(self, config: dict[str, Any], *, since=None, user_ids=None) -> InteractionQuery:
        """Return the query that reads one configured interaction model, and the names of its columns."""
        model = apps.get_model(config["model"])
        user_field = config.get("user_field", "user")
        ts_field = config.get("timestamp_field")
        field = _item_field(model, config.get("item_field", "item"))
        if isinstance(field, GenericForeignKey):
            ct_expr, id_expr, fixed_ct, item_pk = field.ct_field, field.fk_field, None, None
        else:
            fixed_ct = ContentType.objects.get_for_model(field.related_model).pk
            ct_expr, id_expr, item_pk = None, field.attname, field.target_field
        names = [f"{user_field}_id" if not user_field.endswith("_id") else user_field, id_expr]
        if ct_expr:
            names.append(f"{ct_expr}_id")
        extra = optional_fields(config)
        names += [name for _, name in extra]
        if ts_field:
            names.append(ts_field)
        qs = model._default_manager.all()
        if since is not None and ts_field:
            qs = qs.filter(**{f"{ts_field}__gt": since})
        if user_ids is not None:
            qs = qs.filter(**{f"{user_field}__in": list(user_ids)})
        return InteractionQuery(config=config, queryset=qs, names=tuple(names), ct_expr=ct_expr, fixed_ct=fixed_ct,
                                extra=tuple(extra), ts_field=ts_field, item_pk=item_pk)

    def interaction_columns(self, *, since=None, user_ids: Iterable[Any] | None = None) -> InteractionColumns:
        """Return every interaction (optionally only newer than ``since`` or of some users) as columns.

        A subclass that overrides ``interaction_rows`` is read through it instead.
        """
        if type(self).interaction_rows is not DefaultAdapter.interaction_rows:
            return InteractionColumns.from_rows(list(self.interaction_rows(since=since, user_ids=user_ids)))
        return InteractionColumns.concat([
            interaction_columns_read(self.interaction_query(config, since=since, user_ids=user_ids))
            for config in self.interaction_configs()
        ])

    def interaction_rows(self, *, since=None, user_ids: Iterable[Any] | None = None) -> Iterator[InteractionRow]:
        """Yield every interaction (optionally only newer than ``since`` or of some users) as a row."""
        yield from self.interaction_columns(since=since, user_ids=user_ids).rows()

    def user_item_keys(self, user_id: Any, *, candidates: Iterable[ItemKey] | None = None) -> set[ItemKey]:
        """Return the keys of the items ``user_id`` interacted with (one small query per interaction model).

        With ``candidates``, only those items are looked up: serving checks a short list.
        """
        candidate_ids = None if candidates is None else {object_id for _, object_id in candidates}
        if candidate_ids is not None and not candidate_ids:
            return set()
        keys: set[ItemKey] = set()
        for config in self.interaction_configs():
            query = self.interaction_query(config, user_ids=[user_id])
            qs, id_name = query.queryset, query.names[1]
            if candidate_ids is not None:
                qs = qs.filter(**{f"{id_name}__in": list(candidate_ids)})
            if query.ct_expr:
                keys.update((ct, str(oid)) for oid, ct in qs.values_list(id_name, f"{query.ct_expr}_id"))
            else:
                keys.update((query.fixed_ct, str(oid)) for oid in qs.values_list(id_name, flat=True))
        return keys


def _item_field(model: type[models.Model], name: str):
    for field in model._meta.private_fields:
        if field.name == name:
            return field
    return model._meta.get_field(name)


@functools.lru_cache(maxsize=1)
def get_adapter() -> DefaultAdapter:
    """Return an instance of the adapter class named in ``RECOMMENDATIONS["ADAPTER"]``."""
    return import_string(app_settings.ADAPTER)()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "RECOMMENDATIONS":
        get_adapter.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="recommendations.adapters.settings")
