"""The app's README (the wheel's long description) points only at what a wheel user can reach."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "recommendations" / "README.md"
# Files of the repository that the wheel does not ship.
REPOSITORY_ONLY = re.compile(r"`(tests/[^`]*|docs/[^`]*|benchmarks/[^`]*|BENCHMARKS\.md|RELIABILITY\.md)`|\bBENCHMARKS\.md\b")


def _paragraphs() -> list[str]:
    return [p for p in re.split(r"\n\s*\n", README.read_text()) if p.strip()]


def test_links_are_anchors_or_absolute():
    targets = re.findall(r"\]\(([^)]+)\)", README.read_text())
    assert targets and all(t.startswith(("#", "http://", "https://")) for t in targets), targets


def test_repository_only_files_are_named_as_such():
    loose = [p for p in _paragraphs() if REPOSITORY_ONLY.search(p) and "project repository" not in " ".join(p.split())]
    assert loose == [], loose


def test_redis_needs_celery_extra():
    assert 'pip install "celery[redis]"' in README.read_text()
