"""Provides sticky assignment: which live experiment a list belongs to, and the reader's arm in it.

A reader's arm is ``bucket(arm shares, experiment salt, reader)``: a SHA-256 of the salt and the user
id (or, for an anonymous reader, the session key), so the same reader gets the same arm in every
request and every process, with no stored assignment, and experiments with different salts split
readers independently. The live experiments are kept in process memory for ``LIVE_CACHE_SECONDS``
(no cache round trip per request) and forgotten in the process that changes one; other processes
see a change within those seconds.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from ..algorithms.experiments_stats import bucket
from ..build.pipeline import build_switched
from ..models import BuildRun
from ..payloads import user_payloads_invalidate
from .models import Arm, Experiment

LIVE_CACHE_SECONDS = 10

_live_lock = threading.Lock()
_live: dict[str, object] = {"snapshot": None, "expires": 0.0}


@dataclass(frozen=True)
class ArmInfo:
    """What serving needs of an arm."""

    pk: int
    name: str
    share: float
    is_control: bool
    algorithm: str
    build_id: int | None


@dataclass(frozen=True)
class LiveExperiment:
    """What serving needs of a running experiment: its arms in a fixed order (by id)."""

    pk: int
    slug: str
    kind: str
    surfaces: tuple[str, ...]
    salt: str
    start: datetime
    stop: datetime
    arms: tuple[ArmInfo, ...]

    @property
    def interleaving(self) -> bool:
        return self.kind == Experiment.Kind.INTERLEAVING

    def applies_to(self, surface: str) -> bool:
        return not self.surfaces or surface in self.surfaces


def reader_unit(user=None, session_key: str | None = None) -> str | None:
    """Return the unit of randomisation: ``"u:<user id>"`` for a signed-in reader, ``"s:<session key>"`` else."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"u:{user.pk}"
    return f"s:{session_key}" if session_key else None


def arm_index(experiment: LiveExperiment, unit: str) -> int:
    """Return the position of ``unit``'s arm in ``experiment.arms`` (stable across requests and processes)."""
    return bucket([a.share for a in experiment.arms], experiment.salt, unit)


def live_experiments() -> list[LiveExperiment]:
    """Return the experiments that assign readers now (cached for ``LIVE_CACHE_SECONDS``).

    An experiment whose algorithm arms the active build has not fitted yet is left out until a build has:
    its readers would otherwise get the arm's fallbacks (popular items) instead of its picks.
    """
    with _live_lock:
        snapshot = _live["snapshot"] if _live["expires"] > time.monotonic() else None
    if snapshot is None:
        snapshot = []
        counts = BuildRun.objects.active().values_list("counts", flat=True).first() or {}
        fitted = set((counts.get("arms") or {}).keys())
        for e in Experiment.objects.filter(state=Experiment.State.RUNNING).prefetch_related("arms"):
            arms = tuple(ArmInfo(a.pk, a.name, a.share, a.is_control, a.algorithm, a.build_id)
                         for a in sorted(e.arms.all(), key=lambda a: a.pk))
            ready = all(str(a.pk) in fitted for a in arms if a.algorithm and not a.build_id)
            if len(arms) >= 2 and ready:
                snapshot.append(LiveExperiment(e.pk, e.slug, e.kind, tuple(e.surfaces or ()), e.salt, e.start,
                                               e.stop, arms))
        with _live_lock:
            _live.update(snapshot=snapshot, expires=time.monotonic() + LIVE_CACHE_SECONDS)
    now = timezone.now()
    return [e for e in snapshot if e.start <= now < e.stop]


def experiment_for(surface: str) -> LiveExperiment | None:
    """Return the live experiment of ``surface`` (the oldest, when several name it), or None."""
    matching = [e for e in live_experiments() if e.applies_to(surface)]
    return min(matching, key=lambda e: e.pk) if matching else None


def live_cache_clear(**kwargs) -> None:
    """Forget the cached live experiments (connected to every save and delete of an experiment or arm)."""
    with _live_lock:
        _live.update(snapshot=None, expires=0.0)


build_switched.connect(live_cache_clear, dispatch_uid="experiments-live-build-switched")
def experiment_changed(**kwargs) -> None:
    """Forget the live experiments and bump the generation of served results: cached pages show the new lists."""
    live_cache_clear()
    user_payloads_invalidate()


for _model in (Experiment, Arm):
    post_save.connect(experiment_changed, sender=_model, dispatch_uid=f"experiments-live-{_model.__name__}-save")
    post_delete.connect(experiment_changed, sender=_model, dispatch_uid=f"experiments-live-{_model.__name__}-delete")
