"""Provides the online simulation's statistics, all through the experiments' own code.

* A/A: the readers of one A/A phase are re-split with many salts by the real assignment
  (``experiments.assignment.arm_index``), and each split is compared by the real results code
  (``experiments.results.compare_metric``), at the horizon and at every simulated day.
* A/B: the measured CTR difference and its interval, against the true one of the click model.
* Interleaving against A/B: the impressions each needs for the same decision at equal power, at the
  click model's true effect with the variance over readers from the stored rows; resampled readers
  check the power reached. Interleaving's A/A: the A/A lists re-credited under many coin salts.
* SRM: a 55/45 split declared as 50/50, through the real assignment and ``srm_check``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from recommendations.algorithms import experiments_stats as es
from recommendations.experiments.assignment import ArmInfo, LiveExperiment, arm_index
from recommendations.experiments.results import COLUMNS, compare_metric

METRIC = "ctr"


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Return the Wilson interval of a binomial proportion."""
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(1 - alpha / 2)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def split_experiment(salt: str, shares: tuple[float, ...] = (0.5, 0.5)) -> LiveExperiment:
    """Return an experiment as serving sees it, with ``salt`` and arms of ``shares`` (to call ``arm_index``)."""
    arms = tuple(ArmInfo(i, f"arm{i}", s, i == 0, "", None) for i, s in enumerate(shares))
    return LiveExperiment(0, f"aa-{salt}", "ab", ("home",), salt, None, None, arms)


def assign(units: list[str], salt: str, shares: tuple[float, ...] = (0.5, 0.5)) -> np.ndarray:
    """Return each unit's arm index under the real sticky assignment with ``salt``."""
    experiment = split_experiment(salt, shares)
    return np.array([arm_index(experiment, unit) for unit in units])


def columns(impressions: np.ndarray, clicks: np.ndarray) -> dict[str, np.ndarray]:
    """Return the results code's per-reader columns (readers x days) holding impressions and clicks."""
    zeros = np.zeros_like(impressions)
    data = {c: zeros for c in COLUMNS}
    data.update(impressions=impressions, clicks=clicks)
    return data


def _rows(data: dict[str, np.ndarray], mask: np.ndarray, days: int) -> dict[str, np.ndarray]:
    return {c: v[mask, :days] for c, v in data.items()}


def looks(data: dict[str, np.ndarray], arms: np.ndarray, *, alpha: float, relative_tau: float) -> list[tuple]:
    """Return (fixed-horizon p, always-valid p, difference) read at the end of each day, as an editor would."""
    out = []
    for day in range(1, data["impressions"].shape[1] + 1):
        diff, sequential = compare_metric(_rows(data, arms == 0, day), _rows(data, arms == 1, day), METRIC,
                                          alpha=alpha, relative_tau=relative_tau)
        out.append((diff.p_value, sequential, diff))
    return out


@dataclass
class AAResult:
    n_experiments: int
    n_readers: int
    fixed: int
    peeking_fixed: int
    sequential_daily: int
    #: Relative mixture tau -> splits whose always-valid p fell below alpha on some day.
    sequential_by_tau: dict[float, int]

    def rate(self, count: int) -> tuple[float, float, float]:
        low, high = wilson(count, self.n_experiments)
        return count / self.n_experiments, low, high


def aa_experiments(units: list[str], data: dict[str, np.ndarray], *, n_salts: int, alpha: float,
                   relative_tau: float, other_taus: tuple[float, ...] = ()) -> AAResult:
    """Split the A/A readers ``n_salts`` times and count the splits each way of reading calls significant.

    ``other_taus`` are mixture widths (relative to the control's CTR) tried besides the setting's.
    """
    fixed = peeking = 0
    by_tau = dict.fromkeys((relative_tau, *other_taus), 0)
    for salt in range(n_salts):
        arms = assign(units, f"aa-resplit-{salt}")
        for tau in by_tau:
            daily = looks(data, arms, alpha=alpha, relative_tau=tau)
            by_tau[tau] += any(s < alpha for _, s, _ in daily)
            if tau == relative_tau:
                fixed += daily[-1][0] < alpha
                peeking += any(p < alpha for p, _, _ in daily)
    return AAResult(n_salts, len(units), fixed, peeking, by_tau[relative_tau], by_tau)


