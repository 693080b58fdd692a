"""Provides the stored results of the recommendations app and the records of its builds.

Results point at items through content types (``content_type`` + ``object_id`` as text, so
integer and UUID primary keys both work) and at users through ``AUTH_USER_MODEL``. Every
result row belongs to one ``BuildRun``; serving reads only the rows of the active build, so
a build that is still writing, or that failed, is never visible.
"""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .experiments.models import Arm, ArmPicks, DefaultConfiguration, Experiment
from .impressions.models import Attribution, DailyMetric, Impression

__all__ = [
    "Arm", "ArmPicks", "Attribution", "BuildArtifact", "BuildLock", "BuildRun", "DailyMetric", "DefaultConfiguration",
    "Experiment", "Impression", "ItemRule", "JSONTextField", "PayloadGeneration", "PopularItem", "SimilarItem",
    "UserPayload", "UserRecommendation", "UserRefresh",
]


class JSONTextField(models.TextField):
    """A JSON value stored as its text on every database, read back as the Python value.

    ``JSONField`` is ``jsonb`` on PostgreSQL: the server parses every value written and prints
    every value read. The picks' explanations are only ever written whole and read whole (never
    queried inside), by the hundred thousand per build, so text is cheaper (see docs/decisions.md).
    """

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValidationError(f"Enter valid JSON: {exc}") from exc
        return value

    def get_prep_value(self, value):
        return None if value is None else json.dumps(value)

    def value_to_string(self, obj) -> str:
        return json.dumps(self.value_from_object(obj))


class BuildRunQuerySet(models.QuerySet):
    def active(self) -> models.QuerySet:
        """Return the build whose results are served (at most one row)."""
        return self.filter(is_active=True)


