"""Provides the experiments editors define (``Experiment``, ``Arm``), the lists a build stores for each arm
(``ArmPicks``) and the configuration a promoted winner made the default (``DefaultConfiguration``).
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


def new_salt() -> str:
    """Return a fresh random salt: each experiment splits readers independently of every other."""
    return secrets.token_hex(8)


class ExperimentQuerySet(models.QuerySet):
    def live(self, now=None) -> models.QuerySet:
        """Return the experiments that assign readers now: running, started and not yet stopped."""
        now = now or timezone.now()
        return self.filter(state=Experiment.State.RUNNING, start__lte=now, stop__gt=now)


class Experiment(models.Model):
    """An A/B test or a team-draft interleaving of two arms, on some surfaces, between ``start`` and ``stop``."""

    class Kind(models.TextChoices):
        AB = "ab", "A/B test"
        INTERLEAVING = "interleaving", "Team-draft interleaving"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True, help_text="Recorded with every impression of the experiment.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.AB)
    surfaces = models.JSONField(
        default=list, blank=True,
        help_text='Surfaces of picks the experiment applies to, e.g. ["home", "api:recommendations"]; empty: all.')
    start = models.DateTimeField(default=timezone.now)
    stop = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, db_index=True)
    salt = models.CharField(max_length=32, default=new_salt,
                            help_text="Mixed into the hash of each reader: a new salt reshuffles the arms.")
    winner = models.ForeignKey("Arm", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               help_text="The arm promoted to the default configuration.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def is_live(self, now=None) -> bool:
        """Return whether the experiment assigns readers now."""
        now = now or timezone.now()
        return self.state == self.State.RUNNING and self.start <= now < self.stop

    def applies_to(self, surface: str) -> bool:
        """Return whether lists of ``surface`` are part of the experiment."""
        return not self.surfaces or surface in self.surfaces


class Arm(models.Model):
    """One configuration under test: an algorithm with parameters, a kept build, or (neither) the default."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.SlugField(max_length=48, help_text="Recorded with every impression of the arm.")
    is_control = models.BooleanField(default=False)
    share = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                              help_text="Share of readers (all arms of an experiment sum to 1).")
    algorithm = models.CharField(max_length=64, blank=True,
                                 help_text="An algorithm the build fits for this arm; blank: the default configuration.")
    params = models.JSONField(default=dict, blank=True, help_text="The algorithm's parameters.")
    build = models.ForeignKey("recommendations.BuildRun", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="Serve this kept build's picks instead of an algorithm.")

    class Meta:
        ordering = ["-is_control", "pk"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="one_arm_name_per_experiment")]

    def __str__(self) -> str:
        return f"{self.experiment.slug}:{self.name}"

    @property
    def configuration(self) -> str:
        """Describe what the arm serves."""
        if self.build_id:
            return f"build #{self.build_id}"
        if self.algorithm:
            return f"{self.algorithm} {self.params}" if self.params else self.algorithm
        return "default"

    @property
    def fitted_by_build(self) -> bool:
        """Whether builds fit and store lists for this arm (an algorithm of its own)."""
        return bool(self.algorithm) and not self.build_id


class ArmPicks(models.Model):
    """A reader's stored picks under one arm's algorithm, computed by a build (served only with that build active)."""

    build = models.ForeignKey("recommendations.BuildRun", on_delete=models.CASCADE, related_name="+",
                              db_constraint=False)
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             db_constraint=False)
    # JSON text, written and read whole: [[content_type_id, object_id, score], ...], best first.
    items = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["build", "arm", "user"], name="arm_picks_lookup")]

    def __str__(self) -> str:
        return f"Picks of user {self.user_id} under arm {self.arm_id}"


class DefaultConfiguration(models.Model):
    """One row (id 1) when a winner was promoted: the algorithm later builds fit instead of the settings'."""

    algorithm = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    arm_name = models.CharField(max_length=48, blank=True)
    promoted_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Default configuration: {self.algorithm}"
