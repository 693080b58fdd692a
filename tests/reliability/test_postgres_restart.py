"""Restart PostgreSQL under a running gunicorn site and Celery worker: both reconnect with no manual step."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection
from django.test import override_settings

from recommendations import services, tasks
from recommendations.models import UserRefresh
from tests.reliability.support import (
    celery_publishing,
    celery_worker,
    fault_recommendations,
    free_port,
    gunicorn_server,
    is_postgres,
    make_library,
    subprocess_env,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _cluster() -> tuple[str, str] | None:
    """Return (version, name) of the local cluster on this test's port, if pg_ctlcluster manages it."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        return None
    port = str(connection.settings_dict.get("PORT") or 5432)
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == port:
            return fields[0], fields[1]
    return None


def _ready(host: str, port: str) -> bool:
    return subprocess.run(["pg_isready", "-h", host, "-p", port, "-q"]).returncode == 0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _refreshed(user_id, since) -> bool:
    state = UserRefresh.objects.filter(user_id=user_id).first()
    return state is not None and state.refreshed_at is not None and state.refreshed_at > since


def test_postgres_restart_site_and_worker_reconnect(processes, fault_queue, record):
    if not is_postgres():
        pytest.skip("Restarting the database server applies to PostgreSQL only (this run uses SQLite).")
    host = connection.settings_dict.get("HOST") or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1", ""):
        pytest.skip(f"The PostgreSQL server at {host} is not local: it cannot be restarted from here.")
    cluster = _cluster()
    if cluster is None:
        pytest.skip("pg_ctlcluster does not manage a local cluster on this port.")
    port = str(connection.settings_dict.get("PORT") or 5432)

    recs = fault_recommendations(chunk_size=50, lock_timeout=60)
    with override_settings(RECOMMENDATIONS=recs), celery_publishing(queue=fault_queue):
        library = make_library(n_users=40, n_books=60, per_user=8, seed=3)
        services.full_build_run(triggered_by="test")
        book = library["books"][0]
        env = subprocess_env(queue=fault_queue, chunk_size=50, lock_timeout=60)
        http_port = free_port()
        server = gunicorn_server("gunicorn-pg", env, port=http_port, workers=1, threads=2)
        processes.append(server)
        worker = celery_worker("worker-pg", env, queue=fault_queue)
        processes.append(worker)
        base = f"http://127.0.0.1:{http_port}"
        urls = [f"{base}/", f"{base}/books/{book.pk}/", f"{base}/api/books/?page=1",
                f"{base}/api/books/{book.pk}/similar/"]

        def all_pages() -> list[int]:
            return [_get(url)[0] for url in urls]

        # Before: every page answers, the server holds persistent connections, the worker runs a task.
        before = all_pages() + all_pages()
        assert before == [200] * len(before), before
        since = UserRefresh.objects.model._meta.get_field("requested_at").default()
        tasks.user_refresh.delay(str(library["users"][0].pk))
        wait_until(lambda: _refreshed(library["users"][0].pk, since), timeout=60, what="a refresh before")

        version, name = cluster
        t0 = time.monotonic()
        try:
            result = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
        finally:
            if not _ready(host, port):
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
                               capture_output=True, timeout=120)
            deadline = time.monotonic() + 60
            while not _ready(host, port) and time.monotonic() < deadline:
                time.sleep(0.2)
        restart_seconds = time.monotonic() - t0
        assert _ready(host, port)
        # This process's own connection died with the server too; the test (not the site) reopens it.
        connection.close()

        # After: the very first requests succeed; no process was restarted or told anything.
        t1 = time.monotonic()
        after = all_pages() + all_pages() + all_pages()
        first_ok = time.monotonic() - t1
        assert after == [200] * len(after), after
        api = json.loads(_get(urls[2])[1])
        assert api["count"] == len(library["books"])

        since = UserRefresh.objects.get(user=library["users"][0]).refreshed_at
        user = library["users"][1]
        tasks.user_refresh.delay(str(user.pk))
        wait_until(lambda: _refreshed(user.pk, since), timeout=60, what="a worker task after the restart")
        worker_after = time.monotonic() - t1
        assert worker.alive and server.alive
        assert "Traceback" not in server.log(), server.log()[-3000:]

    record("PostgreSQL restart", {
        "cluster": f"{version}/{name}", "restart_seconds": round(restart_seconds, 1),
        "requests_before": len(before), "failed_before": sum(s != 200 for s in before),
        "requests_after": len(after), "failed_after": sum(s != 200 for s in after),
        "first_pages_after_seconds": round(first_ok, 2), "worker_task_after_seconds": round(worker_after, 1),
        "processes_restarted": 0,
    })
