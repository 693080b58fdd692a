"""Provides the online simulation's preparation, phases and analysis on the site; needs Django set up."""
from __future__ import annotations

import math
import os
import sqlite3
import time
from dataclasses import dataclass

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from articles.demo import demo_data_load
from articles.models import Article, Read
from benchmarks import online_sim_stats as st
from benchmarks.online_sim_drive import (
    Outcomes,
    SimReader,
    coin_credit_read,
    days_run,
    experiment_create,
    experiment_switch,
    outcomes_read,
    readers_sign_in,
)
from benchmarks.online_sim_site import data_dir_write
from recommendations.conf import app_settings
from recommendations.experiments.models import Experiment
from recommendations.experiments.results import experiment_results
from recommendations.experiments.serving import teams_from_label
from recommendations.impressions.models import Impression

# Phase -> (experiment slug, kind, arms as (name, algorithm, share), the first being the control or team A).
EXPERIMENTS = {
    "aa": ("sim-aa", Experiment.Kind.AB, [("a1", "", 0.5), ("a2", "", 0.5)]),
    "ab": ("sim-ab", Experiment.Kind.AB, [("toppop", "toppop", 0.5), ("auto", "", 0.5)]),
    "il": ("sim-il", Experiment.Kind.INTERLEAVING, [("toppop", "toppop", 0.5), ("auto", "", 0.5)]),
    # A closer pair: auto against plain item-kNN, where the difference is smaller.
    "ab-knn": ("sim-ab-knn", Experiment.Kind.AB, [("itemknn", "itemknn", 0.5), ("auto", "", 0.5)]),
    "il-knn": ("sim-il-knn", Experiment.Kind.INTERLEAVING, [("itemknn", "itemknn", 0.5), ("auto", "", 0.5)]),
    # The closest pair: auto against RP3beta, one of its own blend's members.
    "ab-rp3": ("sim-ab-rp3", Experiment.Kind.AB, [("rp3beta", "rp3beta", 0.5), ("auto", "", 0.5)]),
    "il-rp3": ("sim-il-rp3", Experiment.Kind.INTERLEAVING, [("rp3beta", "rp3beta", 0.5), ("auto", "", 0.5)]),
}
# (A/B phase, interleaving phase, control arm) of each compared pair; "auto" is the treatment (team B).
PAIRS = [("ab", "il", "toppop"), ("ab-knn", "il-knn", "itemknn"), ("ab-rp3", "il-rp3", "rp3beta")]
POWER = 0.8
#: A click's credit of B minus A by the position's team (None: neutral).
SIGNS = {0: -1, 1: 1, None: 0}


def site_prepare(split, work, say) -> None:
    """Migrate, load the sample with the demo loader, define the experiments (not live yet) and build."""
    call_command("migrate", verbosity=0)
    demo_reader = min({u for u, _, _ in split.train} - set(split.wants), key=int)
    data_dir = data_dir_write(work / "data", split.train, demo_reader)
    counts = demo_data_load(data_dir=data_dir, admin_username=None)
    say(f"Loaded {counts['readers']:,} readers, {counts['ratings']:,} ratings, {counts['books']:,} books")
    # The simulated readers want books only: the shipped IBM articles (other readers') leave the catalogue.
    deleted = Article.objects.all().delete()[1]
    say(f"Removed the shipped articles: {deleted.get(Article._meta.label, 0):,} articles, "
        f"{deleted.get(Read._meta.label, 0):,} of their reads")
    for slug, kind, arms in EXPERIMENTS.values():
        experiment_create(slug, kind, arms, live=False)
    call_command("recommendations", "build", "--sync")


def site_ready(split, work, snapshot, say, *, reuse: bool) -> None:
    """Bring the site's database up: the copied prepared one migrated (``reuse``), else prepared and kept at ``snapshot``."""
    if reuse:
        site_migrate()
    else:
        site_prepare(split, work, say)
        database_copy(snapshot)


def site_migrate() -> None:
    """Apply migrations newer than the prepared database's (a new branch merged since it was made)."""
    call_command("migrate", verbosity=0)


