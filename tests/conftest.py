"""Fixtures shared by the whole suite."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches

from recommendations.impressions import recording

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start every test with an empty cache: a rolled-back test fires no signal that would clear it."""
    for cache in caches.all():
        cache.clear()
    yield
    for cache in caches.all():
        cache.clear()


@pytest.fixture(autouse=True)
def _impression_buffer(monkeypatch):
    """No background writer in tests (it would write beside the test's transaction); each test starts empty."""
    monkeypatch.setattr(recording, "BACKGROUND_FLUSH", False)
    recording.impressions_discard()
    yield
    recording.impressions_discard()


@pytest.fixture(scope="session")
def recommendations_wheel(tmp_path_factory) -> Path:
    """The wheel of pyproject.toml, built once per run from a clean copy of the package.

    A clean copy, so that stale build/ folders or the site's other apps can never leak in.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "recommendations", src / "recommendations",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("django_bre_recommendations-*.whl")
    return wheel
