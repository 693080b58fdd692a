"""Fixtures shared by the whole suite."""
import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start every test with an empty cache: a rolled-back test fires no signal that would clear it."""
    for cache in caches.all():
        cache.clear()
    yield
    for cache in caches.all():
        cache.clear()
