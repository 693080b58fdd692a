"""Provides the attribution of the host's interactions: a saved read, rating or "Not interested" mark queues an event."""
from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from ..conf import app_settings
from .models import Attribution
from .recording import attribution_record

Kind = Attribution.Kind


def _item_key(config: dict[str, Any], instance) -> str | None:
    field = instance._meta.get_field(config.get("item_field", "item"))
    if isinstance(field, GenericForeignKey):
        ct_id = getattr(instance, instance._meta.get_field(field.ct_field).attname)
        object_id = getattr(instance, field.fk_field)
    else:
        ct_id = ContentType.objects.get_for_model(field.related_model).pk
        object_id = getattr(instance, field.attname)
    return None if ct_id is None or object_id is None else f"{ct_id}:{object_id}"


def interaction_attribute(config: dict[str, Any], instance, *, created: bool) -> None:
    """Queue, once the transaction commits, the attribution events of an interaction row just saved.

    A read counts when created, and as a read-through once its progress reaches
    ``READ_THROUGH_PROGRESS``; a rating with its stars; a "Not interested" mark when created.
    Other kinds ("weight") are not attributed.
    """
    kind = config.get("kind")
    if not app_settings.IMPRESSIONS or kind not in ("read", "rating", "not_interested"):
        return
    user_id = getattr(instance, f"{config.get('user_field', 'user')}_id", None)
    item = _item_key(config, instance)
    if user_id is None or item is None:
        return
    events: list[tuple[str, float | None]] = []
    if kind == "read":
        progress = getattr(instance, config["progress_field"], None) if config.get("progress_field") else None
        if created:
            events.append((Kind.READ, progress))
        if progress is not None and progress >= app_settings.READ_THROUGH_PROGRESS:
            events.append((Kind.READ_THROUGH, progress))
    elif kind == "rating":
        stars = getattr(instance, config["stars_field"], None) if config.get("stars_field") else None
        events.append((Kind.RATING, stars))
    elif created:
        events.append((Kind.NOT_INTERESTED, None))
    user = _UserRef(user_id)
    for event_kind, value in events:
        transaction.on_commit(lambda k=event_kind, v=value: attribution_record(kind=k, user=user, item=item, value=v))


class _UserRef:
    """The reader of an interaction by id, without loading them."""

    is_authenticated = True

    def __init__(self, pk) -> None:
        self.pk = pk
