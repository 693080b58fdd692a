"""Packaging: the wheel of pyproject.toml holds the recommendations app with its templates, static files and migrations."""
from __future__ import annotations

import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "recommendations"


def _source_files() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def test_wheel_contains_the_whole_app_and_nothing_else(recommendations_wheel):
    wheel = recommendations_wheel
    names = {n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("/")}
    package_files = {n for n in names if not n.startswith("django_bre_recommendations-")}
    assert package_files == _source_files()
    assert {"recommendations/README.md", "recommendations/migrations/0001_initial.py",
            "recommendations/templates/recommendations/item_list.html",
            "recommendations/templates/admin/recommendations/preview.html",
            "recommendations/templatetags/recommendations.py"} <= package_files
    assert not any(n.startswith(("articles/", "bre_site/", "tests/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Requires-Dist: Django" in metadata and "Provides-Extra: api" in metadata