def database_copy(dest) -> None:
    """Copy the site's SQLite database to ``dest`` with SQLite's backup API (consistent under WAL)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    connection.ensure_connection()
    partial = dest.with_suffix(".partial")
    target = sqlite3.connect(partial)
    connection.connection.backup(target)
    target.close()
    os.replace(partial, dest)


@dataclass
class Phase:
    """What the analysis needs of a phase: the rows read back, the click model's expectations, its day bounds."""

    key: str
    outcomes: Outcomes
    #: Each reader's expected clicks per day under the click model (readers x days, by outcome row).
    expected_days: np.ndarray
    bounds: list
    lists: dict
    #: Interleaving: each reader's expected clicks credited to B minus A per day, by the stored teams.
    expected_credit: np.ndarray | None = None
    #: Interleaving: each reader's expected per-list preference (P(B credited more) - P(A credited more)) per day.
    expected_preference: np.ndarray | None = None

    @property
    def expected(self) -> np.ndarray:
        return self.expected_days.sum(axis=1)

    def arm(self, name: str) -> np.ndarray:
        return np.array([a == name for a in self.outcomes.arms])


def phases_run(split, groups: list[list[str]], args, model, say, activity: dict[str, float]) -> dict[str, Phase]:
    """Run the A/A, A/B and interleaving phases in turn, each with its readers (``groups[i]``), and read their rows back.

    ``activity`` holds each reader's activity (``online_sim_model.activities``); a reader not in it has 1.
    """
    experiments = {key: Experiment.objects.get(slug=slug) for key, (slug, _, _) in EXPERIMENTS.items()}
    phases, previous = {}, None
    for i, key in enumerate(EXPERIMENTS):
        readers = readers_sign_in(split.wants, groups[i], activity)
        experiment_switch(previous, experiments[key])
        previous = experiments[key]
        say(f"Phase {key}: {len(readers)} readers, {args.days} days")
        bounds = days_run(readers, model, days=args.days, seed=args.seed + i, say=say)
        outcomes = outcomes_read(EXPERIMENTS[key][0], bounds)
        clicks, credit, preference = expectations(readers, outcomes, args.days)
        phases[key] = Phase(key, outcomes, clicks, bounds, lists_check(readers), expected_credit=credit,
                            expected_preference=preference)
    return phases


def expectations(readers: list[SimReader], outcomes: Outcomes, days: int) -> tuple[np.ndarray, ...]:
    """Return each reader's expected clicks per day and, for interleaved lists, the expected credit of B minus A
    and the expected preference per day.

    A reader visits once a day, so their n-th list shown is day n's. The teams are the stored impression's
    (a neutral position credits neither team).
    """
    row = {u: i for i, u in enumerate(outcomes.user_ids)}
    labels = dict(Impression.objects.filter(recommendation_id__in=[x.recommendation_id for r in readers
                                                                   for x in r.shown if x.recommendation_id])
                  .values_list("recommendation_id", "arm"))
    labels = {str(k): v for k, v in labels.items()}
    clicks, credit, preference = (np.zeros((len(row), days)) for _ in range(3))
    for reader in readers:
        if reader.user_id not in row:
            continue
        for day, shown in enumerate(reader.shown[:days]):
            clicks[row[reader.user_id], day] = shown.expected_clicks
            teams = teams_from_label(labels.get(shown.recommendation_id, "")) or []
            credit[row[reader.user_id], day] = sum(e * SIGNS[t] for e, t in zip(shown.expected_positions, teams))
            preference[row[reader.user_id], day] = st.expected_preference(
                [(e, SIGNS[t]) for e, t in zip(shown.expected_positions, teams)])
    return clicks, credit, preference


def lists_check(readers: list[SimReader]) -> dict[str, int]:
    """Compare the lists the readers were shown with the impressions stored: same id, same items."""
    shown = [x for r in readers for x in r.shown]
    stored = {str(rid): items for rid, items in Impression.objects.filter(
        recommendation_id__in=[x.recommendation_id for x in shown if x.recommendation_id])
        .values_list("recommendation_id", "items")}
    return {"shown": len(shown), "stored": sum(x.recommendation_id in stored for x in shown),
            "same_length": sum(len(stored.get(x.recommendation_id, [])) == len(x.items) for x in shown)}


def aa_figures(phase: Phase, args) -> dict:
    """The A/A phase as run (its own split), and its readers re-split ``args.salts`` times."""
    o = phase.outcomes
    data = st.columns(o.impressions, o.clicks)
    alpha, tau = app_settings.EXPERIMENT_ALPHA, app_settings.EXPERIMENT_MIXTURE_TAU
    as_run = st.looks(data, np.array([0 if a == "a1" else 1 for a in o.arms]), alpha=alpha, relative_tau=tau)
    units = [f"u:{u}" for u in o.user_ids]
    resplit = st.aa_experiments(units, data, n_salts=args.salts, alpha=alpha, relative_tau=tau, other_taus=(0.5, 2.0))
    interleaved = st.interleaving_aa(units, o.lists, n_salts=args.salts, alpha=alpha)
    return {"as_run": as_run[-1], "as_run_sequential": min(s for _, s, _ in as_run), "resplit": resplit,
            "ctr": o.clicks.sum() / o.impressions.sum(), "interleaving_aa": interleaved}


