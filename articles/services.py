"""Provides the writes of the content site: reads, ratings and "not interested" marks.

Every function validates its input and raises ``django.core.exceptions.ValidationError``
with a message that says what is wrong; nothing is stored then. The recommendations app
notices committed interactions by itself (see ``recommendations.signals``) and queues the
reader's refresh, so nothing here talks to it.
"""
from __future__ import annotations

import math

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import Article, Book, NotInterested, Rating, Read

ITEM_TYPES = {"article": Article, "book": Book}


def item_get(*, item_type: str, item_id) -> Article | Book:
    """Return the published article or book ``item_id``, or raise ValidationError naming what is unknown."""
    model = ITEM_TYPES.get(str(item_type).lower())
    if model is None:
        raise ValidationError({"item_type": f"Unknown item type {item_type!r}: use 'article' or 'book'."})
    try:
        return model.objects.get(pk=int(item_id), is_published=True)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError({"item_id": f"Item id {item_id!r} is not an integer."}) from None
    except model.DoesNotExist:
        raise ValidationError({"item_id": f"There is no {item_type} with id {item_id}."}) from None


def _number(value, *, name: str, low: float, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError({name: f"{name} must be a number, not {value!r}."}) from None
    if math.isnan(number) or math.isinf(number):
        raise ValidationError({name: f"{name} must be a finite number."})
    if number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ValidationError({name: f"{name} must be {bound}, not {number:g}."})
    return number


def read_record(*, user, item, dwell_seconds=0.0, progress=0.0) -> Read:
    """Record that ``user`` opened ``item``; dwell and progress are reported later by the beacon."""
    dwell = _number(dwell_seconds, name="dwell_seconds", low=0.0, high=7 * 24 * 3600)
    prog = _number(progress, name="progress", low=0.0, high=1.0)
    return Read.objects.create(
        user=user, content_type=ContentType.objects.get_for_model(item), object_id=item.pk,
        dwell_seconds=dwell, progress=prog,
    )


def read_update(*, read: Read, dwell_seconds=None, progress=None) -> Read:
    """Report how long and how far a read went; values only grow (a beacon may arrive twice)."""
    fields = ["updated_at"]
    if dwell_seconds is not None:
        read.dwell_seconds = max(read.dwell_seconds, _number(dwell_seconds, name="dwell_seconds", low=0.0, high=7 * 24 * 3600))
        fields.append("dwell_seconds")
    if progress is not None:
        read.progress = max(read.progress, _number(progress, name="progress", low=0.0, high=1.0))
        fields.append("progress")
    read.save(update_fields=fields)
    return read


def read_delete(*, user, read_id) -> None:
    """Remove one read of ``user``'s history."""
    deleted, _ = Read.objects.filter(user=user, pk=read_id).delete()
    if not deleted:
        raise ValidationError({"read": f"You have no read with id {read_id}."})


def rating_set(*, user, item, stars) -> Rating:
    """Rate ``item`` with 1-5 ``stars``; rating again updates the same rating."""
    if isinstance(stars, bool):
        raise ValidationError({"stars": "stars must be a whole number from 1 to 5."})
    try:
        value = int(stars)
        if value != float(stars):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValidationError({"stars": f"stars must be a whole number from 1 to 5, not {stars!r}."}) from None
    if not 1 <= value <= 5:
        raise ValidationError({"stars": f"stars must be from 1 to 5, not {value}."})
    ct = ContentType.objects.get_for_model(item)
    with transaction.atomic():
        rating, created = Rating.objects.select_for_update().get_or_create(
            user=user, content_type=ct, object_id=item.pk, defaults={"stars": value}
        )
        if not created:
            rating.stars = value
            rating.updated_at = timezone.now()
            rating.save(update_fields=["stars", "updated_at"])
    return rating


def rating_delete(*, user, item) -> None:
    """Remove ``user``'s rating of ``item``."""
    ct = ContentType.objects.get_for_model(item)
    deleted, _ = Rating.objects.filter(user=user, content_type=ct, object_id=item.pk).delete()
    if not deleted:
        raise ValidationError({"rating": "You have not rated this item."})


def not_interested_set(*, user, item) -> NotInterested:
    """Mark ``item`` as not interesting for ``user``: negative feedback that hides it from their picks."""
    ct = ContentType.objects.get_for_model(item)
    mark, _ = NotInterested.objects.get_or_create(user=user, content_type=ct, object_id=item.pk)
    return mark


def not_interested_delete(*, user, item) -> None:
    """Take back a "not interested" mark."""
    ct = ContentType.objects.get_for_model(item)
    NotInterested.objects.filter(user=user, content_type=ct, object_id=item.pk).delete()
