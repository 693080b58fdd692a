"""Provides an experiment's results: each arm's metrics with intervals, the differences with the control (fixed-horizon
and always-valid p-values), the sample-ratio-mismatch check, the guardrails and, for interleaving, the preference test.

Everything is computed from the stored impressions and their attributions (``recommendations.impressions``),
with the reader (user, or hashed session) as the unit: ``unit_days`` sums each reader's impressions, clicks,
read-throughs, ratings, stars and "Not interested" marks per day, and the statistics come from
``recommendations.algorithms.experiments_stats``. The always-valid p-value is the running minimum over
daily looks, so it may be read every day; the fixed-horizon p-value is valid only once the experiment
reached its stop (``horizon_reached``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..algorithms import experiments_stats as es
from ..conf import app_settings
from ..impressions.models import Attribution, Impression
from .models import Experiment
from .serving import teams_from_label

#: Each metric is a ratio of per-reader sums: (numerator column, denominator column).
METRICS = {
    "ctr": ("clicks", "impressions"),
    "read_through_rate": ("read_throughs", "impressions"),
    "rating_rate": ("ratings", "impressions"),
    "not_interested_rate": ("not_interested", "impressions"),
    "mean_rating": ("stars", "ratings"),
}
COLUMNS = ("impressions", "clicks", "read_throughs", "ratings", "stars", "not_interested")
KIND_COLUMNS = {"click": "clicks", "read_through": "read_throughs", "rating": "ratings",
                "not_interested": "not_interested"}
PRIMARY = "ctr"
#: Guardrails and the direction that is harmful: more "Not interested" marks, lower ratings.
GUARDRAILS = {"not_interested_rate": +1, "mean_rating": -1}


@dataclass
class MetricResult:
    """One metric of one arm, and (for a treatment arm) its difference with the control."""

    estimate: es.RatioEstimate
    difference: es.Difference | None = None
    sequential_p_value: float | None = None
    guardrail_breached: bool = False


@dataclass
class ArmResult:
    name: str
    is_control: bool
    share: float
    units: int
    impressions: int
    metrics: dict[str, MetricResult] = field(default_factory=dict)


@dataclass
class ExperimentResults:
    """What the admin's results page and the staff API show."""

    slug: str
    kind: str
    alpha: float
    days: int
    horizon_reached: bool
    arms: list[ArmResult]
    srm: es.SRMResult | None
    interleaving: es.InterleavingResult | None = None

    def as_dict(self) -> dict:
        """Return the results as JSON-ready data (NaN becomes None)."""
        return _clean(asdict(self))


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unit(user_id, session_hash: str) -> str:
    return f"u:{user_id}" if user_id is not None else f"s:{session_hash}"


def unit_days(experiment: Experiment, n_days: int) -> dict[str, dict[str, np.ndarray]]:
    """Return, per arm name, each column of ``COLUMNS`` as a (readers x days) array of sums."""
    first = timezone.localdate(experiment.start)
    impressions = (Impression.objects.filter(experiment=experiment.slug).annotate(day=TruncDate("created_at"))
                   .values_list("user_id", "session_hash", "arm", "day").annotate(n=Count("id")))
    attributions = (Attribution.objects.filter(impression__experiment=experiment.slug)
                    .annotate(day=TruncDate("impression__created_at"))
                    .values_list("impression__user_id", "impression__session_hash", "impression__arm", "day", "kind")
                    .annotate(n=Count("id"), total=Sum("value")))
    cells: dict[str, dict[str, dict[tuple[str, int], float]]] = {}

    def add(arm: str, unit: str, day, column: str, value: float) -> None:
        index = min(max((day - first).days, 0), n_days - 1)
        cell = cells.setdefault(arm, {c: {} for c in COLUMNS})[column]
        cell[(unit, index)] = cell.get((unit, index), 0.0) + value

    for user_id, session, arm, day, n in impressions:
        add(arm, _unit(user_id, session), day, "impressions", n)
    for user_id, session, arm, day, kind, n, total in attributions:
        if kind in KIND_COLUMNS:
            add(arm, _unit(user_id, session), day, KIND_COLUMNS[kind], n)
        if kind == "rating":
            add(arm, _unit(user_id, session), day, "stars", total or 0.0)
    out = {}
    for arm, columns in cells.items():
        units = sorted({unit for unit, _ in columns["impressions"]})
        index = {unit: i for i, unit in enumerate(units)}
        arrays = {c: np.zeros((len(units), n_days)) for c in COLUMNS}
        for column, values in columns.items():
            for (unit, day), value in values.items():
                if unit in index:
                    arrays[column][index[unit], day] = value
        out[arm] = arrays
    return out


