"""The app under test is the one this run was meant to test: the source tree, or the installed wheel.

tests/test_hostproject.py runs this project twice: from the repository, and from a copy outside it
with the package installed from its wheel, naming that site directory in ``BRE_RECOMMENDATIONS_FROM``.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.apps import apps
from django.template.loader import get_template
from django.utils import translation

import recommendations

# The directory this project's copy lives in: the repository's root for a run from source.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_package_is_imported_from_where_expected():
    expected = Path(os.environ.get("BRE_RECOMMENDATIONS_FROM") or PROJECT_ROOT).resolve()
    package = Path(recommendations.__file__).resolve().parent
    assert package.is_relative_to(expected), f"{package} is not under {expected}"
    assert Path(apps.get_app_config("recommendations").path).resolve() == package
    # Templates and translations come from the same place, so the wheel's data files are tested too.
    template = Path(get_template("recommendations/item_list.html").origin.name).resolve()
    assert template.is_relative_to(package)
    assert (package / "locale" / "de" / "LC_MESSAGES" / "django.mo").is_file()
    with translation.override("de"):
        assert translation.gettext("Because you read %(title)s") != "Because you read %(title)s"
