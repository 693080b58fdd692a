"""Runs the drop-in proof (tests/hostproject) in its own pytest process, with its own settings.

The host project is a second Django project (a shop with a UUID-keyed custom user model) that
uses the recommendations app without any BRE code; it cannot share this process's settings.
"""
from __future__ import annotations

import os
import re
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


def test_main_run_does_not_collect_the_host_tests():
    # tests/hostproject/conftest.py ignores everything below it unless BRE_HOSTPROJECT=1.
    import importlib

    import tests.hostproject.conftest as conftest

    assert os.environ.get("BRE_HOSTPROJECT") != "1"
    assert importlib.reload(conftest).collect_ignore_glob == ["*"]
