"""Provides the phases and the report of ``benchmarks/online_sim_ips.py``; needs Django set up."""
from __future__ import annotations

import json
import math
import time

from django.test import override_settings

from benchmarks.online_sim_drive import book_ids, days_run, readers_sign_in
from benchmarks.online_sim_model import examination
from recommendations.adapters import get_adapter
from recommendations.algorithms.matrices import IndexMap
from recommendations.build.load import events_matrix
from recommendations.build.rows import pick_rows
from recommendations.build.state import build_state
from recommendations.impressions.models import Impression
from recommendations.impressions.offpolicy import Estimate, ips_estimates, reader_slots, slot_ctr
from recommendations.models import BuildRun, UserRecommendation
from recommendations.refresh import user_refresh

PHASES = ("log", "readers", "content")


def explored_picks(recs) -> list[str]:
    """Return the exploration picks (``"ct:id"``) of one reader's pick rows (``PICK_COLUMNS``), slot 0 first."""
    ranked = sorted(recs, key=lambda r: r[0])
    return [key for _, key, text in ranked
            if any(e.get("explore") for e in (json.loads(text) if isinstance(text, str) else text))]


def stored_explored(user_ids: list[int]) -> dict[str, list[str]]:
    """Return each reader's stored exploration picks of the active build, slot 0 first."""
    rows = UserRecommendation.objects.filter(user_id__in=user_ids, build=BuildRun.objects.active().first())
    by_user: dict[str, list] = {}
    for user_id, rank, ct, oid, text in rows.values_list("user_id", "rank", "content_type_id", "object_id",
                                                         "explanation"):
        by_user.setdefault(f"u:{user_id}", []).append((rank, f"{ct}:{oid}", text))
    return {key: explored_picks(recs) for key, recs in by_user.items()}


def replayed_explored(user_ids: list[int]) -> dict[str, list[str]]:
    """Return the exploration picks the current settings would store for each reader now (computed, not stored)."""
    build = BuildRun.objects.active().first()
    state = build_state(build.pk)
    out = {}
    for pk in user_ids:
        positive, negative, _, _ = events_matrix(get_adapter().interaction_columns(user_ids=[pk]), IndexMap([pk]),
                                                 state.item_map, state.item_words, grow_users=False, now=time.time())
        recs = pick_rows(build_id=build.pk, state=state, user_pks=[pk], rows=positive, negatives=negative, titles={},
                         source="refresh") if positive.nnz else []
        out[f"u:{pk}"] = explored_picks([(r[4], f"{r[2]}:{r[3]}", r[6]) for r in recs])
    return out


def first_slot_only(slots: dict, stored: dict[str, list[str]]) -> dict:
    """Keep the readers whose measured slot is their stored slot 0 (serving's diversity caps may move or hide it)."""
    return {k: s for k, s in slots.items() if stored.get(k) and s.item == stored[k][0]}


def truth(slots: dict, sims: dict, items: dict[str, str], books: dict[str, str], model) -> float:
    """Return the click model's expected CTR of each reader's ``items[reader]`` at their slot's first position.

    The expectation leaves out that a clicked item leaves later lists, so it is a guide, not the estimand.
    """
    total = count = 0.0
    for key, slot in slots.items():
        sim, item = sims[key], items.get(key)
        if item is None or not sim.shown:
            continue
        position = next((i for i, x in enumerate(sim.shown[0].items, 1)
                         if x == books.get(slot.item.split(":")[1])), None)
        if position is None:
            continue
        relevant = sim.reader.relevant(books.get(item.split(":")[1], ""))
        total += slot.impressions * examination(position, sim.reader.activity) * (
            model.p_want if relevant else model.p_other)
        count += slot.impressions
    return total / count if count else math.nan


def phases_run(split, groups, args, model, activity, settings: dict[str, dict], say) -> dict:
    """Run the log phase and the target phases; return every figure of the report from the stored rows."""
    figures: dict = {"phases": {}, "targets": {}}
    books = book_ids()
    for i, phase in enumerate(PHASES):
        sims = readers_sign_in(split.wants, groups[i], activity)
        ids = [s.user_id for s in sims]
        with override_settings(RECOMMENDATIONS=settings[phase]):
            started = time.monotonic()
            for pk in ids:
                user_refresh(user_id=pk)
            stored = stored_explored(ids)
            say(f"Phase {phase}: {len(ids)} readers' picks refreshed in {time.monotonic() - started:.0f} s; "
                f"{sum(bool(v) for v in stored.values())} with an exploration slot")
        replays = {}
        if phase == "log":  # the offline replay of each target, on the logged readers' state before their days
            for target in PHASES[1:]:
                with override_settings(RECOMMENDATIONS=settings[target]):
                    replays[target] = replayed_explored(ids)
        with override_settings(RECOMMENDATIONS=settings[phase]):
            bounds = days_run(sims, model, days=args.days, seed=args.seed + i, say=say)
        impressions = Impression.objects.filter(user_id__in=ids, created_at__gte=bounds[0], created_at__lte=bounds[-1])
        slots = reader_slots(impressions)
        kept = first_slot_only(slots, stored)
        by_key = {f"u:{s.user_id}": s for s in sims}
        figures["phases"][phase] = {"readers": len(ids), "impressions": impressions.count(), "slot_readers": len(slots),
                                    "first_slot_readers": len(kept), "online": slot_ctr(kept),
                                    "seconds": (bounds[-1] - bounds[0]).total_seconds()}
        if phase == "log":
            for target, replay in replays.items():
                chosen = {k: v[0] if v else None for k, v in replay.items()}
                agree = sum(bool(stored.get(k)) and v[:1] == stored[k][:1] for k, v in replay.items())
                figures["targets"][target] = {
                    **ips_estimates(kept, chosen), "truth_log": truth(kept, by_key, chosen, books, model),
                    "same_candidates": sum(bool(v) for v in replay.values()), "as_logged": agree}
        else:
            figures["targets"][phase]["truth_online"] = truth(
                kept, by_key, {k: s.item for k, s in kept.items()}, books, model)
            figures["targets"][phase]["online"] = figures["phases"][phase]["online"]
    return figures