def bootstrap_interval(values: Callable[[np.random.Generator], float], *, draws: int, seed: int,
                       alpha: float = 0.05) -> tuple[float, float]:
    """Return the percentile interval of ``values(rng)`` over ``draws`` resamples."""
    rng = np.random.default_rng(seed)
    samples = np.array([values(rng) for _ in range(draws)])
    return float(np.quantile(samples, alpha / 2)), float(np.quantile(samples, 1 - alpha / 2))


def true_ctr_lift(expected: tuple[np.ndarray, np.ndarray], impressions: tuple[np.ndarray, np.ndarray], *,
                  draws: int, seed: int) -> tuple[float, float, float, float]:
    """Return the click model's CTR difference (treatment - control), its interval over readers, and the control's CTR.

    ``expected[k]`` holds each reader's expected clicks under the click model (summed over the lists
    they were shown), ``impressions[k]`` their lists, for arm ``k`` (0 control, 1 treatment).
    """
    def lift(rng=None) -> float:
        values = []
        for e, n in zip(expected, impressions):
            pick = rng.integers(0, len(e), len(e)) if rng is not None else slice(None)
            values.append(e[pick].sum() / n[pick].sum())
        return values[1] - values[0]

    low, high = bootstrap_interval(lift, draws=draws, seed=seed)
    return lift(), low, high, float(expected[0].sum() / impressions[0].sum())


def power(test: Callable[[np.random.Generator, int], bool], n: int, *, draws: int, seed: int) -> float:
    """Return the share of ``draws`` resamples of ``n`` readers in which ``test`` reaches the decision."""
    rng = np.random.default_rng(seed)
    return sum(test(rng, n) for _ in range(draws)) / draws


def ab_readers_at(difference: float, control: tuple[np.ndarray, np.ndarray], treatment: tuple[np.ndarray, np.ndarray], *,
                  alpha: float, power_target: float) -> float:
    """Return the readers (both arms) a fixed-horizon A/B test needs to detect ``difference`` (normal approximation).

    Each arm's per-reader variance of the ratio metric is its delta-method ``se**2 * n``.
    """
    variance = sum(es.ratio_estimate(*arm).se ** 2 * len(arm[0]) for arm in (control, treatment))
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power_target)
    return 2 * z**2 * variance / difference**2 if difference else math.inf


def ab_test(control: tuple[np.ndarray, np.ndarray], treatment: tuple[np.ndarray, np.ndarray], *, alpha: float,
            direction: float, days: int | None = None) -> Callable[[np.random.Generator, int], bool]:
    """Return a resampled A/B test of ``n`` readers (half per arm) over the first ``days`` days (all without):
    treatment better at ``alpha``, fixed horizon. Arms are (clicks, impressions) arrays of readers x days."""
    arms_data = [tuple(v[:, :days].sum(axis=1) for v in arm) for arm in (control, treatment)]

    def test(rng: np.random.Generator, n: int) -> bool:
        half = max(n // 2, 2)
        arms = []
        for clicks, imps in arms_data:
            pick = rng.integers(0, len(clicks), half)
            arms.append((clicks[pick], imps[pick]))
        d = es.ratio_difference(arms[0], arms[1], alpha=alpha)
        return d.p_value < alpha and d.diff * direction > 0

    return test


def interleaving_test(credit_a: np.ndarray, credit_b: np.ndarray, lists: np.ndarray, *, alpha: float,
                      direction: float, days: int | None = None,
                      sign: bool = False) -> Callable[[np.random.Generator, int], bool]:
    """Return a resampled interleaving test of ``n`` readers over the first ``days`` days: B preferred
    (``direction`` > 0) at ``alpha`` by the results' credit test, or by the sign test with ``sign``."""
    a, b, shown = (v[:, :days].sum(axis=1) for v in (credit_a, credit_b, lists))

    def test(rng: np.random.Generator, n: int) -> bool:
        pick = rng.integers(0, len(a), n)
        result = es.interleaving_preference(a[pick], b[pick], shown[pick], alpha=alpha)
        if sign:
            return result.sign_p_value < alpha and result.delta * direction > 0
        return result.p_value < alpha and result.credit_diff * direction > 0

    return test


@dataclass
class Needed:
    """The fewest impressions a design needs at the target power: over how many days, how many readers."""

    days: int
    readers: float
    impressions: float
    #: days -> (readers needed, impressions, the true effect over those days)
    by_days: dict


def _z(alpha: float, power_target: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power_target))


