"""Provides the pure parts of the online simulation: goodbooks-10k readers, their held-out wants, the click model.

No Django here: ``benchmarks/online_simulation.py`` drives the site with these readers, and
``tests/test_online_sim_model.py`` checks this module on its own.

Readers and what they want
--------------------------
goodbooks-10k v1 (``ratings_v1.csv.gz``) has no timestamps and its rows are sorted by book id,
which is the books' popularity rank, so the file order says nothing about *when* a reader rated a
book: holding out the last rows would hold out each reader's least popular books. The split is
therefore a seeded random one per reader: a fraction of each simulated reader's positive ratings
(4-5 stars) is held out as what they "want", the rest is loaded into the site as their history.

Click model
-----------
A reader shown a list examines position ``r`` (1-based) with probability ``1 / log2(r + 1)`` (times
the reader's activity, capped at 1, when readers differ: ``activities``) and clicks an examined item
with probability ``p_want`` if it is one of their held-out positives they have not consumed yet, else
``p_other``. So the expected clicks of one list are
``sum_r exam(r) * rel(item_r)``, which is what :meth:`ClickModel.expected_clicks` returns.

With ``cascade=True`` (``--clicks cascade``, a sensitivity check beside the issue's model) a reader
who clicks a book they want is satisfied and leaves the list: positions below are not examined.
Clicks on other books do not stop them (the dependent click model of Guo et al., 2009, with this
examination). A position's click probability is then ``exam(r) * rel(item_r)`` times the
probability that no wanted book above it was clicked.
"""
from __future__ import annotations

import csv
import gzip
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

POSITIVE_STARS = 4


def examination(rank: int, activity: float = 1.0) -> float:
    """Return the probability that a reader of ``activity`` looks at 1-based position ``rank`` (position bias).

    ``activity`` scales the typical reader's ``1 / log2(rank + 1)``, capped at certainty.
    """
    if rank < 1:
        raise ValueError(f"rank is 1-based, not {rank}")
    return min(1.0, activity / math.log2(rank + 1))


def activities(ratings: Iterable[tuple[str, str, int]], readers: Iterable[str]) -> dict[str, float]:
    """Return each reader's activity: their number of ratings over the median of ``readers``' numbers.

    The data's own spread in how much readers do (goodbooks readers of the catalogue rate 20 to ~190
    books) becomes a spread in how much of a list they examine; the median reader keeps activity 1.
    """
    counts: dict[str, int] = defaultdict(int)
    for user, _, _ in ratings:
        counts[user] += 1
    chosen = list(readers)
    ordered = sorted(counts[u] for u in chosen)
    if not ordered:
        return {}
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {u: counts[u] / median for u in chosen}


