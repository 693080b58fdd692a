"""Fixtures of the experiments tests: an experiment over the testapp world, and a clean cache."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from recommendations.experiments.assignment import live_cache_clear
from recommendations.experiments.promote import experiment_create
from recommendations.experiments.validation import ArmSpec


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Live experiments are cached for a few seconds; a rolled-back test must not leak them."""
    cache.clear()
    live_cache_clear()
    yield
    cache.clear()
    live_cache_clear()


def ab_experiment(slug: str = "toppop-test", *, treatment: str = "toppop", shares=(0.5, 0.5), **kwargs):
    """Create a running A/B test: the default configuration (control) against ``treatment``."""
    now = timezone.now()
    return experiment_create(
        name=slug, slug=slug, start=now - timedelta(days=1), stop=now + timedelta(days=13),
        arms=[ArmSpec("control", shares[0], True), ArmSpec("treatment", shares[1], False, treatment)], **kwargs)


@pytest.fixture
def experiment(world):
    return ab_experiment()
