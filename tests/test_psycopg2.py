"""The host project on PostgreSQL through psycopg2, the driver Django uses when psycopg 3 is not installed.

The app's fast paths (COPY, binary reads) need psycopg 3; with psycopg2 every build, refresh and
page must still work. The host's tests run in their own process, with psycopg 3 made unimportable.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"

# Django imports psycopg 3 when it can; a None in sys.modules makes that import fail as if it were absent.
RUN = """
import sys
sys.modules["psycopg"] = None
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""


def test_host_project_builds_and_serves_on_psycopg2():
    psycopg2 = pytest.importorskip("psycopg2")
    url = os.environ.get("DATABASE_URL", "")
    url = url if url.startswith(("postgres://", "postgresql://")) else POSTGRES
    try:
        psycopg2.connect(url, connect_timeout=2).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 (the suite needs it): {exc}")
    env = {**os.environ, "BRE_HOSTPROJECT": "1", "DJANGO_SETTINGS_MODULE": "tests.hostproject.settings",
           "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-c", RUN, "tests/hostproject/tests/test_host.py", "tests/hostproject/tests/test_deletes.py",
         "-c", "tests/hostproject/pytest.ini", "--rootdir", "tests/hostproject", "-p", "no:cacheprovider", "-q",
         "-W", "error::RuntimeWarning"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout[-8000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    summary = re.search(r"(\d+) passed", result.stdout)
    assert summary and int(summary.group(1)) >= 20 and " failed" not in result.stdout, output
