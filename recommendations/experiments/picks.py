"""Provides each experiment arm's stored lists: a full build fits every arm's algorithm on its own data and stores
every reader's top picks under the arm (``ArmPicks``), so serving an arm reads rows as the default picks do.

Only arms with an algorithm of their own are fitted; a control arm without one serves the build's default
picks, and an arm naming a kept build serves that build's picks.
"""
from __future__ import annotations

import json
import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from ..algorithms import get_estimator
from ..build.config import fit_settings
from ..build.load import LoadedData
from ..build.rows import score_rows, user_pk
from ..build.state import BuildState
from ..conf import app_settings
from .models import Arm, ArmPicks, Experiment

logger = logging.getLogger(__name__)

#: Readers scored at once per arm: bounds the dense (readers x items) score block.
SCORE_BLOCK = 1000


def fitted_arms() -> list[Arm]:
    """Return the arms a build fits now: algorithm arms of experiments that are running or about to."""
    return list(
        Arm.objects.filter(experiment__state=Experiment.State.RUNNING, experiment__stop__gt=timezone.now(),
                           build__isnull=True)
        .exclude(algorithm="").order_by("pk")
    )


def arm_picks_rows(build_id: int, arm: Arm, data: LoadedData) -> list[ArmPicks]:
    """Fit ``arm``'s algorithm on the build's data and return every reader's ``ArmPicks``, best first."""
    name, params = fit_settings(arm.algorithm, arm.params or {})
    model = get_estimator(name, **params).fit(data.user_items)
    user_keys = list(data.user_map)
    state = BuildState(model, data.item_map, user_keys, data.item_words, data.user_items, data.negatives)
    rows = []
    n = app_settings.N_RECOMMENDATIONS
    for start in range(0, len(user_keys), SCORE_BLOCK):
        stop = min(start + SCORE_BLOCK, len(user_keys))
        indices, scores, _cold = score_rows(state, data.user_items[start:stop], data.negatives[start:stop], n,
                                     users=np.arange(start, stop))
        valid = (indices >= 0) & np.isfinite(scores) & (scores > 0)
        for i in range(stop - start):
            picks = [[*data.item_map.key(t), round(float(s), 6)]
                     for t, s in zip(indices[i][valid[i]].tolist(), scores[i][valid[i]].tolist())]
            if picks:
                rows.append(ArmPicks(build_id=build_id, arm_id=arm.pk, user_id=user_pk(user_keys[start + i]),
                                     items=json.dumps(picks)))
    return rows


def arm_picks_build(build_id: int, data: LoadedData) -> dict[str, int]:
    """Store the lists of every fitted arm under build ``build_id``; return the readers stored per arm id.

    Safe to run twice: the build's earlier rows are replaced. An arm whose algorithm fails is logged and
    skipped (its readers then get the arm's fallbacks), so an experiment never fails the build.
    """
    counts: dict[str, int] = {}
    for arm in fitted_arms():
        try:
            rows = arm_picks_rows(build_id, arm, data)
        except Exception:  # an editor's parameters: the default picks must still be built
            logger.exception("Build #%s: arm %s could not be fitted.", build_id, arm)
            continue
        with transaction.atomic():
            ArmPicks.objects.filter(build_id=build_id, arm_id=arm.pk).delete()
            ArmPicks.objects.bulk_create(rows, batch_size=1000)
        counts[str(arm.pk)] = len(rows)
    return counts
