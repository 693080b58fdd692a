"""Provides the records of served lists (``Impression``), what followed them (``Attribution``) and their daily rollup.

An impression keeps its items as one JSON list of ``"content_type_id:object_id"`` keys in
position order (position 1 first), not one row per item: a served list is one row to insert,
and attribution reads a reader's few recent impressions, never all impressions of an item
(docs/decisions.md).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class Impression(models.Model):
    """One list shown to one reader: where, from what, in which experiment arm, and its items in order."""

    recommendation_id = models.UUIDField(unique=True)
    # No index of its own: "impression_user_recent" starts with the user, and each index costs every write. No
    # database constraint either: its per-row check was a third of the write; the ORM still cascades, the flush
    # skips deleted readers and the nightly purge removes a race's leftovers (docs/decisions.md).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", db_index=False, db_constraint=False)
    session_hash = models.CharField(
        max_length=64, blank=True,
        help_text="A keyed hash of an anonymous reader's session key (never an IP address or user agent).")
    surface = models.CharField(max_length=64, help_text='Where the list was shown: "home", "detail:similar", "api:recommendations"…')
    algorithm = models.CharField(max_length=64, blank=True, help_text="The algorithm or configuration that made the list.")
    # A plain id, not a foreign key: pruning old builds must not delete the record of what was shown.
    build_id = models.BigIntegerField(null=True, blank=True)
    experiment = models.CharField(max_length=64, blank=True, help_text="The experiment's slug, blank when none.")
    arm = models.CharField(max_length=64, blank=True, help_text="The experiment arm's name, blank when none.")
    items = models.JSONField(default=list, help_text='["content_type_id:object_id", …], position 1 first.')
    created_at = models.DateTimeField(default=timezone.now)
    propensities = models.JSONField(
        null=True, blank=True,
        help_text="Aligned with items: the probability of each randomised exploration pick, null elsewhere "
                  "(EXPLORATION_EPSILON); null when the list has none.")

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="impression_created"),
            models.Index(fields=["user", "created_at"], name="impression_user_recent"),
            models.Index(fields=["session_hash", "created_at"], name="impression_session_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.surface} {self.recommendation_id}"

    def position_of(self, key: str) -> int | None:
        """Return the 1-based position of item ``key`` ("content_type_id:object_id") in this list, or None."""
        try:
            return self.items.index(key) + 1
        except ValueError:
            return None


class Attribution(models.Model):
    """A click, read, read-through, rating or "Not interested" mark tied to the impression that led to it."""

    class Kind(models.TextChoices):
        CLICK = "click", "Click"
        READ = "read", "Read"
        READ_THROUGH = "read_through", "Read through"
        RATING = "rating", "Rating"
        NOT_INTERESTED = "not_interested", "Not interested"

    # No index of its own: the unique "one_attribution_per_kind" starts with the impression.
    impression = models.ForeignKey(Impression, on_delete=models.CASCADE, related_name="attributions", db_index=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.FloatField(null=True, blank=True, help_text="Stars of a rating, progress of a read.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["impression", "content_type", "object_id", "kind"],
                                    name="one_attribution_per_kind"),
        ]
        indexes = [models.Index(fields=["created_at"], name="attribution_created")]

    def __str__(self) -> str:
        return f"{self.kind} at #{self.position} of {self.impression_id}"


class DailyMetric(models.Model):
    """Online metrics of one surface and experiment arm on one day (UTC), rolled up from impressions."""

    day = models.DateField()
    surface = models.CharField(max_length=64)
    experiment = models.CharField(max_length=64, blank=True)
    arm = models.CharField(max_length=64, blank=True)
    impressions = models.PositiveIntegerField(default=0)
    items_shown = models.PositiveIntegerField(default=0)
    readers = models.PositiveIntegerField(default=0, help_text="Distinct readers (or sessions) shown a list.")
    clicks = models.PositiveIntegerField(default=0)
    reads = models.PositiveIntegerField(default=0)
    read_throughs = models.PositiveIntegerField(default=0)
    ratings = models.PositiveIntegerField(default=0)
    not_interested = models.PositiveIntegerField(default=0)
    distinct_items = models.PositiveIntegerField(default=0)
    catalogue_size = models.PositiveIntegerField(default=0)
    ctr = models.FloatField(default=0.0, help_text="Clicked impressions / impressions.")
    read_through_rate = models.FloatField(default=0.0, help_text="Impressions with a read-through / impressions.")
    rating_rate = models.FloatField(default=0.0, help_text="Impressions with a rating / impressions.")
    not_interested_rate = models.FloatField(default=0.0, help_text='Impressions with a "Not interested" / impressions.')
    coverage = models.FloatField(default=0.0, help_text="Distinct items shown / servable items.")
    positive_feedback_rate = models.FloatField(
        default=0.0, help_text="Gorse's: per reader, positive feedback / items shown; averaged over readers.")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "surface", "experiment", "arm"]
        constraints = [
            models.UniqueConstraint(fields=["day", "surface", "experiment", "arm"], name="one_metric_per_day_arm"),
        ]

    def __str__(self) -> str:
        arm = f" {self.experiment}/{self.arm}" if self.experiment else ""
        return f"{self.day} {self.surface}{arm}"
