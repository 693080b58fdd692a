"""Provides the simulated readers' visits through the real site, and the per-reader outcomes read back from its rows.

Needs Django set up (``benchmarks/online_simulation.py`` does it). Readers use Django's test client
in this process: every request runs the site's middleware, URLs, views, templates and impression
recording, as under gunicorn, without the HTTP hop. A reader is signed in once with
``Client.force_login`` (the imported readers have no usable password) and keeps their session.

What is measured is read back from the app's own rows (``Impression``, ``Attribution``): the
simulator's bookkeeping only says which simulated day each wall-clock interval was, and what the
click model expected of each list it was shown (the true CTR of an arm).
"""
from __future__ import annotations

import bisect
import html
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import numpy as np
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from articles.models import Book
from recommendations.algorithms import experiments_stats as es
from recommendations.experiments.models import Arm, Experiment
from recommendations.experiments.serving import teams_from_label
from recommendations.impressions.models import Attribution, Impression
from recommendations.impressions.recording import impressions_flush

from benchmarks.online_sim_model import ClickModel, Reader

PICKS = re.compile(r'<ul class="grid" data-section="picks"[^>]*>(.*?)</ul>', re.S)
CARD = re.compile(r'data-item="(book|article)-(\d+)".*?<a class="card__link" href="([^"]+)"', re.S)
BEACON = re.compile(r'data-beacon-url="([^"]+)"')
REC_PARAMS = ("rec", "recommendation_id", "rid")
SURFACE = "home"


@dataclass
class Shown:
    """One list a reader was shown, as the simulator saw it."""

    recommendation_id: str
    items: list[str]
    expected_clicks: float
    #: The click model's probability of a click at each position (interleaving's true credit).
    expected_positions: list[float] = field(default_factory=list)


@dataclass
class SimReader:
    """A simulated reader with their signed-in client."""

    reader: Reader
    user_id: int
    client: Client
    shown: list[Shown] = field(default_factory=list)


def readers_sign_in(wants: dict[str, dict[str, int]], names: list[str],
                    activity: dict[str, float] | None = None) -> list[SimReader]:
    """Sign each goodbooks reader in ``names`` in with their own client; ``activity`` defaults to 1 each."""
    users = {u.username: u for u in get_user_model().objects.filter(username__in=[f"gb_{n}" for n in names])}
    out = []
    for name in names:
        client = Client()
        client.force_login(users[f"gb_{name}"])
        reader = Reader(name, dict(wants[name]), activity=(activity or {}).get(name, 1.0))
        out.append(SimReader(reader, users[f"gb_{name}"].pk, client))
    return out


def book_ids() -> dict[str, str]:
    """Return book pk (as text) -> goodbooks id, to tell which shown books a reader wants."""
    return {str(pk): ext for pk, ext in Book.objects.values_list("pk", "external_id")}


def _recommendation_id(href: str, page: str) -> str:
    query = parse_qs(urlsplit(html.unescape(href)).query)
    for name in REC_PARAMS:
        if query.get(name):
            return query[name][0]
    match = re.search(r'data-recommendation-id="([^"]+)"', page)
    return match.group(1) if match else ""


