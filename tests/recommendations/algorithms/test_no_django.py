"""Guard: recommendations/algorithms/ must never import Django."""

from __future__ import annotations

import ast
from pathlib import Path

import recommendations.algorithms as algorithms_package

PACKAGE_DIR = Path(algorithms_package.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                modules.append(node.args[0].value)
    return modules


def test_algorithms_never_import_django():
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) >= 10, files
    offenders = {
        str(path.relative_to(PACKAGE_DIR)): module
        for path in files
        for module in _imported_modules(path)
        if module == "django" or module.startswith(("django.", "rest_framework", "celery"))
    }
    assert offenders == {}


def test_guard_detects_a_django_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from django.db import models\nimport importlib\nimportlib.import_module('django.conf')\n")
    assert _imported_modules(bad) == ["django.db", "importlib", "django.conf"]
