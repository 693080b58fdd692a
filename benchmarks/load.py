"""Provides the load benchmark: 64 connections on pages and the API for 60 s while full builds run on a real worker.

Run from the project root (127.0.0.1 only; needs Debian's ``wrk``: ``apt-get install -y wrk``)::

    .venv/bin/python benchmarks/load.py --database sqlite
    .venv/bin/python benchmarks/load.py --database postgres     # PostgreSQL 127.0.0.1:5432 + Redis 127.0.0.1:6379

It sets up its own database (``var/loadbench-sqlite/db.sqlite3`` or the PostgreSQL database
``bre_load``, ``--postgres-url``) with the shipped demo data, serves the site with gunicorn (workers from
``gunicorn.conf.py``, or ``--gunicorn-workers``; ``GUNICORN_CMD_ARGS`` is honoured and recorded), starts one
Celery worker, keeps a full build running through that worker for the whole window (a new one is
queued as soon as one finishes), and drives the site with ``wrk``. It prints requests, errors,
p50 and p99, the cores each part used (the site, the build, their PostgreSQL backends, Redis, wrk
and everything else on the machine: ``benchmarks/cpu_accounting.py``), and appends the figures as
JSON to ``var/reliability/load.jsonl``. On PostgreSQL the site caches its pages in Redis
(``--cache-url``); on SQLite in each process's memory. ``--no-build`` runs the same load with no
build: the site's ceiling on this machine, to compare with (the goals are judged with a build).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cpu_accounting

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "var" / "reliability" / "load.jsonl"
# Issue 20's goals per stack: (requests/s at least, p99 ms at most); 0 errors on both.
GOALS = {"postgres": (300.0, 300.0), "sqlite": (0.0, 1000.0)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(database: str, *, postgres_url: str, redis_url: str, cache_url: str) -> dict[str, str]:
    var_dir = ROOT / "var" / f"loadbench-{database}"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="bre_site.settings", BRE_VAR_DIR=str(var_dir), DEBUG="0",
               LOG_LEVEL="WARNING", BRE_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               # The benchmark measures serving, not the write throttle.
               BRE_WRITE_THROTTLE="100000/minute", BRE_BEACON_THROTTLE="100000/minute")
    if database == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    else:
        env["DATABASE_URL"] = postgres_url
        # The broker's Redis database also keeps the results (the settings' default for Redis).
        env["CELERY_BROKER_URL"] = redis_url
    env.pop("CACHE_URL", None)
    if cache_url:
        env["CACHE_URL"] = cache_url
    return env


def _gunicorn_config(cli_args: list[str], env: dict[str, str]) -> dict:
    """Return the workers, worker class, threads and keep-alive gunicorn will run with, as gunicorn resolves them.

    From ``gunicorn.conf.py``, ``GUNICORN_CMD_ARGS`` and ``cli_args``: ``--worker-class sync`` with
    ``threads`` above 1 runs the threaded worker, which the settings alone do not show.
    """
    snippet = ("import json, sys; from gunicorn.app.wsgiapp import WSGIApplication; "
               f"sys.argv = ['gunicorn', *{cli_args!r}]; cfg = WSGIApplication('%(prog)s').cfg; "
               "print(json.dumps([cfg.workers, cfg.worker_class_str, cfg.threads, cfg.keepalive]))")
    out = subprocess.run([str(BIN / "python"), "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    workers, worker_class, threads, keepalive = json.loads(out.strip().splitlines()[-1])
    return {"gunicorn_workers": workers, "gunicorn_worker_class": worker_class, "gunicorn_threads": threads,
            "gunicorn_keepalive_s": keepalive}


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


SETUP = r"""
import json
from django.contrib.auth import get_user_model
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token
from articles.models import Article, Book
user = get_user_model().objects.get(username="demo")
token, _ = Token.objects.get_or_create(user=user)
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(json.dumps({
    "token": token.key, "session": session.session_key,
    "books": list(Book.objects.order_by("pk").values_list("pk", flat=True)[:200:20]),
    "articles": list(Article.objects.order_by("pk").values_list("slug", flat=True)[:200:20]),
}))
"""


def _lua(paths: list[tuple[str, dict[str, str]]]) -> str:
    entries = []
    for path, headers in paths:
        header_lua = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
        entries.append(f'  {{path = "{path}", headers = {{{header_lua}}}}}')
    return (
        "local paths = {\n" + ",\n".join(entries) + "\n}\n"
        "local counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        "  local p = paths[(counter % #paths) + 1]\n"
        "  return wrk.format(\"GET\", p.path, p.headers)\n"
        "end\n" + LISTS_LUA
    )


# Collects the recommendation_id of every list in every response (page links and API bodies) and writes them
# to the file named by the first script argument when wrk is done: the served lists to find in the database.
UUID_LUA = "(%x+%-%x+%-%x+%-%x+%-%x+)"
LISTS_LUA = (
    "local threads = {}\n"
    "function setup(thread) table.insert(threads, thread) end\n"
    "function init(args) rids = {} end\n"
    "function response(status, headers, body)\n"
    "  if body == nil then return end\n"
    f"  for rid in string.gmatch(body, 'rid={UUID_LUA}') do rids[rid] = true end\n"
    f"  for rid in string.gmatch(body, '\"recommendation_id\":\"{UUID_LUA}\"') do rids[rid] = true end\n"
    "end\n"
    "function done(summary, latency, requests)\n"
    "  local out = io.open(LISTS_FILE, 'w')\n"
    "  for _, t in ipairs(threads) do\n"
    "    for rid, _ in pairs(t:get('rids')) do out:write(rid, '\\n') end\n"
    "  end\n"
    "  out:close()\n"
    "end\n"
)


def _impressions_check(served: set[str], since) -> dict:
    """Return served lists vs stored impressions: every list a client received must be stored (0 lost).

    Each id a client received is looked up by itself, whatever its time, so the comparison does not
    depend on the benchmark's clock and the site's agreeing about when the load began.
    """
    from recommendations.models import Impression

    ids = sorted(served)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= {str(rid) for rid in Impression.objects.filter(recommendation_id__in=ids[start:start + 500])
                  .values_list("recommendation_id", flat=True)}
    since_start = {str(rid) for rid in Impression.objects.filter(created_at__gte=since)
                   .values_list("recommendation_id", flat=True).iterator(chunk_size=10000)}
    return {"served_lists": len(served), "stored_impressions": len(found), "lost_impressions": len(served - found),
            # Lists whose responses were still in flight when wrk stopped: stored, never received.
            "stored_not_received": len(since_start - served)}


def _millis(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _parse_wrk(output: str) -> dict:
    figures = {"requests": int(re.search(r"(\d+) requests in", output).group(1))}
    for pct in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M)
        figures[f"p{pct}_ms"] = round(_millis(match.group(1)), 1) if match else None
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    figures["socket_errors"] = sum(int(x) for x in socket_errors.groups()) if socket_errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    figures["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    figures["errors"] = figures["socket_errors"] + figures["non_2xx_3xx"]
    figures["requests_per_second"] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return figures


class Builds(threading.Thread):
    """Keep a full build running through the worker: queue one, and another as soon as it finishes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.started: list[int] = []
        self.error = ""

    def run(self) -> None:
        from django.db import close_old_connections, connections

        from recommendations import services
        from recommendations.models import BuildRun

        try:
            while not self.stop.is_set():
                build = services.full_build_start(triggered_by="load-benchmark")
                self.started.append(build.pk)
                while not self.stop.is_set():
                    close_old_connections()
                    build.refresh_from_db()
                    if build.status not in (BuildRun.Status.QUEUED, BuildRun.Status.RUNNING):
                        break
                    time.sleep(0.5)
        except BaseException as exc:  # reported with the figures
            self.error = repr(exc)
        finally:
            connections.close_all()


