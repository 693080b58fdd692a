"""Runs the drop-in proof (tests/hostproject) in its own pytest process, with its own settings.

The host project is a second Django project (a shop with a UUID-keyed custom user model) that
uses the recommendations app without any BRE code; it cannot share this process's settings.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_host_project_passes_its_own_tests():
    env = {**os.environ, "BRE_HOSTPROJECT": "1", "DJANGO_SETTINGS_MODULE": "tests.hostproject.settings"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/hostproject/tests", "-c", "tests/hostproject/pytest.ini",
         "--rootdir", "tests/hostproject", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout[-8000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary and int(summary.group(1)) >= 15 and " failed" not in result.stdout, output


def test_host_project_passes_its_own_tests_against_the_installed_wheel(recommendations_wheel, tmp_path):
    # The package comes only from the wheel: the project is copied out of the repository, and
    # neither the repository nor its recommendations/ folder is on the path (dependencies come
    # from this venv's site-packages).
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site),
         str(recommendations_wheel)],
        capture_output=True, text=True, timeout=240,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    project = tmp_path / "project"
    shutil.copytree(ROOT / "tests" / "hostproject", project / "tests" / "hostproject",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (project / "tests" / "__init__.py").write_text("")
    # The host's tests read list responses through the same small helper as BRE's own tests.
    shutil.copy(ROOT / "tests" / "api_lists.py", project / "tests" / "api_lists.py")
    env = {**os.environ, "BRE_HOSTPROJECT": "1", "DJANGO_SETTINGS_MODULE": "tests.hostproject.settings",
           "PYTHONPATH": os.pathsep.join([str(site), str(project)]), "BRE_RECOMMENDATIONS_FROM": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/hostproject/tests", "-c", "tests/hostproject/pytest.ini",
         "--rootdir", "tests/hostproject", "-p", "no:cacheprovider", "-v"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout[-8000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    assert "test_installed.py::test_package_is_imported_from_where_expected PASSED" in result.stdout, output
    for module in ("test_deletes.py", "test_broker_down.py", "test_languages.py", "test_worker.py"):
        assert f"tests/{module}::" in result.stdout, f"{module} did not run: {output}"
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary and int(summary.group(1)) >= 15 and " failed" not in result.stdout, output


def test_main_run_does_not_collect_the_host_tests():
    # tests/hostproject/conftest.py ignores everything below it unless BRE_HOSTPROJECT=1.
    import importlib

    import tests.hostproject.conftest as conftest

    assert os.environ.get("BRE_HOSTPROJECT") != "1"
    assert importlib.reload(conftest).collect_ignore_glob == ["*"]
