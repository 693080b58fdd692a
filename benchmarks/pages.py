"""Page benchmark: the site's HTML pages against ``GET /api/recommendations/``, in process and over HTTP.

In process (always): Django's test client on a copy of ``DATABASE_URL``'s SQLite file (default
``var/bench.sqlite3``; ``--no-copy`` uses it in place, and another database is used as it is), so
that what the run writes (reads, builds) does not pile up in it, with ``DEBUG`` off. For each page, signed in as the demo reader and anonymous, it makes warm-up
requests, then ``--requests`` (default 20) timed ones, and reports the median milliseconds and
the queries of one warm request, then the same uncached (the page cache emptied before each
request). ``--profile PAGE`` prints a cProfile of that page instead (``PROFILE_SORT=tottime``).

While a build runs (``--during-build``): the signed-in home and book pages, timed while a full
build runs in a child process on the same database, with the worker limits of
``bre_site/worker_limits.py`` and without them, and with no build for comparison.

Over HTTP (``--http``): gunicorn (2 workers of gunicorn.conf.py's class, ``DEBUG`` off) on the same database, driven by
Debian's ``wrk`` with the demo reader's session and CSRF cookies: the home page, a book page and
``GET /api/recommendations/`` (token), each for ``--duration`` seconds at ``--connections`` in
``--rounds`` interleaved rounds of the same run, so their throughputs can be compared.

The database must hold the demo data and an active build:
``manage.py migrate && manage.py load_demo_data && manage.py recommendations build --sync``.
Results go to ``benchmarks/results/pages.md`` (``--write``); ``benchmarks/assemble.py`` copies
them into BENCHMARKS.md.

Run: ``DATABASE_URL=sqlite:////abs/path/bench.sqlite3 .venv/bin/python benchmarks/pages.py --write``
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "pages.md"
GOAL_MS = 8.0
GOAL_QUERIES = 6
PAGES = ["home", "books list", "articles list", "book detail", "article detail", "my reading", "api picks"]


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bre_site.settings")
    os.environ.setdefault("DEBUG", "0")
    import django

    django.setup()


def page_urls() -> dict[str, str]:
    """Return the URL of each page: a fixed book and article (the first published by id)."""
    from articles.models import Article, Book

    book = Book.objects.filter(is_published=True).order_by("pk").first()
    article = Article.objects.filter(is_published=True).order_by("pk").first()
    return {
        "home": "/",
        "books list": "/books/",
        "articles list": "/articles/",
        "book detail": book.get_absolute_url(),
        "article detail": article.get_absolute_url(),
        "my reading": "/my-reading/",
        "api picks": "/api/recommendations/",
    }


def measure_in_process(*, requests: int, warmup: int) -> dict[str, dict[str, dict]]:
    """Return {page: {"signed in"|"anonymous": {"ms": median, "queries": n, "status": code}}}."""
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from articles.demo import DEMO_USERNAME

    pages_cache = caches["pages"]
    reader = get_user_model().objects.get(username=DEMO_USERNAME)
    token, _ = Token.objects.get_or_create(user=reader)
    signed_in = Client()
    signed_in.force_login(reader)
    clients = {"signed in": signed_in, "anonymous": Client()}
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    results: dict[str, dict[str, dict]] = {}
    for page, url in page_urls().items():
        results[page] = {}
        for who, client in clients.items():
            if page in ("my reading", "api picks") and who == "anonymous":
                continue
            if page == "api picks":
                client = api
            for _ in range(warmup):
                client.get(url)
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(url)
                timings.append(1000 * (time.perf_counter() - started))
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url)
            # Uncached: the same request right after the page cache was emptied (a miss costs this).
            cold = []
            for _ in range(max(3, requests // 2)):
                pages_cache.clear()
                started = time.perf_counter()
                client.get(url)
                cold.append(1000 * (time.perf_counter() - started))
            pages_cache.clear()
            with CaptureQueriesContext(connection) as cold_ctx:
                client.get(url)
            results[page][who] = {"ms": statistics.median(timings), "queries": len(ctx.captured_queries),
                                  "status": response.status_code,
                                  "cold_ms": statistics.median(cold), "cold_queries": len(cold_ctx.captured_queries),
                                  "sql": [q["sql"][:160] for q in ctx.captured_queries]}
    return results


def profile_page(page: str, who: str, n: int = 50) -> None:
    """Print the cProfile of ``n`` warm requests of ``page``."""
    import cProfile
    import pstats

    from django.contrib.auth import get_user_model
    from django.test import Client

    from articles.demo import DEMO_USERNAME

    client = Client()
    if who == "signed in":
        client.force_login(get_user_model().objects.get(username=DEMO_USERNAME))
    url = page_urls()[page]
    for _ in range(5):
        client.get(url)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(45)


BUILD_SNIPPET = """
import django
django.setup()
from bre_site.worker_limits import worker_limits_apply
if LIMITS:
    worker_limits_apply()
