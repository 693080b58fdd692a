"""Provides the system checks of online experiments (ids ``recommendations.E023``-``E025``).

=====  ==============================================================================
id     what is wrong
=====  ==============================================================================
E023   ``EXPERIMENT_ALPHA`` or ``EXPERIMENT_SRM_ALPHA`` is not a number strictly between 0 and 1
E024   ``EXPERIMENT_MIXTURE_TAU`` is not a number > 0
E025   a running experiment stored in the database is not valid (shares, arms, dates, algorithms);
       checked by ``manage.py check --database default``
=====  ==============================================================================
"""
from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from ..conf import DEFAULTS
from .models import Experiment
from .validation import arm_specs, experiment_problems


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_experiment_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Check the experiment settings of ``RECOMMENDATIONS``."""
    conf = getattr(settings, "RECOMMENDATIONS", {})
    if not isinstance(conf, dict):
        return []  # reported as E001
    errors: list[checks.CheckMessage] = []
    for key in ("EXPERIMENT_ALPHA", "EXPERIMENT_SRM_ALPHA"):
        value = conf.get(key, DEFAULTS[key])
        if not _number(value) or not 0 < value < 1:
            errors.append(checks.Error(f"{key} must be a number between 0 and 1, not {value!r}.",
                                       hint=f"e.g. '{key}': {DEFAULTS[key]}.", id="recommendations.E023"))
    tau = conf.get("EXPERIMENT_MIXTURE_TAU", DEFAULTS["EXPERIMENT_MIXTURE_TAU"])
    if not _number(tau) or not tau > 0:
        errors.append(checks.Error(
            f"EXPERIMENT_MIXTURE_TAU must be a number > 0, not {tau!r}.",
            hint="e.g. 0.1: the always-valid test is most sensitive to lifts around 10% of the control's value.",
            id="recommendations.E024"))
    return errors


def check_running_experiments(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Check every running experiment's arms and dates (only with ``check --database``)."""
    if not databases:
        return []
    errors: list[checks.CheckMessage] = []
    try:
        running = list(Experiment.objects.filter(state=Experiment.State.RUNNING).prefetch_related("arms"))
    except DatabaseError:
        return []  # not migrated yet
    for experiment in running:
        for problem in experiment_problems(kind=experiment.kind, start=experiment.start, stop=experiment.stop,
                                           arms=arm_specs(experiment)):
            errors.append(checks.Error(f"Experiment {experiment.slug!r}: {problem}", obj=experiment,
                                       hint="Fix it in the admin, or stop the experiment.",
                                       id="recommendations.E025"))
    return errors
