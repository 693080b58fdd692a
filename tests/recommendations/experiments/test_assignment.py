"""Tests of sticky assignment: same reader, same arm, in every request and process; shares respected."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser

from recommendations.algorithms.experiments_stats import srm_check
from recommendations.experiments.assignment import arm_index, experiment_for, live_experiments, reader_unit

from .conftest import ab_experiment


def _live(slug):
    return next(e for e in live_experiments() if e.slug == slug)


@pytest.mark.django_db
class AssignmentTests:
    def test_same_reader_gets_the_same_arm_on_every_request(self, world):
        ab_experiment(treatment="")
        live = _live("toppop-test")
        for user in world["users"].values():
            arms = {arm_index(live, reader_unit(user)) for _ in range(5)}
            assert len(arms) == 1

    def test_same_arm_in_another_process(self, world):
        experiment = ab_experiment(treatment="")
        live = _live(experiment.slug)
        units = [f"u:{pk}" for pk in range(200)]
        here = [arm_index(live, unit) for unit in units]
        # Another interpreter, with another hash seed: the arm must not depend on Python's hash().
        code = ("import sys; from recommendations.algorithms.experiments_stats import bucket; "
                f"print(''.join(str(bucket([0.5, 0.5], {experiment.salt!r}, f'u:{{pk}}')) for pk in range(200)))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.strip()
        assert out == "".join(map(str, here))

    def test_shares_are_respected_within_tolerance(self, world):
        experiment = ab_experiment(treatment="", shares=(0.3, 0.7))
        live = _live(experiment.slug)
        counts = np.bincount([arm_index(live, f"u:{pk}") for pk in range(5000)], minlength=2)
        assert counts[0] / 5000 == pytest.approx(0.3, abs=0.02)
        assert not srm_check(counts, [0.3, 0.7]).flagged

    def test_a_new_salt_reshuffles_readers(self, world):
        first = _live(ab_experiment("a", treatment="").slug)
        second = _live(ab_experiment("b", treatment="").slug)
        same = sum(arm_index(first, f"u:{pk}") == arm_index(second, f"u:{pk}") for pk in range(2000))
        assert 850 < same < 1150  # independent halves agree about half the time

    def test_anonymous_readers_are_assigned_by_session(self):
        assert reader_unit(AnonymousUser(), "abc") == "s:abc"
        assert reader_unit(AnonymousUser(), None) is None

    def test_surfaces_limit_the_experiment(self, world):
        ab_experiment(treatment="", surfaces=["home"])
        assert experiment_for("home") is not None
        assert experiment_for("api:recommendations") is None

    def test_an_algorithm_arm_waits_for_a_build(self, world):
        ab_experiment()  # the toppop arm has no stored lists until a build fits it
        assert experiment_for("home") is None
