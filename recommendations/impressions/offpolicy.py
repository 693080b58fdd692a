"""Provides offline estimates of an exploration slot's CTR under another configuration, from logged propensities.

With ``EXPLORATION_CANDIDATES`` above 1 each exploration pick is stored with its propensity (the
probability that the logging configuration showed it; ``build.cold.exploration_choose``), and the
impression records it (``Impression.propensities``). A reader's slot is their first exploration pick,
that of their first list: drawn once per reader and build, so the reader is the unit of the draw and of
every interval. Given, per reader, the item a target configuration would put in that slot, the logged
clicks are reweighted by ``1[target's item == logged item] / propensity`` (inverse propensity scoring):

* ``ips``: reweighted clicks over the logged impressions of the slot (Horvitz-Thompson);
* ``snips``: reweighted clicks over reweighted impressions (self-normalised), which also allows for a
  clicked item leaving later lists (serving hides what a reader read).

Both are ratios of per-reader sums; their interval is the delta method's over readers, as the
experiments' CTR. ``slot_ctr`` with no target is the CTR measured online.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..algorithms.experiments_stats import ratio_estimate as experiments_ratio
from .models import Attribution, Impression


@dataclass
class ReaderSlot:
    """One reader's exploration slot over their lists: its item, propensity, lists showing it and clicks on it."""

    item: str
    propensity: float
    surface: str = ""
    impressions: int = 0
    clicks: int = 0


@dataclass(frozen=True)
class Estimate:
    """A CTR with its 95% interval, from ``readers`` readers and ``impressions`` lists (``matched``: reweighted)."""

    ctr: float
    low: float
    high: float
    readers: int
    impressions: int
    matched: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def reader_key(impression: Impression) -> str:
    return f"u:{impression.user_id}" if impression.user_id is not None else f"s:{impression.session_hash}"


def reader_slots(impressions: Iterable[Impression]) -> dict[str, ReaderSlot]:
    """Return each reader's slot (the first logged pick of their first list), counting their lists on the same
    surface that showed it and the clicks on it there."""
    slots: dict[str, ReaderSlot] = {}
    shown: list[tuple[int, int, ReaderSlot]] = []
    for impression in sorted(impressions, key=lambda i: (i.created_at, i.pk)):
        propensities = impression.propensities or []
        logged = [(i, p) for i, p in enumerate(propensities) if p is not None]
        key = reader_key(impression)
        if key not in slots:
            if not logged:
                continue
            first, propensity = logged[0]
            slots[key] = ReaderSlot(impression.items[first], float(propensity), impression.surface)
        slot = slots[key]
        if slot.item in impression.items and impression.surface == slot.surface:
            slot.impressions += 1
            shown.append((impression.pk, impression.items.index(slot.item) + 1, slot))
    clicked = set(Attribution.objects.filter(impression_id__in=[pk for pk, _, _ in shown],
                                             kind=Attribution.Kind.CLICK).values_list("impression_id", "position"))
    for pk, position, slot in shown:
        slot.clicks += (pk, position) in clicked
    return slots


def ratio_estimate(pairs: list[tuple[float, float]], matched: int = 0, impressions: int = 0) -> Estimate:
    """Return sum(y) / sum(x) over readers' ``(y, x)`` with the delta method's 95% interval (readers as the unit),
    as the experiments compute their CTR (``experiments_stats.ratio_estimate``)."""
    if not pairs:
        return Estimate(math.nan, math.nan, math.nan, 0, impressions, matched)
    found = experiments_ratio([y for y, _ in pairs], [x for _, x in pairs], alpha=0.05)
    return Estimate(found.value, found.ci_low, found.ci_high, found.n_units, impressions, matched)


def slot_ctr(slots: Mapping[str, ReaderSlot]) -> Estimate:
    """Return the slot's CTR as measured: its clicks over the lists that showed it."""
    pairs = [(s.clicks, s.impressions) for s in slots.values() if s.impressions]
    return ratio_estimate(pairs, impressions=sum(x for _, x in pairs))


def ips_estimates(slots: Mapping[str, ReaderSlot], target: Mapping[str, str | None]) -> dict[str, Estimate]:
    """Return the ``ips`` and ``snips`` estimates of the slot's CTR had ``target`` (reader -> item, or None) filled it.

    Only readers with a logged slot and a target item count: a reader the target gives no slot has no CTR
    there. A logged propensity of 0 would be a logging error and raises.
    """
    kept = [(s, target[key]) for key, s in slots.items() if s.impressions and target.get(key) is not None]
    if any(s.propensity <= 0 for s, _ in kept):
        raise ValueError("A logged propensity must be positive.")
    weights = [(s, (s.item == item) / s.propensity) for s, item in kept]
    impressions = sum(s.impressions for s, _ in weights)
    matched = sum(s.impressions for s, w in weights if w)
    ips = ratio_estimate([(w * s.clicks, s.impressions) for s, w in weights], matched, impressions)
    snips = ratio_estimate([(w * s.clicks, w * s.impressions) for s, w in weights], matched, impressions)
    return {"ips": ips, "snips": snips}
