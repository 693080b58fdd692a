"""Provides the statistics of online experiments: per-arm ratio metrics, arm differences, an always-valid
sequential test, the sample-ratio-mismatch check and team-draft interleaving. No Django.

Units of randomisation are readers, not impressions: a metric such as CTR is a ratio of per-reader sums
(clicks / impressions), and its variance is computed over readers with the delta method, so readers who
see many lists do not shrink the interval (docs/decisions.md).
"""
from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

#: Default significance level of intervals and tests.
ALPHA = 0.05
#: Sample-ratio mismatch is flagged below this p-value: strict, because the check runs at every look
#: and a false alarm discards a valid experiment (Kohavi et al. use p < 0.0005 to 0.001).
SRM_ALPHA = 0.001
#: Default standard deviation of the normal mixture of the sequential test, relative to the control mean.
MIXTURE_RELATIVE_TAU = 0.1


@dataclass(frozen=True)
class RatioEstimate:
    """One arm's ratio metric (sum of numerators / sum of denominators over readers) with its interval."""

    value: float
    se: float
    ci_low: float
    ci_high: float
    n_units: int
    numerator: float
    denominator: float


@dataclass(frozen=True)
class Difference:
    """Treatment minus control of a metric: the fixed-horizon interval and p-value, and the always-valid ones."""

    control: float
    treatment: float
    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float | None
    sequential_p_value: float
    sequential_ci_low: float
    sequential_ci_high: float
    tau: float


@dataclass(frozen=True)
class SRMResult:
    """Assignment counts against the declared shares: Pearson's chi-square test."""

    counts: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    flagged: bool


@dataclass(frozen=True)
class InterleavingResult:
    """A team-draft interleaving experiment: the credit test that decides, and readers' preferences.

    ``p_value`` is the reader-clustered test of the clicks credited per list (``credit_difference``);
    ``wins_a``, ``wins_b``, ``ties``, ``delta`` and ``sign_p_value`` are the per-reader preferences and
    their sign test, shown beside it (less sensitive: a tie drops the reader).
    """

    wins_a: int
    wins_b: int
    ties: int
    delta: float
    p_value: float
    sign_p_value: float = math.nan
    lists: int = 0
    credit_a: float = math.nan
    credit_b: float = math.nan
    credit_diff: float = math.nan
    se: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass(frozen=True)
class CreditDifference:
    """Clicks credited to B minus those credited to A per list shown, a mean over readers, with its t-test."""

    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int