class BuildRun(models.Model):
    """One full build: its status, parameters, counts, per-stage timings and metrics."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    is_active = models.BooleanField(default=False, help_text="The build whose results are served.")
    algorithm = models.CharField(max_length=64, blank=True)
    params = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Offline evaluation of this build.")
    tuning = models.JSONField(
        default=dict, blank=True,
        help_text="How the algorithm's configuration was chosen: tuned here (validation scores of each member "
                  "and of the blend, seconds) or reused from an earlier build.",
    )
    error = models.TextField(blank=True)
    reactivable = models.BooleanField(
        default=True,
        help_text="False once a reader was deleted after this build: its results are dropped when it is not active.",
    )
    triggered_by = models.CharField(max_length=64, blank=True, help_text="command, admin, api, schedule…")
    task_id = models.CharField(max_length=64, blank=True)
    data_until = models.DateTimeField(null=True, blank=True, help_text="Interactions up to this time were used.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = BuildRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_build"),
        ]

    def __str__(self) -> str:
        return f"Build #{self.pk} ({self.status}{', active' if self.is_active else ''})"

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class BuildArtifact(models.Model):
    """A fitted model or matrix of a build, saved with ``numpy.savez`` (loaded with allow_pickle=False)."""

    build = models.ForeignKey(BuildRun, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=64)
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["build", "name"], name="one_artifact_per_name")]

    def __str__(self) -> str:
        return f"{self.name} of build #{self.build_id}"


# The foreign keys of the two bulk result tables (``SimilarItem``, ``UserRecommendation``) have
# no database constraint and no single-column index: PostgreSQL checks a constraint row by row,
# which cost more than inserting the rows (docs/decisions.md). Django still deletes the rows with
# what they point at (``on_delete=CASCADE`` is carried out by the ORM), every read goes through the
# composite lookup index, and ``build_finalize`` removes picks of a user deleted during the build.
RESULT_ROW_KEYS = {"db_constraint": False, "db_index": False}


class SimilarItem(models.Model):
    """One stored neighbour of an item: ``target`` is similar to ``source``, best first by ``rank``."""

    class Kind(models.TextChoices):
        CONTENT = "content", "Content"
        COLLABORATIVE = "collaborative", "Collaborative"

    # Bulk rows, written by the hundred thousand per build: see RESULT_ROW_KEYS.
    build = models.ForeignKey(BuildRun, on_delete=models.CASCADE, related_name="+", **RESULT_ROW_KEYS)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+", **RESULT_ROW_KEYS)
    object_id = models.CharField(max_length=64)
    target_content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+",
                                            **RESULT_ROW_KEYS)
    target_object_id = models.CharField(max_length=64)
    rank = models.PositiveIntegerField()
    score = models.FloatField()

    class Meta:
        ordering = ["rank"]
        indexes = [
            models.Index(fields=["build", "kind", "content_type", "object_id", "rank"], name="similar_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.rank} of {self.content_type_id}:{self.object_id}"


class UserRecommendation(models.Model):
    """One stored pick for a user, with its explanation ("Because you read …")."""

    # Bulk rows, written by the hundred thousand per build: see RESULT_ROW_KEYS. The user
    # column keeps its index: deleting a user deletes their picks by it.
    build = models.ForeignKey(BuildRun, on_delete=models.CASCADE, related_name="+", **RESULT_ROW_KEYS)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+", **RESULT_ROW_KEYS)
    object_id = models.CharField(max_length=64)
    rank = models.PositiveIntegerField()
    score = models.FloatField()
    explanation = JSONTextField(
        default=list, blank=True, help_text='Items of the history that contributed most: [{"content_type", "object_id", "title"}].'
    )
    source = models.CharField(max_length=16, default="build", help_text="build or refresh")

    class Meta:
        ordering = ["rank"]
        indexes = [models.Index(fields=["build", "user", "rank"], name="user_recs_lookup")]

    def __str__(self) -> str:
        return f"#{self.rank} for user {self.user_id}"


class PopularItem(models.Model):
    """The most popular items of a build, per item model: the fallback for cold users."""

    build = models.ForeignKey(BuildRun, on_delete=models.CASCADE, related_name="+")
    window = models.CharField(max_length=8, default="all", help_text="all, or recent (the last POPULAR_WINDOW_DAYS)")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    rank = models.PositiveIntegerField()
    score = models.FloatField()

    class Meta:
        ordering = ["rank"]
        indexes = [models.Index(fields=["build", "window", "content_type", "rank"], name="popular_lookup")]


class ItemRule(models.Model):
    """An editor's rule for one item: pin it to the top, boost its score, or ban it from recommendations."""

    class Action(models.TextChoices):
        PIN = "pin", "Pin to the top"
        BOOST = "boost", "Boost"
        BAN = "ban", "Ban"

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    action = models.CharField(max_length=8, choices=Action.choices)
    factor = models.FloatField(default=1.5, help_text="Score multiplier, for boost.")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["content_type", "object_id"], name="one_rule_per_item")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.content_type_id}:{self.object_id}"


class BuildLock(models.Model):
    """A named lease: only one full build holds it; a lease past ``expires_at`` is stale and may be taken."""

    name = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=128)
    acquired_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.owner} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class UserRefresh(models.Model):
    """Debounce and recovery state of a user's incremental refresh."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    @property
    def pending(self) -> bool:
        return self.refreshed_at is None or self.refreshed_at < self.requested_at


class UserPayload(models.Model):
    """The stored response body of a reader's default ``GET /api/recommendations/`` (see ``payloads``).

    A row is served only while its ``build`` is the active build, its ``generation`` is the current
    ``PayloadGeneration`` and its ``config`` matches the serving configuration. ``version`` changes
    on every invalidation of this reader, so a body computed before it is never stored after it.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.CharField(max_length=32, help_text="Changed by every invalidation of this reader.")
    # A plain id, not a foreign key: pruning old builds must not touch this table (stale ids never match).
    build_id = models.BigIntegerField(null=True, blank=True, help_text="The active build when the body was computed.")
    generation = models.BigIntegerField(null=True, blank=True)
    config = models.CharField(max_length=40, blank=True)
    body = models.BinaryField(null=True, blank=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Stored picks of user {self.user_id}"


class PayloadGeneration(models.Model):
    """One row (id 1): bumped by every change that can alter any reader's picks (item, rule, neighbours)."""

    value = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"Payload generation {self.value}"