def ab_need(expected: np.ndarray, clicks: np.ndarray, lists: np.ndarray, arms: np.ndarray, *, alpha: float,
            power_target: float) -> Needed:
    """Return the impressions a fixed-horizon A/B test of CTR needs, half the readers per arm.

    All arrays are readers x days; ``arms`` is 0 (control) or 1 (treatment) per reader. For an experiment
    of the first ``d`` days, the effect is the click model's true CTR difference over those days and each
    arm's per-reader variance is its delta-method one from the stored rows (``ab_readers_at``).
    """
    def need(days: int) -> tuple[float, float]:
        cut = [tuple(v[arms == k, :days].sum(axis=1) for v in (expected, clicks, lists)) for k in (0, 1)]
        true = [e.sum() / n.sum() for e, _, n in cut]
        effect = true[1] - true[0]
        n = ab_readers_at(effect, (cut[0][1], cut[0][2]), (cut[1][1], cut[1][2]), alpha=alpha,
                          power_target=power_target)
        return n, effect

    return _needs(need, lists)


def interleaving_need(expected_credit: np.ndarray, credit_a: np.ndarray, credit_b: np.ndarray, lists: np.ndarray, *,
                      alpha: float, power_target: float) -> Needed:
    """Return the impressions the interleaving credit test (``credit_difference``) needs.

    For the first ``d`` days the effect is the click model's expected credit of B minus A per list, a mean
    over readers, and the variance that of the readers' observed means from the stored rows.
    """
    def need(days: int) -> tuple[float, float]:
        shown = lists[:, :days].sum(axis=1)
        seen = shown > 0
        observed = (credit_b[:, :days].sum(axis=1) - credit_a[:, :days].sum(axis=1))[seen] / shown[seen]
        effect = float((expected_credit[:, :days].sum(axis=1)[seen] / shown[seen]).mean())
        n = _z(alpha, power_target) ** 2 * observed.var(ddof=1) / effect**2 if effect else math.inf
        return n, effect

    return _needs(need, lists)


def _needs(need: Callable[[int], tuple[float, float]], lists: np.ndarray) -> Needed:
    by_days = {}
    for days in range(1, lists.shape[1] + 1):
        n, effect = need(days)
        by_days[days] = (n, n * float(lists[:, :days].sum(axis=1).mean()), effect)
    best = min(by_days, key=lambda d: by_days[d][1])
    return Needed(best, by_days[best][0], by_days[best][1], by_days)


def need_ratio_interval(ab: tuple[np.ndarray, ...], il: tuple[np.ndarray, ...], *, alpha: float,
                        power_target: float, draws: int, seed: int) -> tuple[float, float]:
    """Return the 95% bootstrap interval of the ratio of needs (A/B impressions / interleaving impressions).

    ``ab`` holds ``ab_need``'s arrays (expected, clicks, lists, arms) and ``il`` ``interleaving_need``'s
    (expected credit, credit A, credit B, lists); each phase's readers are resampled on their own, and the
    true effects and variances are computed again from each resample.
    """
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(draws):
        pick_ab = rng.integers(0, len(ab[0]), len(ab[0]))
        pick_il = rng.integers(0, len(il[0]), len(il[0]))
        need_ab = ab_need(*(x[pick_ab] for x in ab), alpha=alpha, power_target=power_target)
        need_il = interleaving_need(*(x[pick_il] for x in il), alpha=alpha, power_target=power_target)
        ratio = need_ab.impressions / need_il.impressions if need_il.impressions else math.inf
        ratios.append(ratio if ratio == ratio else math.inf)
    low, high = np.quantile(np.array(ratios), [0.025, 0.975])
    return float(low), float(high)


