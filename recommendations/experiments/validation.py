"""Provides the rules a valid experiment follows, shared by the admin's forms, ``experiment_create`` and check E025."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..algorithms import ALGORITHMS
from .models import Experiment

#: Arm shares must sum to 1 within this tolerance (editors type decimals such as 0.33).
SHARE_TOLERANCE = 0.011


@dataclass(frozen=True)
class ArmSpec:
    """What an arm declares, before or after it is saved."""

    name: str
    share: float
    is_control: bool = False
    algorithm: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    build_id: int | None = None


def experiment_problems(*, kind: str, start: datetime | None, stop: datetime | None,
                        arms: Sequence[ArmSpec]) -> list[str]:
    """Return what is wrong with an experiment of ``kind`` between ``start`` and ``stop`` with ``arms`` (none: valid)."""
    problems = []
    if start is not None and stop is not None and not start < stop:
        problems.append("The start must come before the stop.")
    if kind == Experiment.Kind.INTERLEAVING and len(arms) != 2:
        problems.append(f"An interleaving experiment has exactly 2 arms, not {len(arms)}.")
    if kind != Experiment.Kind.INTERLEAVING and len(arms) < 2:
        problems.append("An A/B test needs at least 2 arms.")
    if arms and abs(sum(a.share for a in arms) - 1.0) > SHARE_TOLERANCE:
        problems.append(f"The arms' shares sum to {sum(a.share for a in arms):g}, not 1.")
    if any(not 0 <= a.share <= 1 for a in arms):
        problems.append("Every share lies between 0 and 1.")
    if sum(a.is_control for a in arms) > 1:
        problems.append("At most one arm is the control.")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        problems.append("Arm names differ within an experiment.")
    for arm in arms:
        if arm.algorithm and arm.algorithm not in ALGORITHMS:
            problems.append(f"Arm {arm.name!r}: unknown algorithm {arm.algorithm!r} "
                            f"(known: {', '.join(sorted(ALGORITHMS))}).")
        if arm.algorithm and arm.build_id:
            problems.append(f"Arm {arm.name!r}: choose an algorithm or a build, not both.")
        if not isinstance(arm.params, dict):
            problems.append(f"Arm {arm.name!r}: parameters are a JSON object.")
    return problems


def arm_specs(experiment: Experiment) -> list[ArmSpec]:
    """Return the specs of a saved experiment's arms."""
    return [ArmSpec(a.name, a.share, a.is_control, a.algorithm, a.params, a.build_id) for a in experiment.arms.all()]