def _arrays(numerators: ArrayLike, denominators: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(numerators, dtype=np.float64).ravel()
    x = np.asarray(denominators, dtype=np.float64).ravel()
    if y.shape != x.shape:
        raise ValueError(f"numerators and denominators differ in length ({y.size} != {x.size}).")
    return y, x


def _ratio_moments(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Return the ratio sum(y)/sum(x) and its delta-method variance (0 with fewer than two units)."""
    n = y.size
    if n == 0 or x.sum() <= 0:
        return math.nan, math.nan
    ratio = float(y.sum() / x.sum())
    if n < 2:
        return ratio, math.nan
    mean_x = x.mean()
    cov = np.cov(np.vstack([y, x]), ddof=1)
    variance = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (n * mean_x**2)
    return ratio, float(max(variance, 0.0))


def ratio_estimate(numerators: ArrayLike, denominators: ArrayLike, *, alpha: float = ALPHA) -> RatioEstimate:
    """Return the ratio of sums with a delta-method confidence interval over units (readers).

    Parameters
    ----------
    numerators, denominators : array-like of shape (n_units,)
        Per-reader sums, e.g. clicks and impressions. A reader with no impression has denominator 0
        and still counts as a unit.
    alpha : float
        The interval is ``1 - alpha``, two-sided.

    Returns
    -------
    RatioEstimate
        ``value`` is NaN when the denominators sum to 0; ``se`` is NaN with fewer than two units.
    """
    y, x = _arrays(numerators, denominators)
    ratio, variance = _ratio_moments(y, x)
    se = math.sqrt(variance) if variance == variance else math.nan
    z = stats.norm.ppf(1 - alpha / 2)
    return RatioEstimate(value=ratio, se=se, ci_low=ratio - z * se, ci_high=ratio + z * se, n_units=int(y.size),
                         numerator=float(y.sum()), denominator=float(x.sum()))


def mixture_likelihood_ratio(diff: float, variance: float, tau: float) -> float:
    """Return the normal-mixture likelihood ratio of an estimate ``diff ~ N(theta, variance)`` against theta = 0.

    The mixture over theta ~ N(0, tau^2) (Johari et al. 2017, mSPRT) gives
    ``sqrt(V / (V + tau^2)) * exp(tau^2 diff^2 / (2 V (V + tau^2)))``. By Ville's inequality the
    probability that it ever exceeds ``1/alpha`` under the null is at most ``alpha``.
    """
    if not variance > 0 or not tau > 0:
        return 1.0
    total = variance + tau**2
    log_lr = 0.5 * math.log(variance / total) + tau**2 * diff**2 / (2 * variance * total)
    return math.exp(min(log_lr, 700.0))


def always_valid_p_value(diff: float, variance: float, tau: float) -> float:
    """Return ``min(1, 1 / Lambda)`` of one look; the always-valid p-value is its running minimum over looks."""
    return min(1.0, 1.0 / mixture_likelihood_ratio(diff, variance, tau))


def always_valid_interval(diff: float, variance: float, tau: float, *, alpha: float = ALPHA) -> tuple[float, float]:
    """Return the always-valid ``1 - alpha`` interval: every theta whose mixture ratio stays below ``1/alpha``."""
    if not variance > 0 or not tau > 0:
        return -math.inf, math.inf
    total = variance + tau**2
    half = math.sqrt(variance * total / tau**2 * (2 * math.log(1 / alpha) + math.log(total / variance)))
    return diff - half, diff + half


def sequential_p_values(diffs: Sequence[float], variances: Sequence[float], tau: float) -> list[float]:
    """Return the always-valid p-value after each look: the running minimum of ``1 / Lambda``.

    Parameters
    ----------
    diffs, variances : sequences of length n_looks
        The cumulative estimate of the difference and its variance at each look (e.g. each day).
    tau : float
        Standard deviation of the normal mixture over effects, on the scale of ``diffs``.
    """
    out, best = [], 1.0
    for diff, variance in zip(diffs, variances):
        if diff == diff and variance == variance:
            best = min(best, always_valid_p_value(diff, variance, tau))
        out.append(best)
    return out


def default_tau(control_value: float) -> float:
    """Return the mixture's standard deviation: ``MIXTURE_RELATIVE_TAU`` of the control's value (a 10% lift)."""
    scale = abs(control_value) if control_value == control_value and control_value else 1.0
    return MIXTURE_RELATIVE_TAU * scale


def ratio_difference(control: tuple[ArrayLike, ArrayLike], treatment: tuple[ArrayLike, ArrayLike], *,
                     alpha: float = ALPHA, tau: float | None = None) -> Difference:
    """Compare a ratio metric between two arms of readers (each a pair of per-reader numerators, denominators).

    The fixed-horizon interval and p-value are Welch-style normal ones with the delta-method variance of
    each arm; the sequential p-value and interval are always valid (mSPRT, ``mixture_likelihood_ratio``),
    so they may be read at every look. ``tau`` defaults to ``default_tau(control value)``.
    """
    a, b = ratio_estimate(*control, alpha=alpha), ratio_estimate(*treatment, alpha=alpha)
    diff = b.value - a.value
    variance = a.se**2 + b.se**2
    se = math.sqrt(variance) if variance == variance else math.nan
    z = stats.norm.ppf(1 - alpha / 2)
    if se > 0:
        p_value = float(2 * stats.norm.sf(abs(diff) / se))
    else:
        p_value = math.nan
    tau = default_tau(a.value) if tau is None else tau
    seq_p = always_valid_p_value(diff, variance, tau) if se > 0 else math.nan
    seq_low, seq_high = always_valid_interval(diff, variance, tau, alpha=alpha) if se > 0 else (math.nan, math.nan)
    lift = diff / a.value if a.value == a.value and a.value != 0 else None
    return Difference(control=a.value, treatment=b.value, diff=diff, se=se, ci_low=diff - z * se,
                      ci_high=diff + z * se, p_value=p_value, relative_lift=lift, sequential_p_value=seq_p,
                      sequential_ci_low=seq_low, sequential_ci_high=seq_high, tau=tau)


def srm_check(counts: Sequence[int], shares: Sequence[float], *, threshold: float = SRM_ALPHA) -> SRMResult:
    """Test assignment ``counts`` against the declared ``shares`` (chi-square, ``len - 1`` degrees of freedom).

    ``flagged`` is true when the p-value is below ``threshold``: the split is then not what was declared,
    and the experiment's results should not be trusted (Kohavi et al., Trustworthy Online Controlled
    Experiments, ch. 21).
    """
    observed = np.asarray(counts, dtype=np.float64)
    weights = np.asarray(shares, dtype=np.float64)
    if observed.shape != weights.shape or observed.size < 2:
        raise ValueError("counts and shares need the same length, at least 2.")
    total = observed.sum()
    expected = weights / weights.sum() * total
    if total == 0:
        return SRMResult(tuple(int(c) for c in observed), tuple(expected.tolist()), 0.0, 1.0, False)
    chi2, p_value = stats.chisquare(observed, expected)
    return SRMResult(tuple(int(c) for c in observed), tuple(expected.tolist()), float(chi2), float(p_value),
                     bool(p_value < threshold))


def hash_unit(*parts: object) -> float:
    """Return a uniform number in [0, 1) from ``parts`` (e.g. an experiment's salt and a reader id), stable
    across processes and Python versions (SHA-256, not ``hash()``)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def bucket(shares: Sequence[float], *parts: object) -> int:
    """Return the index of the arm whose share interval contains ``hash_unit(*parts)`` (sticky assignment)."""
    u = hash_unit(*parts)
    total = float(sum(shares))
    edge = 0.0
    for index, share in enumerate(shares):
        edge += share / total
        if u < edge:
            return index
    return len(shares) - 1


def team_draft_interleave(list_a: Sequence[Hashable], list_b: Sequence[Hashable], n: int, *,
                          seed: object = 0) -> tuple[list[Hashable], list[int | None]]:
    """Merge two rankings by team draft (Radlinski et al. 2008): return the items and each one's team.

    A team is 0 (A), 1 (B) or None (neutral). In each round both teams propose their best item not yet
    in the list; a coin drawn from ``seed`` orders the two. When both propose the same item it is added
    once, neutral: it says nothing about which ranking is better, and crediting it to the coin's winner
    would only add noise (docs/decisions.md, "Interleaving: neutral items"). Which items each round adds
    does not depend on the coins, so under clicks that depend on position alone both teams expect the
    same credit. A click is credited to the team that added the item; a neutral item credits none.
    """
    rng = random.Random(str(seed))
    merged: list[Hashable] = []
    teams: list[int | None] = []
    taken: set[Hashable] = set()
    lists = (list(list_a), list(list_b))
    cursor = [0, 0]

    def propose(team: int) -> Hashable | None:
        ranking = lists[team]
        while cursor[team] < len(ranking) and ranking[cursor[team]] in taken:
            cursor[team] += 1
        return ranking[cursor[team]] if cursor[team] < len(ranking) else None

    def add(item: Hashable, team: int | None) -> None:
        if len(merged) < n:
            merged.append(item)
            teams.append(team)
            taken.add(item)

    while len(merged) < n:
        proposals = (propose(0), propose(1))
        if proposals == (None, None):
            break  # both lists are exhausted
        if proposals[0] == proposals[1]:
            add(proposals[0], None)
            continue
        first = rng.randrange(2)
        for team in (first, 1 - first):
            if proposals[team] is not None:
                add(proposals[team], team)
    return merged, teams


def interleaving_credit(teams: Sequence[int | None], clicked_positions: Sequence[int]) -> tuple[int, int]:
    """Return the clicks credited to team A and to team B (positions are 0-based indexes into ``teams``).

    A click on a neutral position (team None) credits neither.
    """
    credit = [0, 0]
    for position in clicked_positions:
        if 0 <= position < len(teams) and teams[position] is not None:
            credit[teams[position]] += 1
    return credit[0], credit[1]


def credit_difference(credits_a: ArrayLike, credits_b: ArrayLike, lists: ArrayLike, *,
                      alpha: float = ALPHA) -> CreditDifference:
    """Test the clicks credited to B minus A per list shown, with readers (not lists) as the unit.

    Each list is one trial with a win (B got more of its clicks), a loss or a tie, scored by the credit
    difference. Each reader's mean of it over their lists is one observation, and the test is the
    one-sample t-test of those means: a reader's lists share their taste and, in serving, their coin, so
    they are not independent, and a reader who saw many lists does not outweigh the others. Readers
    without a list are left out.
    """
    a = np.asarray(credits_a, dtype=np.float64).ravel()
    y, x = _arrays(np.asarray(credits_b, dtype=np.float64).ravel() - a, lists)
    per_reader = y[x > 0] / x[x > 0]
    n = per_reader.size
    diff = float(per_reader.mean()) if n else math.nan
    se = float(per_reader.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    if not se > 0:
        # No spread over readers: no evidence unless two or more readers all lean the same way.
        p_value = 0.0 if n >= 2 and diff != 0 else 1.0
        return CreditDifference(diff, se, diff, diff, p_value, n)
    t = stats.t.ppf(1 - alpha / 2, n - 1)
    p_value = float(2 * stats.t.sf(abs(diff) / se, n - 1))
    return CreditDifference(diff, se, diff - t * se, diff + t * se, p_value, n)


def interleaving_preference(credits_a: ArrayLike, credits_b: ArrayLike, lists: ArrayLike | None = None, *,
                            alpha: float = ALPHA) -> InterleavingResult:
    """Return an interleaving experiment's result from each reader's credited clicks and lists shown.

    ``p_value`` comes from ``credit_difference`` (``lists`` default to one per reader). A reader
    prefers A when A's lists got more of their clicks; ``sign_p_value`` is the two-sided sign test of
    the readers with a preference, and ``delta`` is Chapelle et al.'s (2012)
    ``(wins_b - wins_a) / readers``, positive when B wins.
    """
    a = np.asarray(credits_a, dtype=np.float64)
    b = np.asarray(credits_b, dtype=np.float64)
    shown = np.ones_like(a) if lists is None else np.asarray(lists, dtype=np.float64)
    wins_a, wins_b = int((a > b).sum()), int((b > a).sum())
    ties = int(a.size - wins_a - wins_b)
    decided = wins_a + wins_b
    sign_p = float(stats.binomtest(wins_b, decided, 0.5).pvalue) if decided else 1.0
    delta = (wins_b - wins_a) / a.size if a.size else 0.0
    total = float(shown.sum())
    if a.size == 0 or total <= 0:
        return InterleavingResult(wins_a, wins_b, ties, delta, 1.0, sign_p, int(total))
    credit = credit_difference(a, b, shown, alpha=alpha)
    seen = shown > 0
    return InterleavingResult(wins_a=wins_a, wins_b=wins_b, ties=ties, delta=delta, p_value=credit.p_value,
                              sign_p_value=sign_p, lists=int(total), credit_a=float((a[seen] / shown[seen]).mean()),
                              credit_b=float((b[seen] / shown[seen]).mean()), credit_diff=credit.diff, se=credit.se,
                              ci_low=credit.ci_low, ci_high=credit.ci_high)
