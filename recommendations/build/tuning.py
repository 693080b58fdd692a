"""Provides the tuning policy of full builds: reuse the configuration a self-tuning algorithm chose, or tune again.

A self-tuning algorithm (``auto``) chooses its member parameters and blend weights on a
validation split when it is fitted. Tuning costs a multiple of a fit, so a build reuses the
configuration of the last build (the active one, else the newest succeeded) and tunes again only
when there is none, when the algorithm's settings changed, when the interactions have grown by
``RETUNE_GROWTH`` since the tuning, or when the tuning is ``RETUNE_DAYS`` old. What happened is
recorded in ``BuildRun.tuning``.
"""
from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..algorithms.tuning import jsonable
from ..conf import app_settings
from ..models import BuildRun
from .config import param_names

# Parameters that say how to tune, not what to fit: changing them does not force a new tuning.
TUNING_PARAMS = ("tune", "tune_budget", "tune_users", "tune_iter", "tune_folds", "tune_metric", "tune_negatives")

# What a reusing build copies from the record of the build that tuned.
CARRIED = ("params", "metric", "validation", "items", "folds", "blend", "member_scores", "candidates", "settings",
           "tuned_build", "tuned_at", "tuned_interactions")


def self_tuning(name: str, params: dict[str, Any]) -> bool:
    """Whether algorithm ``name`` with ``params`` chooses its own configuration when fitted."""
    if "tune" not in param_names(name):
        return False
    tune = params.get("tune")
    return bool(tune) if tune is not None else params.get("weights") is None


def settings_key(params: dict[str, Any]) -> dict[str, Any]:
    """The part of a build's parameters that a reused configuration must have been tuned under."""
    return jsonable({k: v for k, v in params.items() if k not in TUNING_PARAMS})


def last_configured(build: BuildRun) -> BuildRun | None:
    """The build whose configuration ``build`` would reuse: the active one, else the newest succeeded."""
    return (
        BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED, algorithm=build.algorithm)
        .exclude(pk=build.pk).order_by("-is_active", "-created_at", "-pk").only("pk", "tuning").first()
    )


def retune_reason(previous: BuildRun | None, params: dict[str, Any], n_interactions: int) -> str | None:
    """Why a build must tune instead of reusing ``previous``'s configuration (None: it may reuse it)."""
    record = previous.tuning if previous is not None else {}
    if not record.get("params"):
        return "no earlier tuned configuration"
    if record.get("settings") != settings_key(params):
        return "the algorithm's settings changed"
    tuned_n = int(record.get("tuned_interactions") or 0)
    growth = float(app_settings.RETUNE_GROWTH)
    if n_interactions >= tuned_n * (1 + growth):
        share = (n_interactions - tuned_n) / tuned_n if tuned_n else float("inf")
        return f"interactions grew by {share:.0%} since the tuning (RETUNE_GROWTH {growth:g})"
    tuned_at = parse_datetime(record.get("tuned_at") or "")
    days = float(app_settings.RETUNE_DAYS)
    if tuned_at is None or timezone.now() - tuned_at >= timedelta(days=days):
        return f"the tuning is older than {days:g} days (RETUNE_DAYS)"
    return None


def fit_params(build: BuildRun, n_interactions: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the parameters to fit ``build``'s algorithm with and the decision to record.

    The decision is ``{"reused_from": build, ...}`` with the reused record, ``{"retune_reason": why}``,
    or empty for an algorithm that does not tune itself.
    """
    params = dict(build.params)
    if not self_tuning(build.algorithm, params):
        return params, {}
    previous = last_configured(build)
    reason = retune_reason(previous, params, n_interactions)
    if reason is not None:
        return params, {"retune_reason": reason}
    carried = {key: previous.tuning[key] for key in CARRIED if key in previous.tuning}
    # The chosen configuration includes the blend weights, so the algorithm fits it as it is.
    return {**params, **carried["params"], "tune": False}, {**carried, "reused_from": previous.pk}


def tuning_record(build: BuildRun, model: Any, decision: dict[str, Any], n_interactions: int) -> dict[str, Any]:
    """What ``BuildRun.tuning`` stores once ``model`` is fitted under ``decision`` (see ``fit_params``)."""
    if "reused_from" in decision:
        return {**decision, "tuned": False, "seconds": 0.0}
    if "retune_reason" not in decision:
        return {}
    record = {**json_safe(getattr(model, "tuning_", {}) or {}), "retune_reason": decision["retune_reason"]}
    if record.get("tuned"):
        record.update(tuned_build=build.pk, tuned_at=timezone.now().isoformat(), tuned_interactions=n_interactions,
                      settings=settings_key(build.params))
    return record


def json_safe(obj: Any) -> Any:
    """``obj`` with numpy scalars as Python numbers and NaN or infinite scores as None (PostgreSQL's JSON has neither)."""
    obj = jsonable(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def tuning_summary(tuning: dict[str, Any]) -> str:
    """One line on how a build got its configuration ("" for an algorithm that does not tune itself)."""
    if not tuning:
        return ""
    if "reused_from" in tuning:
        return f"reused from build #{tuning['reused_from']}"
    if tuning.get("tuned"):
        return f"tuned in {_fmt(tuning.get('seconds'), '.1f')} s, blend {_fmt(tuning.get('blend'), '.4f')}"
    return f"not tuned: {tuning.get('reason', 'unknown')}"


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"