def _expected_by_arm(phase: Phase, control_name: str) -> tuple[tuple, tuple]:
    """Return ((expected clicks), (impressions)) per reader of the control and of auto."""
    masks = (phase.arm(control_name), phase.arm("auto"))
    impressions = phase.outcomes.impressions.sum(axis=1)
    return tuple(phase.expected[m] for m in masks), tuple(impressions[m] for m in masks)


def ab_figures(phase: Phase, args, control_name: str) -> dict:
    """An A/B phase: the measured CTR difference (auto - control) and the click model's true one."""
    o = phase.outcomes
    control, treatment = phase.arm(control_name), phase.arm("auto")
    arms = np.where(control, 0, np.where(treatment, 1, -1))
    data = st.columns(o.impressions, o.clicks)
    daily = st.looks(data, arms, alpha=app_settings.EXPERIMENT_ALPHA, relative_tau=app_settings.EXPERIMENT_MIXTURE_TAU)
    p_fixed, p_sequential, diff = daily[-1]
    true = st.true_ctr_lift(*_expected_by_arm(phase, control_name), draws=max(args.draws, 200), seed=args.seed)
    official = experiment_results(Experiment.objects.get(slug=EXPERIMENTS[phase.key][0]))
    treated = next(a for a in official.arms if a.name == "auto").metrics["ctr"]
    return {"control": control_name, "diff": diff, "p": p_fixed, "p_sequential": p_sequential, "true": true, "srm": official.srm,
            "official": (treated.difference, treated.sequential_p_value),
            "readers": (int(control.sum()), int(treatment.sum())),
            "impressions": (int(o.impressions[control].sum()), int(o.impressions[treatment].sum()))}


def power_figures(ab: Phase, il: Phase, args, control_name: str, direction: float) -> dict:
    """Impressions each design needs to find the better arm at alpha .05 with 80% power.

    Each design's need is a normal approximation at the click model's true effect with the variance over
    readers measured from the stored rows, for experiments of the first 1 to all days; the fewest
    impressions is its need. The phase's own readers, resampled to that size, check the power reached.
    """
    alpha = app_settings.EXPERIMENT_ALPHA
    o, i = ab.outcomes, il.outcomes
    arms = np.where(ab.arm(control_name), 0, np.where(ab.arm("auto"), 1, -1))
    need_ab = st.ab_need(ab.expected_days, o.clicks, o.impressions, arms, alpha=alpha, power_target=POWER)
    need_il = st.interleaving_need(il.expected_credit, i.credit_a, i.credit_b, i.impressions, alpha=alpha,
                                   power_target=POWER)
    masks = {name: ab.arm(name) for name in (control_name, "auto")}
    ab_check = st.ab_test(*((o.clicks[m], o.impressions[m]) for m in masks.values()), alpha=alpha,
                          direction=direction, days=need_ab.days)
    il_check = st.interleaving_test(i.credit_a, i.credit_b, i.impressions, alpha=alpha, direction=direction,
                                    days=need_il.days)
    sign_check = st.interleaving_test(i.credit_a, i.credit_b, i.impressions, alpha=alpha, direction=direction,
                                      days=need_il.days, sign=True)
    resampled = {}
    for key, test, need in (("ab", ab_check, need_ab), ("il", il_check, need_il), ("sign", sign_check, need_il)):
        n = int(math.ceil(need.readers)) if math.isfinite(need.readers) else 0
        resampled[key] = st.power(test, max(n, 2), draws=args.draws, seed=args.seed) if n else math.nan
    ratio_ci = st.need_ratio_interval((ab.expected_days, o.clicks, o.impressions, arms),
                                      (il.expected_credit, i.credit_a, i.credit_b, i.impressions),
                                      alpha=alpha, power_target=POWER, draws=args.draws, seed=args.seed)
    # Chapelle et al.'s per-list preference (+1, -1 or 0 per list), readers' means tested the same way.
    by_list = (il.expected_preference, np.zeros_like(i.preference), i.preference, i.impressions)
    need_pref = st.interleaving_need(*by_list, alpha=alpha, power_target=POWER)
    pref_ci = st.need_ratio_interval((ab.expected_days, o.clicks, o.impressions, arms), by_list, alpha=alpha,
                                     power_target=POWER, draws=args.draws, seed=args.seed)
    # The same lists and clicks had neutral clicks been credited by the coin, as classic team draft does.
    coin_diff = coin_credit_read(EXPERIMENTS[il.key][0], il.bounds, i, args.seed)
    coin = (il.expected_credit, np.zeros_like(i.credit_a), coin_diff, i.impressions)
    need_coin = st.interleaving_need(*coin, alpha=alpha, power_target=POWER)
    preference = experiment_results(Experiment.objects.get(slug=EXPERIMENTS[il.key][0])).interleaving
    return {"control": control_name, "ab": need_ab, "il": need_il, "resampled": resampled, "ratio_ci": ratio_ci,
            "il_result": preference, "il_readers": len(i.user_ids), "pref": need_pref, "pref_ci": pref_ci,
            "coin": need_coin, "parts": ratio_factors(ab, il, list(masks.values()), need_ab, need_il),
            "il_ctr": i.clicks.sum() / max(i.impressions.sum(), 1), "spread": reader_spread(ab, il)}


