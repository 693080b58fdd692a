"""Guard tests of the app's layout: services only re-exports, imports sit at module level, no private name crosses modules."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import recommendations

PACKAGE = Path(recommendations.__file__).parent
# The algorithm layer and the CSV command line have their own owner and rules (no Django at all).
DJANGO_SIDE = sorted(p for p in PACKAGE.rglob("*.py")
                     if not {"algorithms", "migrations", "cli"} & set(p.relative_to(PACKAGE).parts))
FAST_PATHS = ["blobs.py", "bulk.py", "binary.py", "compiled.py", "locks.py", "packed_postgresql.py",
              "packed_sqlite.py", "payload_lookup.py", "sqlite_locked.py"]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def test_services_only_re_exports():
    tree = _tree(PACKAGE / "services.py")
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert defined == []


@pytest.mark.parametrize("path", DJANGO_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_sit_at_module_level(path):
    """Only ``AppConfig.ready()`` imports late: Django requires it to wait for the app registry."""
    late = [node.lineno for function in ast.walk(_tree(path))
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name != "ready"
            for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert late == []


@pytest.mark.parametrize("path", DJANGO_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_imported_from_another_module(path):
    private = [alias.name for node in ast.walk(_tree(path)) if isinstance(node, ast.ImportFrom)
               and (node.level or (node.module or "").startswith("recommendations"))
               for alias in node.names if alias.name.startswith("_") and alias.name != "__all__"]
    assert private == []


@pytest.mark.parametrize("name", FAST_PATHS)
def test_each_fast_path_says_why_and_what_happens_if_it_breaks(name):
    doc = ast.get_docstring(_tree(PACKAGE / "db" / name)) or ""
    assert "Why" in doc and "What happens if it breaks" in doc
