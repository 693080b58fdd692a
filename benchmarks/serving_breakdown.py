"""Where a serving request's CPU goes: Django's WSGI handler called in process, layer by layer.

Run it on the serving benchmark's database (a kept one: ``benchmarks/serving.py --keep-db``,
or any PostgreSQL database with the demo data, a build and the demo reader's token)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bre_serving_... DEBUG=0 \\
        .venv/bin/python benchmarks/serving_breakdown.py

Each row calls ``bre_site.wsgi.application`` with a prepared environ (no HTTP, no gunicorn)
``--requests`` times and prints this process's CPU per request (``time.process_time``) and its
PostgreSQL backend's (from /proc), the minimum over ``--repeats`` interleaved rounds: on a shared
machine the minimum is the least disturbed. Differences between rows give the cost of each
layer: the middleware, DRF, a database round trip (Django's per-request health check polls the
socket first: ``bre_site.postgresql``), DRF's token lookup through the ORM, and
``GET /api/recommendations/`` (the stored body, read by the token lookup's query).
gunicorn's own cost (HTTP parsing, one connection per request with sync workers) is not in
these rows: ``benchmarks/serving.py`` measures the whole server from /proc.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bre_site.settings")
os.environ.setdefault("DEBUG", "0")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--username", default="demo")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt
    from rest_framework.authentication import TokenAuthentication as DRFTokenAuthentication
    from rest_framework.authtoken.models import Token

    import bre_site.urls
    from bre_site.wsgi import application

    user = get_user_model().objects.get(username=args.username)
    key = Token.objects.get_or_create(user=user)[0].key
    drf_auth = DRFTokenAuthentication()

    @csrf_exempt
    def hello(request):
        return HttpResponse(b'{"status":"ok"}', content_type="application/json")

    @csrf_exempt
    def hello_select(request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return hello(request)

    @csrf_exempt
    def hello_drf_token(request):
        drf_auth.authenticate_credentials(key)
        return hello(request)

    bre_site.urls.urlpatterns[:0] = [path("_hello/", hello), path("_select/", hello_select),
                                    path("_drf_token/", hello_drf_token)]

    def environ(url: str, token: bool) -> dict:
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": url, "QUERY_STRING": "", "SCRIPT_NAME": "",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
               "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(b""),
               "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
               "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
        if token:
            env["HTTP_AUTHORIZATION"] = f"Token {key}"
        return env

    def start_response(status, headers, exc_info=None):
        start_response.status = status

    def call(url: str, token: bool) -> None:
        response = application(environ(url, token), start_response)
        b"".join(response)
        response.close()
        assert start_response.status.startswith("200"), (url, start_response.status)

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    tick = os.sysconf("SC_CLK_TCK")

    def backend_cpu() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    rows = [
        ("Django function view, full middleware, no database", "/_hello/", False),
        ("+ one query (SELECT 1; the health check polls the socket)", "/_select/", False),
        ("+ DRF's token lookup through the ORM instead", "/_drf_token/", True),
        ("DRF GET /api/ping/, anonymous (no database)", "/api/ping/", False),
        ("DRF GET /api/ping/, token (compiled lookup)", "/api/ping/", True),
        ("GET /api/recommendations/ (stored body, read with the token)", "/api/recommendations/", True),
    ]
    results: dict[str, list[tuple[float, float]]] = {row[0]: [] for row in rows}
    for _ in range(args.repeats):
        for name, url, token in rows:
            for _ in range(100):
                call(url, token)
            cpu, db = time.process_time(), backend_cpu()
            for _ in range(args.requests):
                call(url, token)
            results[name].append((time.process_time() - cpu, backend_cpu() - db))
    print(f"CPU per request in process, minimum of {args.repeats} rounds of {args.requests} requests "
          f"(load average {os.getloadavg()[0]:.1f}):\n")
    print("| request (bre_site.wsgi.application, no gunicorn) | Python ms | PostgreSQL ms |")
    print("|---|---|---|")
    for name, *_ in rows:
        app, db = min(results[name])
        print(f"| {name} | {1000 * app / args.requests:.3f} | {1000 * db / args.requests:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