@dataclass
class Noise:
    """Variance over readers of a design's per-list outcome, and the part of it that is readers differing."""

    #: Variance over readers of their measured value per list (A/B: clicks; interleaving: credit of B minus A).
    total: float
    #: Variance over readers of their click-model expectation per list: what a reader's lists would
    #: average to without click noise, so the between-reader part.
    between: float
    #: Mean expected value per list (A/B: the CTR).
    mean: float

    @property
    def between_share(self) -> float:
        return min(self.between / self.total, 1.0) if self.total > 0 else math.nan


def noise(expected: np.ndarray, observed: np.ndarray, lists: np.ndarray, days: int) -> Noise:
    """Return the variance over readers of ``observed`` and of ``expected`` per list over the first ``days`` days.

    Arrays are readers x days; readers without a list in those days are left out.
    """
    shown = lists[:, :days].sum(axis=1)
    seen = shown > 0
    rate, model = (v[:, :days].sum(axis=1)[seen] / shown[seen] for v in (observed, expected))
    if rate.size < 2:
        return Noise(math.nan, math.nan, math.nan)
    return Noise(float(rate.var(ddof=1)), float(model.var(ddof=1)), float(model.mean()))


def ratio_parts(ab_arms: list[Noise], il: Noise, *, days_ab: int, days_il: int, kept: float,
                goal: float = 10.0) -> dict[str, float]:
    """Return the need ratio's factors: ratio = (kept / 0.5)² x h, and h = w x (1 - b_il) / (1 - b_ab).

    ``kept`` is the interleaving effect over the A/B one. ``h`` is the A/B arm's noise per impression over
    interleaving's (each design's variance over readers per list times its lists per reader); ``b_ab`` and
    ``b_il`` are the between-reader shares of each design's noise; ``w`` is the within-reader (click) noise
    per impression of an A/B arm over interleaving's. Also: the ``h`` that ``goal`` needs at this ``kept``,
    the A/B between-reader share that would give it (``w`` and ``b_il`` as measured), and the coefficient of
    variation over readers of expected clicks per list now and then.
    """
    ab_total, ab_between, ab_mean = (float(np.mean([getattr(n, k) for n in ab_arms]))
                                     for k in ("total", "between", "mean"))
    within_ab, within_il = (ab_total - ab_between) * days_ab, (il.total - il.between) * days_il
    kept_factor = (kept / 0.5) ** 2
    b_ab, b_il = ab_between / ab_total, il.between / il.total
    w = within_ab / within_il
    h_needed = goal / kept_factor
    b_needed = min(max(1 - w * (1 - b_il) / h_needed, 0.0), 1.0)
    between_needed = b_needed / (1 - b_needed) * (ab_total - ab_between) if b_needed < 1 else math.inf
    return {"kept_factor": kept_factor, "h": ab_total * days_ab / (il.total * days_il), "b_ab": b_ab, "b_il": b_il,
            "w": w, "h_needed": h_needed, "b_needed": b_needed, "cv_now": math.sqrt(ab_between) / ab_mean,
            "cv_needed": math.sqrt(between_needed) / ab_mean}


def clicked_only_gain(credit_diff: np.ndarray, clicks: np.ndarray, lists: np.ndarray, days: int) -> float:
    """Return the impressions the credit test saves by leaving out readers without a click (need all / need clicked).

    Which readers click at all does not depend on which arm is which (both arms are in every list), so
    the test may condition on it; the lists of readers who never click were still shown, so the need in
    impressions counts them: the saving is (t of clicked readers / t of all readers)².
    """
    shown = lists[:, :days].sum(axis=1)
    seen = shown > 0
    per_reader = credit_diff[:, :days].sum(axis=1)[seen] / shown[seen]
    clicked = clicks[:, :days].sum(axis=1)[seen] > 0

    def t(x: np.ndarray) -> float:
        return float(x.mean() / x.std(ddof=1) * math.sqrt(x.size)) if x.size >= 2 and x.std() > 0 else math.nan

    return (t(per_reader[clicked]) / t(per_reader)) ** 2


