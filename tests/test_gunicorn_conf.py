"""Tests of gunicorn.conf.py: gunicorn finds it, and a worker freezes what it loaded."""
from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_worker_loads_the_urls_and_freezes_what_it_loaded():
    from django.urls import clear_url_caches, get_resolver

    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    clear_url_caches()
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0 and not get_resolver()._populated
        namespace["post_worker_init"](object())
        assert get_resolver()._populated  # the reverse tables, which the first requests would build
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def test_gunicorn_reads_it_from_the_project_root():
    gunicorn = Path(sys.executable).with_name("gunicorn")
    out = subprocess.run([str(gunicorn), "--print-config", "bre_site.wsgi:application"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    settings = {name.strip(): value.strip() for name, _, value in (line.partition("=") for line in out.splitlines())}
    assert settings["config"] == "./gunicorn.conf.py"
    assert settings["post_worker_init"] == "<post_worker_init()>"  # ours, not gunicorn's default


def _config(**env) -> dict[str, str]:
    """Return gunicorn's settings as ``gunicorn --print-config`` shows them, under ``env``."""
    import os

    gunicorn = Path(sys.executable).with_name("gunicorn")
    base = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CMD_ARGS")}
    out = subprocess.run([str(gunicorn), "--print-config", "bre_site.wsgi:application"], cwd=ROOT,
                         capture_output=True, text=True, check=True, env={**base, **env}).stdout
    return {name.strip(): value.strip() for name, _, value in (line.partition("=") for line in out.splitlines())}


def test_sync_workers_follow_gunicorns_advice_unless_the_environment_says():
    import os

    default = _config()
    assert default["workers"] == str(2 * os.cpu_count() + 1)
    # One thread: gunicorn's sync worker, which takes each request from the listening socket's one queue.
    assert default["worker_class"] == "sync" and default["threads"] == "1"
    assert _config(WEB_CONCURRENCY="3")["workers"] == "3"
    threaded = _config(GUNICORN_THREADS="4")
    assert threaded["worker_class"] == "gthread" and threaded["threads"] == "4"