def _builds_summary(ids: list[int]) -> list[str]:
    from django.db import close_old_connections

    from recommendations.models import BuildRun

    close_old_connections()  # health-checked reconnect, e.g. after a PostgreSQL restart during the run

    return [f"#{b.pk} {b.status}" + (f" in {b.duration:.0f} s" if b.duration else "")
            for b in BuildRun.objects.filter(pk__in=ids).order_by("pk")]


def _goals_print(database: str, figures: dict, load_average: list[float], *, build: bool = True) -> None:
    """Print one line per goal of issue 20 for ``database``, met or not, and warn when the machine was busy."""
    label = "goal" if build else "ceiling without a build, not the goal"
    min_rps, max_p99 = GOALS[database]
    p99 = figures["p99_ms"] if figures["p99_ms"] is not None else float("inf")
    lines = [(f"p99 <= {max_p99:.0f} ms, measured {p99:.0f} ms", p99 <= max_p99),
             (f"0 errors, measured {figures['errors']}", figures["errors"] == 0)]
    if min_rps:
        lines.insert(0, (f">= {min_rps:.0f} requests/s, measured {figures['requests_per_second']:.1f}",
                         figures["requests_per_second"] >= min_rps))
    for text, met in lines:
        print(f"{label} ({database}): {text}: {'met' if met else 'NOT met'}")
    if load_average[0] > 1.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {load_average[0]:.1f} on {os.cpu_count()} cores: other work shared the "
              "machine, so these figures understate the site.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default: 60)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-build", action="store_true",
                        help="no build during the load: the site's ceiling on this machine (goals are judged with one)")
    parser.add_argument("--port", type=int, default=None, help="gunicorn's port (default: a free one)")
    parser.add_argument("--finish-timeout", type=int, default=300,
                        help="seconds to wait, after the load, for the build under way to finish (default: 300)")
    parser.add_argument("--gunicorn-workers", type=int, default=None,
                        help="gunicorn workers (default: gunicorn.conf.py's, (2 × cores) + 1)")
    # Databases 7 and 9 of the local Redis by default: apart from the test suite's 0 and 1.
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/bre_load",
                        help="the PostgreSQL database of --database postgres, created if missing")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7",
                        help="Celery's broker and results with --database postgres")
    parser.add_argument("--cache-url", default=None,
                        help="CACHE_URL of the site (default: redis://127.0.0.1:6379/9 with postgres, "
                             "the embedded per-process cache with sqlite; '' for the embedded one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    if args.cache_url is None:
        args.cache_url = "redis://127.0.0.1:6379/9" if args.database == "postgres" else ""
    env = _environment(args.database, postgres_url=args.postgres_url, redis_url=args.redis_url,
                       cache_url=args.cache_url)
    if args.database == "postgres":
        name = args.postgres_url.rsplit("/", 1)[1]
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f'CREATE DATABASE "{name}"'],
                       capture_output=True)

    print(f"==> {args.database}: migrate, demo data, first build", flush=True)
    _run(env, "migrate", "--no-input")
    _run(env, "load_demo_data", "--no-admin")
    # This process queues the builds and watches them through the same database and broker.
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.utils import timezone

    from recommendations.models import BuildLock, BuildRun

    # No worker runs on this benchmark's database yet: a lease or an unfinished build is left over from an
    # interrupted earlier run. Clear them, or the builds of this run would be refused for LOCK_TIMEOUT.
    BuildLock.objects.all().delete()
    BuildRun.objects.filter(status__in=[BuildRun.Status.QUEUED, BuildRun.Status.RUNNING]).update(
        status=BuildRun.Status.FAILED, error="Interrupted benchmark run.", finished_at=timezone.now())
    if "Active build: none" in _run(env, "recommendations", "status"):
        _run(env, "recommendations", "build", "--sync")
    setup = json.loads(_run(env, "shell", "-c", SETUP).strip().splitlines()[-1])

    log_dir = ROOT / "var" / "reliability"
    log_dir.mkdir(parents=True, exist_ok=True)
    port = args.port or _free_port()
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "bre_site", "worker", "-c", "1", "--loglevel=WARNING",
         "--logfile", str(log_dir / f"load-worker-{args.database}.log")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    gunicorn_args = ["bre_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
                     *(["--workers", str(args.gunicorn_workers)] if args.gunicorn_workers else []), "--timeout", "120",
                     "--error-logfile", str(log_dir / f"load-gunicorn-{args.database}.log")]
    gunicorn_config = _gunicorn_config(gunicorn_args, env)
    print(f"==> gunicorn: {gunicorn_config}", flush=True)
    server = subprocess.Popen([str(BIN / "gunicorn"), *gunicorn_args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT, start_new_session=True)
    builds = Builds()
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/ping/", timeout=5)
                break
            except Exception:
                time.sleep(0.5)
        token = {"Authorization": f"Token {setup['token']}"}
        session = {"Cookie": f"sessionid={setup['session']}"}
        paths = [("/", {}), ("/", session), ("/books/", {}), ("/articles/", {}), ("/api/books/?page=2", {}),
                 ("/api/articles/", {}), ("/api/recommendations/?limit=10", token)]
        paths += [(f"/books/{pk}/", {}) for pk in setup["books"][:4]]
        paths += [(f"/api/books/{pk}/similar/", {}) for pk in setup["books"][4:8]]
        paths += [(f"/articles/{slug}/", {}) for slug in setup["articles"][:4]]
        for path, headers in paths:  # every path answers before the load starts
            request = urllib.request.Request(base + path, headers=headers)
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200, (path, response.status)
        script = log_dir / f"load-{args.database}.lua"
        lists_file = log_dir / f"load-{args.database}-lists.txt"
        script.write_text(f"LISTS_FILE = {json.dumps(str(lists_file))}\n" + _lua(paths))

        if not args.no_build:
            builds.start()
            time.sleep(3)  # the first build is under way
        at_start = _builds_summary(builds.started)
        print(f"==> wrk: {args.connections} connections, {args.duration} s, {len(paths)} URLs", flush=True)
        groups = {"web": server.pid, "build": worker.pid}
        database = args.postgres_url.rsplit("/", 1)[1] if args.database == "postgres" else None
        cpu_before = cpu_accounting.snapshot(groups, database=database)
        load_started = timezone.now()
        wrk = subprocess.Popen(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s",
                                "--timeout", "10s", "--latency", "-s", str(script), base],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        groups["wrk"] = wrk.pid
        time.sleep(args.duration - 1)  # the backends as they are near the end, charged to their owners
        cpu_after = cpu_accounting.snapshot(groups, database=database)
        wrk.stdout_text, _ = wrk.communicate()
        cores = cpu_accounting.cores_used(cpu_before, cpu_after, args.duration - 1)
        print("==> cores used: " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items()), flush=True)
        print(wrk.stdout_text)
        figures = _parse_wrk(wrk.stdout_text)
        # CPU the site spent per request, whatever share of the cores the machine gave it: what
        # the figures would be on cores of its own (2 cores / this = requests/s, wrk aside).
        site = cores["web"] + cores.get("web_postgres", 0.0)
        figures["web_cpu_ms_per_request"] = round(1000 * site / max(1.0, figures["requests_per_second"]), 2)
        figures["web_cpu_cores_used"] = round(site, 2)
        figures["build_cpu_cores_used"] = round(cores["build"] + cores.get("build_postgres", 0.0), 2)
        figures["cores_used"] = cores
        at_end = _builds_summary(builds.started)
        builds.stop.set()
        if builds.is_alive():
            builds.join(timeout=60)
        # Let the build under way finish with the site idle, to show it completes.
        from django.db import close_old_connections

        from recommendations.models import BuildRun

        deadline = time.monotonic() + args.finish_timeout
        close_old_connections()
        while builds.started and time.monotonic() < deadline and BuildRun.objects.filter(
                pk=builds.started[-1], status__in=[BuildRun.Status.QUEUED, BuildRun.Status.RUNNING]).exists():
            time.sleep(2)
            close_old_connections()
    finally:
        builds.stop.set()
        if builds.is_alive():
            builds.join(timeout=60)
        for process in (server, worker):
            if process.poll() is None:
                os.killpg(process.pid, 15)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)

    # The site has stopped: each worker wrote what its buffer held when it exited.
    from django.db import close_old_connections

    close_old_connections()
    served = set(lists_file.read_text().split()) if lists_file.exists() else set()
    figures.update(_impressions_check(served, load_started))
    print(f"==> served lists {figures['served_lists']}, stored impressions {figures['stored_impressions']}, "
          f"lost {figures['lost_impressions']} (stored but not received: {figures['stored_not_received']})")
    record = {
        "benchmark": "load during full builds", "database": args.database,
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],
        "broker": env.get("CELERY_BROKER_URL", "filesystem://"), "cache": env.get("CACHE_URL", "per-process memory"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}",
        "command": " ".join([".venv/bin/python benchmarks/load.py", *sys.argv[1:]]),
        "connections": args.connections, "duration_s": args.duration, "build_running": not args.no_build,
        **gunicorn_config,
        "gunicorn_cmd_args": os.environ.get("GUNICORN_CMD_ARGS", ""),
        "urls": len(paths), **figures,
        "builds_when_load_started": at_start, "builds_when_load_ended": at_end,
        "builds_afterwards": _builds_summary(builds.started), "build_error": builds.error,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=2))
    _goals_print(args.database, figures, record["load_average_1_5_15"], build=not args.no_build)
    if figures["errors"]:
        raise SystemExit(f"{figures['errors']} errors under load")
    if figures["lost_impressions"]:
        raise SystemExit(f"{figures['lost_impressions']} served lists were not stored")
    if not args.no_build and (builds.error or not at_start or not at_end):
        raise SystemExit(f"No full build ran during the load: {builds.error}")


if __name__ == "__main__":
    main()