def expected_preference(positions: list[tuple[float, int]]) -> float:
    """Return P(B credited more clicks) - P(A credited more) of one list, from each position's click
    probability and credit sign (+1 B, -1 A, 0 neutral); clicks are independent, as in the click model."""
    distribution = {0: 1.0}
    for probability, sign in positions:
        if not sign or not probability:
            continue
        shifted: dict[int, float] = {}
        for total, mass in distribution.items():
            shifted[total] = shifted.get(total, 0.0) + mass * (1 - probability)
            shifted[total + sign] = shifted.get(total + sign, 0.0) + mass * probability
        distribution = shifted
    return sum(mass * np.sign(total) for total, mass in distribution.items())


def interleaving_aa(units: list[str], lists: list[tuple[int, int, int, tuple[int, ...]]], *, n_salts: int,
                    alpha: float) -> dict[str, int]:
    """Interleave two equally good rankings under ``n_salts`` salts, on the A/A phase's stored lists and clicks.

    A ranking merged with itself is all neutral (no credit, never a false positive), so the two teams
    are two disjoint halves of the list each reader was shown: team draft of two disjoint rankings puts
    one item of each per round in the coin's order, so the merge is the shown list and only the coin
    (seeded by salt and reader, as in serving) decides which half, hence which team, each position is.
    Each salt is one A/A interleaving experiment.
    """
    counts = {"credit": 0, "sign": 0, "per_list": 0, "preference": 0}
    n_readers = len(units)
    for salt in range(n_salts):
        a, b, shown, preference = (np.zeros(n_readers) for _ in range(4))
        list_a, list_b = [], []
        teams_of = {}
        for reader, _day, n_items, clicked in lists:
            key = (reader, n_items)
            if key not in teams_of:
                halves = [("a", i) for i in range(n_items)], [("b", i) for i in range(n_items)]
                teams_of[key] = es.team_draft_interleave(*halves, n_items, seed=f"il-aa-{salt}:{units[reader]}")[1]
            credit = es.interleaving_credit(teams_of[key], [p - 1 for p in clicked])
            a[reader] += credit[0]
            b[reader] += credit[1]
            preference[reader] += np.sign(credit[1] - credit[0])
            shown[reader] += 1
            list_a.append(credit[0])
            list_b.append(credit[1])
        result = es.interleaving_preference(a, b, shown, alpha=alpha)
        counts["credit"] += result.p_value < alpha
        counts["sign"] += result.sign_p_value < alpha
        counts["per_list"] += es.credit_difference(list_a, list_b, np.ones(len(list_a)), alpha=alpha).p_value < alpha
        by_list = es.credit_difference(np.zeros(n_readers), preference, shown, alpha=alpha)
        counts["preference"] += by_list.p_value < alpha
    return counts


def srm_rates(units: list[str], *, n_salts: int, threshold: float) -> dict[str, tuple[int, int]]:
    """Return how often ``srm_check`` flags a 55/45 split declared as 50/50, and a true 50/50 split, over salts."""
    broken = honest = 0
    for salt in range(n_salts):
        counts_broken = np.bincount(assign(units, f"srm-{salt}", (0.55, 0.45)), minlength=2)
        counts_honest = np.bincount(assign(units, f"srm-{salt}"), minlength=2)
        broken += es.srm_check(counts_broken.tolist(), [0.5, 0.5], threshold=threshold).flagged
        honest += es.srm_check(counts_honest.tolist(), [0.5, 0.5], threshold=threshold).flagged
    return {"broken": (broken, n_salts), "honest": (honest, n_salts)}