def compare_metric(control: dict[str, np.ndarray], treatment: dict[str, np.ndarray], metric: str, *,
                   alpha: float, relative_tau: float) -> tuple[es.Difference, float]:
    """Return the final difference of ``metric`` and its always-valid p-value over the daily looks."""
    numerator, denominator = METRICS[metric]
    days = control["impressions"].shape[1]

    def cumulative(data, day):
        seen = data["impressions"][:, : day + 1].sum(axis=1) > 0
        return data[numerator][seen, : day + 1].sum(axis=1), data[denominator][seen, : day + 1].sum(axis=1)

    # One mixture for every look, scaled by the control's value over the whole experiment so far.
    overall = es.ratio_estimate(*cumulative(control, days - 1))
    tau = es.default_tau(overall.value) * relative_tau / es.MIXTURE_RELATIVE_TAU
    looks = [es.ratio_difference(cumulative(control, d), cumulative(treatment, d), alpha=alpha, tau=tau)
             for d in range(days)]
    final = looks[-1]
    sequential = es.sequential_p_values([d.diff for d in looks], [d.se**2 for d in looks], tau)[-1]
    return final, sequential


def _empty(n_days: int) -> dict[str, np.ndarray]:
    return {c: np.zeros((0, n_days)) for c in COLUMNS}


def experiment_results(experiment: Experiment, *, now=None) -> ExperimentResults:
    """Return ``experiment``'s results from the stored impressions (read them as often as you like)."""
    now = now or timezone.now()
    until = min(now, experiment.stop)
    n_days = max(1, (timezone.localdate(until) - timezone.localdate(experiment.start)).days + 1)
    alpha = app_settings.EXPERIMENT_ALPHA
    arms = sorted(experiment.arms.all(), key=lambda a: (not a.is_control, a.pk))
    horizon = now >= experiment.stop or experiment.state == Experiment.State.STOPPED
    if experiment.kind == Experiment.Kind.INTERLEAVING:
        # Team A is the arm with the lower id, as in serving.
        teams = sorted(arms, key=lambda a: a.pk)
        return ExperimentResults(experiment.slug, experiment.kind, alpha, n_days, horizon,
                                 [ArmResult(a.name, a.is_control, a.share, 0, 0) for a in teams], None,
                                 interleaving_result(experiment))
    data = unit_days(experiment, n_days)
    control = data.get(arms[0].name, _empty(n_days)) if arms else _empty(n_days)
    results = []
    for position, arm in enumerate(arms):
        arrays = data.get(arm.name, _empty(n_days))
        result = ArmResult(arm.name, arm.is_control, arm.share, int(arrays["impressions"].shape[0]),
                           int(arrays["impressions"].sum()))
        for metric, (numerator, denominator) in METRICS.items():
            estimate = es.ratio_estimate(arrays[numerator].sum(axis=1), arrays[denominator].sum(axis=1), alpha=alpha)
            metric_result = MetricResult(estimate)
            if position > 0 and arrays["impressions"].shape[0] and control["impressions"].shape[0]:
                diff, sequential = compare_metric(control, arrays, metric, alpha=alpha,
                                                  relative_tau=app_settings.EXPERIMENT_MIXTURE_TAU)
                metric_result.difference, metric_result.sequential_p_value = diff, sequential
                harmful = GUARDRAILS.get(metric)
                metric_result.guardrail_breached = bool(harmful and sequential < alpha and diff.diff * harmful > 0)
            result.metrics[metric] = metric_result
        results.append(result)
    srm = es.srm_check([r.units for r in results], [a.share for a in arms],
                       threshold=app_settings.EXPERIMENT_SRM_ALPHA) if len(arms) >= 2 else None
    return ExperimentResults(experiment.slug, experiment.kind, alpha, n_days, horizon, results, srm)


def interleaving_result(experiment: Experiment) -> es.InterleavingResult:
    """Credit each click on an interleaved list to the arm that contributed the item; test the credit per list.

    Clicks on neutral positions (an item both arms proposed in the same draft round) credit neither arm.
    """
    credits: dict[str, list[int]] = {}
    for user_id, session, n in (Impression.objects.filter(experiment=experiment.slug)
                                .values_list("user_id", "session_hash").annotate(n=Count("id"))):
        credits.setdefault(_unit(user_id, session), [0, 0, 0])[2] += n
    clicks = (Attribution.objects.filter(impression__experiment=experiment.slug, kind="click")
              .values_list("impression__user_id", "impression__session_hash", "impression__arm", "position"))
    for user_id, session, label, position in clicks:
        teams = teams_from_label(label) or []
        # A neutral position (both arms proposed the item) credits neither arm.
        if 1 <= position <= len(teams) and teams[position - 1] is not None:
            credits.setdefault(_unit(user_id, session), [0, 0, 0])[teams[position - 1]] += 1
    a, b, lists = (np.array([c[k] for c in credits.values()], dtype=np.float64) for k in range(3))
    return es.interleaving_preference(a, b, lists, alpha=app_settings.EXPERIMENT_ALPHA)
