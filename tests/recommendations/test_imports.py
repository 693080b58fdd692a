"""Guard test: the reusable app never imports the site (``articles``) or the project (``bre_site``)."""
from __future__ import annotations

import ast
from pathlib import Path

import recommendations

FORBIDDEN = ("articles", "bre_site")
PACKAGE = Path(recommendations.__file__).parent


def forbidden_imports(source: str, filename: str = "<string>") -> list[str]:
    """Return the forbidden modules that ``source`` imports (import, from-import, import_module/import_string)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "import_string", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names = [node.args[0].value]
        found += [name for name in names if name.split(".")[0] in FORBIDDEN]
    return found


class TestNoSiteImports:
    def test_the_guard_catches_every_form(self):
        source = (
            "import articles\nimport os, bre_site.settings\nfrom articles.models import Book\n"
            "from . import articles_like\nimportlib.import_module('articles.views')\n"
            "import_string('bre_site.celery.app')\nimport articlesque\n"
        )
        assert forbidden_imports(source) == ["articles", "bre_site.settings", "articles.models", "articles.views",
                                             "bre_site.celery.app"]

    def test_recommendations_never_imports_the_site(self):
        files = sorted(PACKAGE.rglob("*.py"))
        assert len(files) > 20
        offenders = {str(path.relative_to(PACKAGE)): bad for path in files
                     if (bad := forbidden_imports(path.read_text(), str(path)))}
        assert offenders == {}

    def test_templates_never_extend_site_templates(self):
        offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.html")
                     if any(f'"{name}/' in p.read_text() or f"'{name}/" in p.read_text() for name in FORBIDDEN)]
        assert offenders == []
