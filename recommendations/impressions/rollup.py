"""Provides the daily online metrics (``DailyMetric``) rolled up from impressions, and the purge of old impressions.

Per surface × experiment × arm × day (UTC): impressions, clicks, reads, read-throughs, ratings
and "Not interested" marks, their rates per impression (an impression counts once however many
of its items were clicked), coverage (distinct items shown / servable items) and Gorse's
positive-feedback rate: for each reader, their positive feedback (a read-through, or a rating of
``POSITIVE_STARS`` or more) over the items they were shown ("read feedback" in Gorse's terms),
averaged over the readers of the day.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..adapters import get_adapter
from ..conf import app_settings
from ..experiments.serving import INTERLEAVED_ARM, TEAMS_PREFIX
from .models import Attribution, DailyMetric, Impression

Kind = Attribution.Kind


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    return start, start + timedelta(days=1)


def _catalogue_size() -> int:
    adapter = get_adapter()
    return sum(adapter.item_queryset(model).count() for model in adapter.item_models())


def _new_group() -> dict[str, Any]:
    return {"impressions": 0, "items_shown": 0, "readers": set(), "items": set(), "clicked": set(),
            "read": set(), "read_through": set(), "rated": set(), "not_interested": set(),
            "shown_per_reader": defaultdict(int), "positive_per_reader": defaultdict(set),
            "counts": defaultdict(int)}


def daily_metrics_rollup(*, day: date | None = None) -> int:
    """Compute (again) the metrics of ``day`` (UTC; default yesterday) and replace its rows; return how many rows.

    Idempotent: run it again for a day and the same rows come out, updated with the
    attributions that arrived since.
    """
    day = day or (timezone.now() - timedelta(days=1)).date()
    start, end = _day_bounds(day)
    groups: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(_new_group)
    owner: dict[int, tuple[tuple[str, str, str], str]] = {}
    impressions = Impression.objects.filter(created_at__gte=start, created_at__lt=end).values_list(
        "id", "surface", "experiment", "arm", "user_id", "session_hash", "items")
    for pk, surface, experiment, arm, user_id, session, items in impressions.iterator(chunk_size=5000):
        # An interleaved list records each position's team in its arm: its lists are one group per day.
        key = (surface, experiment, INTERLEAVED_ARM if arm.startswith(TEAMS_PREFIX) else arm)
        reader = f"u:{user_id}" if user_id is not None else f"s:{session}" if session else f"i:{pk}"
        group = groups[key]
        group["impressions"] += 1
        group["items_shown"] += len(items)
        group["readers"].add(reader)
        group["items"].update(items)
        group["shown_per_reader"][reader] += len(items)
        owner[pk] = (key, reader)
    attributions = Attribution.objects.filter(impression__created_at__gte=start, impression__created_at__lt=end)
    positive_stars = app_settings.POSITIVE_STARS
    for impression_id, kind, value, ct, oid in attributions.values_list(
            "impression_id", "kind", "value", "content_type_id", "object_id").iterator(chunk_size=5000):
        if impression_id not in owner:
            continue
        key, reader = owner[impression_id]
        group = groups[key]
        group["counts"][kind] += 1
        field = {Kind.CLICK: "clicked", Kind.READ: "read", Kind.READ_THROUGH: "read_through",
                 Kind.RATING: "rated", Kind.NOT_INTERESTED: "not_interested"}[kind]
        group[field].add(impression_id)
        if kind == Kind.READ_THROUGH or (kind == Kind.RATING and value is not None and value >= positive_stars):
            group["positive_per_reader"][reader].add(f"{ct}:{oid}")
    return _metrics_save(day, groups, _catalogue_size())


def _metrics_save(day: date, groups: dict, catalogue: int) -> int:
    rows = []
    for (surface, experiment, arm), g in groups.items():
        n = g["impressions"] or 1
        per_reader = [len(g["positive_per_reader"][r]) / shown for r, shown in g["shown_per_reader"].items() if shown]
        rows.append(DailyMetric(
            day=day, surface=surface, experiment=experiment, arm=arm, impressions=g["impressions"],
            items_shown=g["items_shown"], readers=len(g["readers"]), clicks=g["counts"][Kind.CLICK],
            reads=g["counts"][Kind.READ], read_throughs=g["counts"][Kind.READ_THROUGH],
            ratings=g["counts"][Kind.RATING], not_interested=g["counts"][Kind.NOT_INTERESTED],
            distinct_items=len(g["items"]), catalogue_size=catalogue,
            ctr=len(g["clicked"]) / n, read_through_rate=len(g["read_through"]) / n,
            rating_rate=len(g["rated"]) / n, not_interested_rate=len(g["not_interested"]) / n,
            coverage=len(g["items"]) / catalogue if catalogue else 0.0,
            positive_feedback_rate=sum(per_reader) / len(per_reader) if per_reader else 0.0,
        ))
    with transaction.atomic():
        DailyMetric.objects.filter(day=day).delete()
        DailyMetric.objects.bulk_create(rows)
    return len(rows)


def impressions_purge(*, now: datetime | None = None) -> int:
    """Delete impressions (and their attributions) older than ``IMPRESSION_RETENTION_DAYS``; return how many.

    Also those of readers who no longer exist: a list written in the moment its reader was deleted (the
    reader column has no database constraint, ``Impression.user``).
    """
    cutoff = (now or timezone.now()) - timedelta(days=float(app_settings.IMPRESSION_RETENTION_DAYS))
    readers = get_user_model()._default_manager.filter(pk=OuterRef("user_id"))
    orphaned = Q(user_id__isnull=False) & ~Exists(readers)
    deleted, by_model = Impression.objects.filter(Q(created_at__lt=cutoff) | orphaned).delete()
    return by_model.get(Impression._meta.label, 0)


def impressions_daily_run(*, now: datetime | None = None) -> dict[str, int]:
    """The nightly job: roll up yesterday and the day before (late attributions), then purge old impressions."""
    today = (now or timezone.now()).date()
    rows = sum(daily_metrics_rollup(day=today - timedelta(days=back)) for back in (2, 1))
    return {"metric_rows": rows, "purged": impressions_purge(now=now)}