def ratings_read(path: Path | str, books: set[str] | None = None) -> list[tuple[str, str, int]]:
    """Return ``(user, book, stars)`` rows of a goodbooks ratings file, first of each (user, book) pair only.

    ``books`` keeps only those book ids. goodbooks v1 repeats some (user, book) pairs; the first wins.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    rows, seen = [], set()
    with opener(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            user, book = row["user_id"], row["book_id"]
            if (books is not None and book not in books) or (user, book) in seen:
                continue
            seen.add((user, book))
            rows.append((user, book, int(row["rating"])))
    return rows


@dataclass
class Split:
    """Ratings to load into the site, and what each simulated reader wants (book -> stars)."""

    train: list[tuple[str, str, int]]
    wants: dict[str, dict[str, int]]

    @property
    def readers(self) -> list[str]:
        return sorted(self.wants, key=int)


def heldout_split(ratings: Iterable[tuple[str, str, int]], *, n_readers: int, fraction: float = 0.3,
                  min_history: int = 20, min_positives: int = 10, seed: int = 0) -> Split:
    """Hold out ``fraction`` of the positive ratings of ``n_readers`` sampled readers.

    Only readers with at least ``min_history`` ratings are kept (the others are dropped from
    ``train`` too, as the shipped demo data does); of those, readers with at least
    ``min_positives`` positive ratings may be simulated. Each held-out set has at least one book,
    and the reader keeps at least one positive in ``train``. Deterministic for a given ``seed``.
    """
    by_user: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for user, book, stars in ratings:
        by_user[user].append((book, stars))
    kept = {u: rows for u, rows in by_user.items() if len(rows) >= min_history}
    eligible = sorted((u for u, rows in kept.items()
                       if sum(s >= POSITIVE_STARS for _, s in rows) >= min_positives), key=int)
    rng = random.Random(seed)
    chosen = rng.sample(eligible, min(n_readers, len(eligible)))
    wants: dict[str, dict[str, int]] = {}
    for user in chosen:
        positives = sorted(b for b, s in kept[user] if s >= POSITIVE_STARS)
        n_out = min(len(positives) - 1, max(1, round(fraction * len(positives))))
        out = set(random.Random(f"{seed}:{user}").sample(positives, n_out))
        wants[user] = {b: s for b, s in kept[user] if b in out}
    train = [(u, b, s) for u, rows in kept.items() for b, s in rows if b not in wants.get(u, {})]
    return Split(train=train, wants=wants)


@dataclass
class Reader:
    """One simulated reader: what they still want, and what they have consumed through the site."""

    name: str
    wants: dict[str, int]
    consumed: set[str] = field(default_factory=set)
    #: How much of a list this reader examines, relative to the typical reader (``activities``).
    activity: float = 1.0

    def relevant(self, book: str) -> bool:
        return book in self.wants and book not in self.consumed


@dataclass(frozen=True)
class Visit:
    """What a reader does after clicking an item: how far they read, their stars, and a "not interested" mark."""

    progress: float
    dwell_seconds: float
    stars: int | None
    not_interested: bool


class ClickModel:
    """Position-biased clicks on lists: examination ``1/log2(rank+1)`` times relevance.

    Parameters
    ----------
    p_want : float
        Click probability of an examined item the reader wants (a held-out positive not consumed yet).
    p_other : float
        Click probability of any other examined item.
    p_not_interested : float
        Probability that a reader who clicked an item they do not want marks it "not interested".
    seed : int
        Seed of the model's own random numbers.
    cascade : bool
        A click on a wanted item ends the reader's scan of the list (see the module's docstring).
    """

    def __init__(self, *, p_want: float = 0.5, p_other: float = 0.02, p_not_interested: float = 0.3,
                 seed: int = 0, cascade: bool = False) -> None:
        for name, value in (("p_want", p_want), ("p_other", p_other), ("p_not_interested", p_not_interested)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, not {value}")
        self.p_want = p_want
        self.p_other = p_other
        self.p_not_interested = p_not_interested
        self.rng = random.Random(seed)
        self.cascade = cascade

    def click_probability(self, rank: int, relevant: bool, activity: float = 1.0) -> float:
        """Return the probability of a click at 1-based ``rank`` on an item that is ``relevant`` or not."""
        return examination(rank, activity) * (self.p_want if relevant else self.p_other)

    def expected_clicks(self, items: Sequence[str], reader: Reader) -> float:
        """Return the expected number of clicks of ``reader`` on ``items`` (best first)."""
        return sum(self.expected_by_position(items, reader))

    def expected_by_position(self, items: Sequence[str], reader: Reader) -> list[float]:
        """Return the click probability of ``reader`` at each position of ``items`` (best first)."""
        expected, still_scanning = [], 1.0
        for rank, item in enumerate(items, 1):
            relevant = reader.relevant(item)
            p = self.click_probability(rank, relevant, reader.activity)
            expected.append(still_scanning * p)
            if self.cascade and relevant:
                still_scanning *= 1.0 - p
        return expected

    def clicks(self, items: Sequence[str], reader: Reader) -> list[int]:
        """Draw the 1-based ranks ``reader`` clicks on ``items``: independently, or until a wanted one (cascade)."""
        ranks = []
        for rank, item in enumerate(items, 1):
            relevant = reader.relevant(item)
            if self.rng.random() < self.click_probability(rank, relevant, reader.activity):
                ranks.append(rank)
                if self.cascade and relevant:
                    break
        return ranks

    def visit(self, item: str, reader: Reader) -> Visit:
        """Return what ``reader`` does on the page of ``item`` they clicked, and mark a wanted item consumed."""
        if reader.relevant(item):
            reader.consumed.add(item)
            progress = 0.7 + 0.3 * self.rng.random()
            return Visit(round(progress, 3), round(120 + 600 * progress, 1), reader.wants[item], False)
        progress = 0.1 * self.rng.random()
        return Visit(round(progress, 3), round(5 + 20 * self.rng.random(), 1), None,
                     self.rng.random() < self.p_not_interested)
