"""Keep the host project out of the main test run: its tests need its own settings and process.

tests/test_hostproject.py runs them in a subprocess with ``BRE_HOSTPROJECT=1`` and
``DJANGO_SETTINGS_MODULE=tests.hostproject.settings``.
"""
import os

if os.environ.get("BRE_HOSTPROJECT") != "1":
    collect_ignore_glob = ["*"]
