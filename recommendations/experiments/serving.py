"""Provides the list a reader is served on a surface: their arm's stored picks, or both arms team-draft interleaved.

Nothing is computed on a request beyond what serving the default picks does: an arm's candidates are rows
a build stored (``experiments.picks``), and interleaving merges two such lists. ``ServedList`` says what to
record with the impression: the experiment's slug and the arm's name (for interleaving, ``teams_label``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..algorithms.experiments_stats import team_draft_interleave
from ..selectors import recommended_for
from .assignment import arm_index, experiment_for, reader_unit

#: The impression's ``arm`` of an interleaved list: this prefix and one letter per position (A: first arm).
TEAMS_PREFIX = "teams:"
TEAM_LETTERS = "AB"
#: The letter of a neutral position: an item both arms proposed in the same round, credited to neither.
NEUTRAL_LETTER = "-"
#: The arm under which daily metrics count interleaved lists.
INTERLEAVED_ARM = "interleaved"
#: The impressions' arm column holds 64 characters: positions past this many carry no team (no credit).
MAX_TEAM_POSITIONS = 64 - len(TEAMS_PREFIX)


@dataclass
class ServedList:
    """Items to show, and what the impression records about where they came from."""

    items: list[Any]
    experiment: str = ""
    arm: str = ""
    teams: list[int | None] | None = field(default=None)


def teams_label(teams: list[int | None]) -> str:
    """Return the impression's ``arm`` of an interleaved list: ``"teams:AB-A..."`` (``-`` is neutral)."""
    return TEAMS_PREFIX + "".join(NEUTRAL_LETTER if t is None else TEAM_LETTERS[t] for t in teams[:MAX_TEAM_POSITIONS])


def teams_from_label(label: str) -> list[int | None] | None:
    """Return each position's team (0, 1 or None for neutral) of an interleaved impression's ``arm``.

    Returns None for a plain arm's label.
    """
    if not label.startswith(TEAMS_PREFIX):
        return None
    return [TEAM_LETTERS.index(c) if c in TEAM_LETTERS else None for c in label[len(TEAMS_PREFIX):]
            if c in TEAM_LETTERS or c == NEUTRAL_LETTER]


def picks_served(user, *, surface: str, session_key: str | None = None, n: int = 10, model=None,
                 queryset=None) -> ServedList:
    """Return ``user``'s picks on ``surface``: under the live experiment of the surface, if any, their arm's.

    ``session_key`` identifies an anonymous reader; without one (and without a user) the reader is in
    no experiment and gets the default picks.
    """
    experiment = experiment_for(surface)
    unit = reader_unit(user, session_key)
    if experiment is None or unit is None:
        return ServedList(recommended_for(user, model=model, n=n, queryset=queryset))
    if experiment.interleaving:
        first, second = experiment.arms[:2]
        list_a = recommended_for(user, model=model, n=n, queryset=queryset, arm=first)
        list_b = recommended_for(user, model=model, n=n, queryset=queryset, arm=second)
        items, teams = team_draft_interleave(list_a, list_b, n, seed=f"{experiment.salt}:{unit}")
        for rank, item in enumerate(items, 1):
            item.rec_rank = rank
        return ServedList(items, experiment.slug, teams_label(teams), teams)
    arm = experiment.arms[arm_index(experiment, unit)]
    items = recommended_for(user, model=model, n=n, queryset=queryset, arm=arm)
    return ServedList(items, experiment.slug, arm.name)