from django.core.management import call_command
call_command("recommendations", "build", "--sync", verbosity=0)
"""


def measure_during_build(*, limits: bool | None, seconds: float = 60.0) -> dict[str, dict]:
    """Time the signed-in home and book pages while a full build runs beside them (``limits=None``: no build).

    The build runs in a child process on the same database, with the worker limits of
    ``bre_site/worker_limits.py`` applied (``limits=True``) or not, as a Celery worker's pool
    process would. Returns median and 95th percentile ms of the requests made while it ran.
    """
    from django.contrib.auth import get_user_model
    from django.test import Client

    from articles.demo import DEMO_USERNAME

    client = Client()
    client.force_login(get_user_model().objects.get(username=DEMO_USERNAME))
    urls = page_urls()
    build = None
    if limits is not None:
        build = subprocess.Popen([sys.executable, "-c", BUILD_SNIPPET.replace("LIMITS", str(limits))], cwd=ROOT,
                                 env={**os.environ, "DEBUG": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)  # past the imports, into the build
    timings: dict[str, list[float]] = {"home": [], "book detail": []}
    started = time.monotonic()
    while time.monotonic() - started < seconds and (build is None or build.poll() is None):
        for page in timings:
            t = time.perf_counter()
            client.get(urls[page])
            timings[page].append(1000 * (time.perf_counter() - t))
        time.sleep(0.01)
    if build is not None:
        build.wait()
    return {page: {"median": statistics.median(t), "p95": statistics.quantiles(t, n=20)[-1], "n": len(t)}
            for page, t in timings.items()}


def table(results: dict[str, dict[str, dict]], *, cold: bool = False) -> str:
    """Return the Markdown table of warm (or, with ``cold``, uncached) ms / queries per page."""
    lines = ["| page | signed in: ms / queries | anonymous: ms / queries |", "|---|---|---|"]
    ms, queries = ("cold_ms", "cold_queries") if cold else ("ms", "queries")
    for page in PAGES:
        row = results.get(page, {})
        cells = []
        for who in ("signed in", "anonymous"):
            r = row.get(who)
            cells.append(f"{r[ms]:.1f} / {r[queries]}" if r else "—")
        name = "`GET /api/recommendations/`" if page == "api picks" else page
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def goals_met(results: dict[str, dict[str, dict]]) -> bool:
    return all(r["ms"] <= GOAL_MS and r["queries"] <= GOAL_QUERIES and r["status"] == 200
               for page, row in results.items() for r in row.values())


# --- Over HTTP --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wrk(url: str, headers: list[str], *, duration: int, connections: int) -> dict:
    cmd = ["wrk", "--latency", "-t2", f"-c{connections}", f"-d{duration}s"]
    for header in headers:
        cmd += ["-H", header]
    output = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    rps = next(float(line.split()[1]) for line in output.splitlines() if line.startswith("Requests/sec"))
    p99 = next(line.split()[1] for line in output.splitlines() if line.strip().startswith("99%"))
    errors = "Non-2xx" in output or "Socket errors" in output
    return {"rps": rps, "p99": p99, "errors": errors, "raw": output}


def _csrf_secret() -> str:
    from django.middleware.csrf import _get_new_csrf_string

    return _get_new_csrf_string()


def measure_http(*, duration: int, connections: int, rounds: int) -> dict[str, dict]:
    """Start gunicorn on the benchmark database and compare pages with the API endpoint."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from rest_framework.authtoken.models import Token

    from articles.demo import DEMO_USERNAME

    if not shutil.which("wrk"):
        sys.exit("wrk is needed for --http: apt-get install -y wrk")
    reader = get_user_model().objects.get(username=DEMO_USERNAME)
    token, _ = Token.objects.get_or_create(user=reader)
    session = SessionStore()
    session["_auth_user_id"] = str(reader.pk)
    session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
    session["_auth_user_hash"] = reader.get_session_auth_hash()
    session.create()
    port = _free_port()
    env = {**os.environ, "DEBUG": "0", "WEB_CONCURRENCY": "2"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bre_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/ping/", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        urls = page_urls()
        # A browser sends its CSRF cookie back, so the pages reuse its secret instead of making one.
        cookie = (f"Cookie: {settings.SESSION_COOKIE_NAME}={session.session_key}; "
                  f"{settings.CSRF_COOKIE_NAME}={_csrf_secret()}")
        runs = {
            "home (signed in)": (base + urls["home"], [cookie]),
            "book detail (signed in)": (base + urls["book detail"], [cookie]),
            "api picks": (base + urls["api picks"], [f"Authorization: Token {token.key}"]),
        }
        for url, headers in runs.values():
            _wrk(url, headers, duration=3, connections=connections)  # warm-up
        # Interleaved rounds, so that the shared machine's slow spells fall on every URL.
        totals = {name: {"requests": 0.0, "p99": [], "errors": False} for name in runs}
        for _ in range(rounds):
            for name, (url, headers) in runs.items():
                r = _wrk(url, headers, duration=max(1, duration // rounds), connections=connections)
                totals[name]["requests"] += r["rps"]
                totals[name]["p99"].append(r["p99"])
                totals[name]["errors"] |= r["errors"]
        return {name: {"rps": t["requests"] / rounds, "p99": ", ".join(t["p99"]), "errors": t["errors"]}
                for name, t in totals.items()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def machine() -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, load average {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests per page (default 5)")
    parser.add_argument("--profile", metavar="PAGE", choices=PAGES, help="print a cProfile of PAGE instead")
    parser.add_argument("--anonymous", action="store_true", help="profile as an anonymous visitor")
    parser.add_argument("--sql", action="store_true", help="print the queries of one warm request of each page")
    parser.add_argument("--during-build", action="store_true",
                        help="also time two pages while a full build runs, with and without the worker limits")
    parser.add_argument("--http", action="store_true", help="also measure over HTTP with gunicorn and wrk")
    parser.add_argument("--duration", type=int, default=15, help="wrk seconds per URL (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved wrk rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--no-copy", action="store_true", help="use DATABASE_URL's SQLite file itself, not a copy")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--note", default="", help="a sentence added to the written results")
    args = parser.parse_args()

    source = os.environ.get("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
    workdir = None
    if source.startswith("sqlite:///") and not args.no_copy:
        workdir = tempfile.mkdtemp(prefix="bre-pages-")
        copy = Path(workdir) / "pages.sqlite3"
        shutil.copyfile(source[len("sqlite:///"):], copy)
        os.environ["DATABASE_URL"] = f"sqlite:///{copy}"
    else:
        os.environ.setdefault("DATABASE_URL", source)
    try:
        _setup_django()
        if args.profile:
            profile_page(args.profile, "anonymous" if args.anonymous else "signed in")
            return 0
        results = measure_in_process(requests=args.requests, warmup=args.warmup)
        print(table(results))
        print("Uncached (the page cache emptied before each request):")
        print(table(results, cold=True))
        if args.sql:
            print(json.dumps({p: {w: r["sql"] for w, r in row.items()} for p, row in results.items()}, indent=1))
        during = None
        if args.during_build:
            during = {"no build": measure_during_build(limits=None, seconds=20),
                      "build, worker limits": measure_during_build(limits=True),
                      "build, no limits": measure_during_build(limits=False)}
            for name, row in during.items():
                print(name, {p: f"{r['median']:.1f} / {r['p95']:.1f} ms ({r['n']})" for p, r in row.items()})
        http = None
        if args.http:
            http = measure_http(duration=args.duration, connections=args.connections, rounds=args.rounds)
        if http:
            for name, r in http.items():
                print(f"{name}: {r['rps']:.0f} requests/s, p99 {r['p99']}{' (errors)' if r['errors'] else ''}")
        if args.write:
            write_results(args, results, http, during)
        return 0 if goals_met(results) else 1
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def write_results(args, results, http, during=None) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = ("DATABASE_URL=sqlite:///…/bench.sqlite3 python benchmarks/pages.py --write"
               + (" --during-build" if during else "") + (" --http" if http else ""))
    text = [
        "# Pages in process",
        "",
        f"Command: `{command}` · {now} · {machine()}.",
        "",
        f"The demo data on SQLite with an active build (`DEBUG=0`, Django's test client, median of "
        f"{args.requests} requests after {args.warmup} warm-up requests; queries of one warm request). "
        f"Goal: every page ≤ {GOAL_MS:g} ms and ≤ {GOAL_QUERIES} queries, signed in and anonymous: "
        f"{'met' if goals_met(results) else 'NOT met'}.",
        "",
        table(results),
        "",
        f"The same pages uncached: the page cache emptied before each request (median of "
        f"{max(3, args.requests // 2)}; what the first request after a change costs):",
        "",
        table(results, cold=True),
        "",
    ]
    if args.note:
        text += [args.note, ""]
    if during:
        text += ["## While a build runs", "",
                 "The signed-in home and book pages in process (as above), requested one after the other while a "
                 "full build ran in a child process on the same database: with the worker limits "
                 "(`WORKER_NICE=10`, `WORKER_BLAS_THREADS=1`, as a Celery pool process applies them), without "
                 "them, and with no build. Median / 95th percentile ms (requests).", "",
                 "| | home | book detail |", "|---|---|---|"]
        for name, row in during.items():
            cells = [f"{row[p]['median']:.1f} / {row[p]['p95']:.1f} ({row[p]['n']})" for p in ("home", "book detail")]
            text.append(f"| {name} | {cells[0]} | {cells[1]} |")
        text.append("")
    if http:
        api = http["api picks"]["rps"]
        text += ["## Over HTTP", "", f"gunicorn (2 workers of gunicorn.conf.py's class{', GUNICORN_CMD_ARGS=' + repr(os.environ['GUNICORN_CMD_ARGS']) if os.environ.get('GUNICORN_CMD_ARGS') else ''}) and wrk (2 threads), {args.connections} connections, "
                 f"{args.duration} s per URL in {args.rounds} interleaved rounds, in the same run; the page requests "
                 f"carry the reader's session and CSRF cookies, the API request the reader's token.", "",
                 "| URL | requests/s (mean of the rounds) | p99 of each round | × API |", "|---|---|---|---|"]
        for name, r in http.items():
            text.append(f"| {name} | {r['rps']:.0f} | {r['p99']} | {r['rps'] / api:.2f} |")
        text.append("")
    RESULTS.write_text("\n".join(text))
    print(f"Wrote {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
