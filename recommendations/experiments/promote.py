"""Provides the promotion of an experiment's winner to the default configuration, and creating experiments in code."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..build.errors import BuildAlreadyRunning
from ..build.pipeline import build_activate
from ..tasks import full_build_start
from .models import Arm, DefaultConfiguration, Experiment
from .validation import ArmSpec, experiment_problems


def experiment_create(*, name: str, slug: str, arms: Sequence[ArmSpec], kind: str = Experiment.Kind.AB,
                      surfaces: Sequence[str] = (), start: datetime | None = None, stop: datetime,
                      state: str = Experiment.State.RUNNING, salt: str | None = None) -> Experiment:
    """Create an experiment with its arms after checking them as the admin does; raise ``ValidationError`` if invalid.

    Readers are assigned once the experiment is live and a build has fitted its algorithm arms
    (``experiments.picks``): run a full build after creating one with algorithm arms.
    """
    start = start or timezone.now()
    problems = experiment_problems(kind=kind, start=start, stop=stop, arms=arms)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        extra = {"salt": salt} if salt else {}
        experiment = Experiment.objects.create(name=name, slug=slug, kind=kind, surfaces=list(surfaces), start=start,
                                               stop=stop, state=state, **extra)
        Arm.objects.bulk_create([
            Arm(experiment=experiment, name=a.name, share=a.share, is_control=a.is_control, algorithm=a.algorithm,
                params=dict(a.params), build_id=a.build_id) for a in arms
        ])
    return experiment


def experiment_stop(*, experiment: Experiment) -> Experiment:
    """Stop ``experiment`` now: its surfaces serve the default configuration again."""
    experiment.state = Experiment.State.STOPPED
    experiment.stop = min(experiment.stop, timezone.now())
    experiment.save(update_fields=["state", "stop"])
    return experiment


def experiment_promote(*, experiment: Experiment, arm: Arm, rebuild: bool = True) -> str:
    """Make ``arm`` the default configuration, stop the experiment and return what changed, in a sentence.

    An algorithm arm becomes ``DefaultConfiguration`` (later builds fit it; with ``rebuild`` a full build
    is queued now); a build arm's build is made active; an arm serving the default changes nothing
    but the experiment's state.
    """
    if arm.experiment_id != experiment.pk:
        raise ValidationError(f"Arm {arm.name!r} is not an arm of {experiment.slug!r}.")
    with transaction.atomic():
        if arm.build_id:
            build = build_activate(build_id=arm.build_id)
            DefaultConfiguration.objects.update_or_create(pk=1, defaults={
                "algorithm": build.algorithm, "params": build.params, "experiment": experiment,
                "arm_name": arm.name, "promoted_at": timezone.now()})
            outcome = f"Build #{build.pk} is active and its configuration is the default."
        elif arm.algorithm:
            DefaultConfiguration.objects.update_or_create(pk=1, defaults={
                "algorithm": arm.algorithm, "params": arm.params or {}, "experiment": experiment,
                "arm_name": arm.name, "promoted_at": timezone.now()})
            outcome = f"{arm.configuration} is the default configuration of the next builds."
        else:
            outcome = "The default configuration stays as it is."
        experiment.winner = arm
        experiment.save(update_fields=["winner"])
        experiment_stop(experiment=experiment)
    if rebuild and arm.algorithm and not arm.build_id:
        try:
            build = full_build_start(triggered_by="experiment")
            outcome += f" Build #{build.pk} was queued."
        except BuildAlreadyRunning as exc:
            outcome += f" {exc}"
    return outcome

