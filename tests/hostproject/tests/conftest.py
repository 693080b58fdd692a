"""Load the host's Celery app before any test, as a project's ``__init__.py`` does (Celery's Django guide).

It is imported here rather than in tests/hostproject/__init__.py so that the main test run,
which imports that package while skipping it, never creates a second Celery app.
"""
import pytest

from tests.hostproject.celery import app as celery_app  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Selectors cache the editors' rules for a few seconds; a rolled-back test must not leak them."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