def ratio_factors(ab: Phase, il: Phase, masks: list[np.ndarray], need_ab: st.Needed, need_il: st.Needed) -> dict:
    """Return the need ratio's factors (``online_sim_stats.ratio_parts``): where each design's noise per list
    comes from, at its cheapest length, the share of the A/B effect interleaving keeps, and what leaving
    readers without a click out of the credit test would save (``online_sim_stats.clicked_only_gain``)."""
    o, i = ab.outcomes, il.outcomes
    noise_ab = [st.noise(ab.expected_days[m], o.clicks[m], o.impressions[m], need_ab.days) for m in masks]
    noise_il = st.noise(il.expected_credit, i.credit_b - i.credit_a, i.impressions, need_il.days)
    kept = need_il.by_days[need_il.days][2] / need_ab.by_days[need_ab.days][2]
    clicked_only = st.clicked_only_gain(i.credit_b - i.credit_a, i.clicks, i.impressions, need_il.days)
    parts = st.ratio_parts(noise_ab, noise_il, days_ab=need_ab.days, days_il=need_il.days, kept=kept)
    return {"kept": kept, "clicked_only": clicked_only, **parts}


def reader_spread(ab: Phase, il: Phase) -> dict[str, float]:
    """Return how much readers differ: the coefficient of variation of readers' clicks per list (A/B phase)
    and of readers' expected clicks per list (both phases), and the share of clicks on neutral positions."""
    o = ab.outcomes
    seen = o.impressions.sum(axis=1) > 0
    ctr = o.clicks.sum(axis=1)[seen] / o.impressions.sum(axis=1)[seen]
    expected = ab.expected[seen] / o.impressions.sum(axis=1)[seen]
    credited = il.outcomes.credit_a.sum() + il.outcomes.credit_b.sum()
    return {"ctr_cv": float(ctr.std() / ctr.mean()), "expected_cv": float(expected.std() / expected.mean()),
            "neutral_share": float(1 - credited / max(il.outcomes.clicks.sum(), 1))}


def analyse(phases: dict[str, Phase], args, say) -> dict:
    """Return every figure of the report, computed from the app's rows."""
    say("Analysing the stored impressions and attributions")
    figures = {"days": args.days, "lists": {k: sum(p.lists[k] for p in phases.values()) for k in ("shown", "stored", "same_length")}}
    started = time.monotonic()
    figures["aa"] = aa_figures(phases["aa"], args)
    figures["ab"], figures["power"] = [], []
    for ab, il, control in PAIRS:
        if ab in phases and il in phases:
            figures["ab"].append(ab_figures(phases[ab], args, control))
            direction = 1.0 if figures["ab"][-1]["true"][0] > 0 else -1.0
            figures["power"].append(power_figures(phases[ab], phases[il], args, control, direction))
    say(f"  A/A, A/B, power: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    simulated = [f"u:{u}" for p in phases.values() for u in p.outcomes.user_ids]
    site = [f"u:{pk}" for pk in get_user_model().objects.values_list("pk", flat=True)]
    figures["srm"] = {"simulated": (len(simulated), st.srm_rates(simulated, n_salts=args.salts,
                                                                 threshold=app_settings.EXPERIMENT_SRM_ALPHA)),
                      # Fewer splits of the whole site's readers: each costs a hash per reader.
                      "site": (len(site), st.srm_rates(site, n_salts=max(args.salts // 4, 20),
                                                       threshold=app_settings.EXPERIMENT_SRM_ALPHA))}
    say(f"  srm: {time.monotonic() - started:.1f} s")
    figures["phases"] = {k: {"readers": len(p.outcomes.user_ids), "impressions": int(p.outcomes.impressions.sum()),
                             "clicks": int(p.outcomes.clicks.sum()),
                             "seconds": (p.bounds[-1] - p.bounds[0]).total_seconds()} for k, p in phases.items()}
    return figures