def _ci(e: Estimate) -> str:
    return f"{e.ctr:.4f} [{e.low:.4f}, {e.high:.4f}]"


def _difference(a: Estimate, b: Estimate) -> str:
    """Return a - b with the normal 95% interval of two independent samples (the halves of their intervals)."""
    half = math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2)
    return f"{a.ctr - b.ctr:+.4f} [{a.ctr - b.ctr - half:+.4f}, {a.ctr - b.ctr + half:+.4f}]"


def report(figures: dict, args) -> str:
    """Return the results page (markdown)."""
    lb, la = figures["load_before"], figures["load_after"]
    lines = [
        "# Online simulation: offline estimates of an exploration slot (inverse propensity scoring)", "",
        f"Command: `{figures['command']}`. Machine: {figures['machine']} (2 cores shared with other jobs: load "
        f"average {lb[0]:.1f} before, {la[0]:.1f} after). Date: {figures['date']}. It took "
        f"{figures['seconds'] / 60:.1f} minutes.", "",
        "The readers, click model and prepared site are `benchmarks/online_simulation.py`'s (see "
        "`online_simulation.md`). New items: read by at most "
        f"{args.new_max_readers} readers at the build (`NEW_ITEM_MAX_READERS`). Each phase refreshes its own "
        f"{args.readers} readers' picks under its settings, then runs {args.days} days. Slot 0 (place 6) takes one "
        f"of the {args.candidates} best content matches among the new items (`EXPLORATION_CANDIDATES`):",
        "",
        f"* **log**: drawn uniformly with probability {args.epsilon:g} (`EXPLORATION_EPSILON`), else the best match; "
        "the propensity is stored with the pick and on each impression;",
        "* **readers**: the candidate most read at the build (`EXPLORATION_CHOICE = \"readers\"`), served to fresh "
        "readers;",
        "* **content**: the best content match (today's choice), served to fresh readers.", "",
        "A reader's slot is the first logged pick of their first list, kept when it is their stored slot 0 "
        "(the diversity caps may move it). The slot's CTR is its clicks over the lists that showed it; every "
        "interval is the delta method's over readers (95%). The estimates read the log phase's `Impression` and "
        "`Attribution` rows (`recommendations/impressions/offpolicy.py`), each target's slot item for the "
        "logged readers is its `pick_rows` on the same state (not stored), and the online CTR is the target "
        "phase's rows.", "",
        "| phase | readers | lists (every surface) | readers with a logged slot | of them at slot 0 | slot CTR online | days' seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in figures["phases"].items():
        lines.append(f"| {name} | {p['readers']} | {p['impressions']:,} | {p['slot_readers']} | "
                     f"{p['first_slot_readers']} | {_ci(p['online'])} | {p['seconds']:.0f} |")
    lines += ["", "| target | logged lists its item matches | IPS estimate | SNIPS estimate | online CTR "
              "(own phase) | SNIPS inside the online interval | IPS inside | SNIPS - online | click model: log "
              "readers / online readers |", "|---|---|---|---|---|---|---|---|---|"]
    for name, t in figures["targets"].items():
        snips, ips, online = t["snips"], t["ips"], t.get("online")
        inside = (lambda e: "yes" if online and online.contains(e.ctr) else "no")
        lines.append(f"| {name} | {t['snips'].matched:,} lists of {t['snips'].impressions:,} | {_ci(ips)} | "
                     f"{_ci(snips)} | {_ci(online) if online else 'n/a'} | {inside(snips)} | {inside(ips)} | "
                     f"{_difference(snips, online) if online else 'n/a'} | "
                     f"{t['truth_log']:.4f} / {t.get('truth_online', math.nan):.4f} |")
    lines += ["", "The click model's figures are its expected click probability of the target's item at the "
              "slot's position (a guide: they leave out that a clicked item leaves later lists).", ""]
    return "\n".join(lines)