def _visit(sim: SimReader, model: ClickModel, kind: str, pk: str, href: str, key: str, rid: str) -> None:
    """Open a clicked item through its link, report the read, then rate or hide it through the normal endpoints."""
    page = sim.client.get(html.unescape(href))
    if page.status_code != 200:
        raise RuntimeError(f"GET {href} answered {page.status_code}")
    visit = model.visit(key, sim.reader)
    beacon = BEACON.search(page.content.decode())
    if beacon:
        sim.client.post(beacon.group(1), {"dwell_seconds": visit.dwell_seconds, "progress": visit.progress})
    extra = {"recommendation_id": rid} if rid else {}
    if visit.stars is not None:
        response = sim.client.post(f"/items/{kind}/{pk}/rate", {"stars": visit.stars, **extra},
                                   HTTP_ACCEPT="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"rating {kind} {pk} answered {response.status_code}: {response.content[:200]}")
    elif visit.not_interested:
        sim.client.post(f"/items/{kind}/{pk}/not-interested", extra, HTTP_ACCEPT="application/json")


def reader_day(sim: SimReader, model: ClickModel, books: dict[str, str]) -> int:
    """Open the home page, click its picks as the click model says, and visit each click; return the clicks."""
    page = sim.client.get("/").content.decode()
    section = PICKS.search(page)
    if section is None:
        return 0
    cards = CARD.findall(section.group(1))
    keys = [books.get(pk, f"{kind}:{pk}") if kind == "book" else f"{kind}:{pk}" for kind, pk, _ in cards]
    rid = _recommendation_id(cards[0][2], page) if cards else ""
    by_position = model.expected_by_position(keys, sim.reader)
    sim.shown.append(Shown(rid, keys, sum(by_position), by_position))
    ranks = model.clicks(keys, sim.reader)
    for rank in ranks:
        kind, pk, href = cards[rank - 1]
        _visit(sim, model, kind, pk, href, keys[rank - 1], rid)
    return len(ranks)


def days_run(readers: list[SimReader], model: ClickModel, *, days: int, seed: int, say) -> list:
    """Run ``days`` simulated days (each reader visits once a day, in a shuffled order); return day boundaries."""
    books = book_ids()
    rng = random.Random(seed)
    bounds = [timezone.now()]
    for day in range(days):
        started = time.monotonic()
        order = readers[:]
        rng.shuffle(order)
        clicks = sum(reader_day(sim, model, books) for sim in order)
        impressions_flush()
        bounds.append(timezone.now())
        say(f"  day {day + 1}: {len(order)} readers, {clicks} clicks, {time.monotonic() - started:.1f} s")
    return bounds


def experiment_create(slug: str, kind: str, arms: list[tuple[str, str, float]], *, live: bool) -> Experiment:
    """Create a running experiment on the home page with ``arms`` = [(name, algorithm, share)], the first the control.

    An experiment that is not ``live`` starts in a year: the build fits its arms, nobody is assigned yet.
    """
    now = timezone.now()
    start = now if live else now + timezone.timedelta(days=365)
    experiment = Experiment.objects.create(name=slug, slug=slug, kind=kind, surfaces=[SURFACE], start=start,
                                           stop=start + timezone.timedelta(days=30),
                                           state=Experiment.State.RUNNING)
    for i, (name, algorithm, share) in enumerate(arms):
        Arm.objects.create(experiment=experiment, name=name, algorithm=algorithm, share=share, is_control=i == 0)
    return experiment


def experiment_switch(stop: Experiment | None, start: Experiment) -> None:
    """End ``stop`` now and start ``start`` now, as an editor would in the admin."""
    now = timezone.now()
    if stop is not None:
        stop.stop = now
        stop.save(update_fields=["stop"])
    start.start, start.stop = now, now + timezone.timedelta(days=30)
    start.save(update_fields=["start", "stop"])


@dataclass
class Outcomes:
    """Per-reader, per-day sums read from the app's rows: arrays of shape (n_readers, n_days)."""

    user_ids: list[int]
    arms: list[str]
    impressions: np.ndarray
    clicked: np.ndarray
    clicks: np.ndarray
    credit_a: np.ndarray
    credit_b: np.ndarray
    #: One entry per stored list: (reader index, day, items shown, clicked positions 1-based).
    lists: list[tuple[int, int, int, tuple[int, ...]]] = field(default_factory=list)
    #: Interleaving: the sum of each list's preference, +1 (B credited more of its clicks), -1 or 0.
    preference: np.ndarray | None = None


def coin_credit_read(slug: str, bounds: list, outcomes: Outcomes, seed: int) -> np.ndarray:
    """Return each reader's credit of B minus A per day had neutral clicks gone to a coin's team (readers x days).

    What classic team draft does with an item both teams propose in the same round, on the same stored
    lists and clicks: only the neutral clicks change, each to +1 or -1 by a seeded coin.
    """
    index = {u: i for i, u in enumerate(outcomes.user_ids)}
    labels = dict(Impression.objects.filter(experiment=slug, surface=SURFACE).values_list("pk", "arm"))
    out = outcomes.credit_b - outcomes.credit_a
    clicks = (Attribution.objects.filter(impression__experiment=slug, impression__surface=SURFACE, kind="click")
              .values_list("impression_id", "impression__user_id", "impression__created_at", "position"))
    for impression_id, user, created, position in clicks:
        teams = teams_from_label(labels.get(impression_id, "")) or []
        if user in index and 0 < position <= len(teams) and teams[position - 1] is None:
            day = min(max(bisect.bisect_right(bounds, created) - 1, 0), out.shape[1] - 1)
            out[index[user], day] += random.Random(f"{seed}:{impression_id}:{position}").choice((-1, 1))
    return out


def outcomes_read(slug: str, bounds: list) -> Outcomes:
    """Return each reader's impressions, clicked impressions, clicks and interleaving credits per day of ``slug``."""
    rows = list(Impression.objects.filter(experiment=slug, surface=SURFACE)
                .values_list("pk", "user_id", "arm", "created_at", "items"))
    clicks = defaultdict(list)
    for impression_id, position in (Attribution.objects.filter(impression__experiment=slug, kind="click")
                                    .values_list("impression_id", "position")):
        clicks[impression_id].append(position)
    users = sorted({u for _, u, _, _, _ in rows if u is not None})
    index = {u: i for i, u in enumerate(users)}
    shape = (len(users), len(bounds) - 1)
    out = Outcomes(users, [""] * len(users), *(np.zeros(shape) for _ in range(5)), preference=np.zeros(shape))
    for pk, user, arm, created, items in rows:
        i = index[user]
        day = min(max(bisect.bisect_right(bounds, created) - 1, 0), shape[1] - 1)
        out.lists.append((i, day, len(items), tuple(clicks[pk])))
        teams = teams_from_label(arm)
        out.arms[i] = "interleaved" if teams is not None else arm
        out.impressions[i, day] += 1
        out.clicked[i, day] += bool(clicks[pk])
        out.clicks[i, day] += len(clicks[pk])
        if teams is not None:
            a, b = es.interleaving_credit(teams, [p - 1 for p in clicks[pk]])
            out.credit_a[i, day] += a
            out.credit_b[i, day] += b
            out.preference[i, day] += np.sign(b - a)
    return out
