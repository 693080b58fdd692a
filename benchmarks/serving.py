"""Serving benchmark: GET /api/recommendations/ against a trivial DRF endpoint, under gunicorn on PostgreSQL.

What it does, in one run:

1. Uses ``DATABASE_URL`` if set (it must be PostgreSQL), or creates a throwaway database with
   ``createdb -h 127.0.0.1 -U postgres`` (dropped at the end unless ``--keep-db``).
2. Migrates, loads the shipped demo data (``manage.py load_demo_data``) and runs a full build in
   process (``manage.py recommendations build --sync``), unless an active build exists.
3. Gives the demo reader an API token and checks that its picks are personal.
4. Starts gunicorn (2 workers of the class ``gunicorn.conf.py`` and ``GUNICORN_CMD_ARGS`` give, DEBUG off) on
   127.0.0.1, then drives it with Debian's ``wrk``
   (installed with apt-get when missing): 32 connections for 30 s on ``GET /api/ping/`` (the
   trivial endpoint, same authentication) and 30 s on ``GET /api/recommendations/``, both with
   ``Authorization: Token ...``, after a short warm-up of each. The 30 s are cut into
   ``--rounds`` (default 6) interleaved slices, ping then recommendations in each, so that the
   shared machine's slow spells fall on both (with ``--impressions both``, logging on and off swap
   places every other round). Percentiles are of all the rounds' requests
   together, pooled from the percentile grid each wrk run prints (``pooled_percentile``); the
   largest round p99 is reported too.
5. Profiles one recommendations request in process (its SQL queries and their times), and the
   same picks computed without the stored body (``?limit=10``, the slow path) for comparison;
   then splits a request's CPU by layer (``benchmarks/serving_breakdown.py``).
6. Repeats both wrk runs at low concurrency (``--low-connections``, default 2: about one request
   in flight per worker, so latency is service time rather than queueing; extra information,
   the goal rows stay at 32 connections).
7. With ``--impressions both``, measures logging on and off again at ``--load-share`` (default 0.6) of logging
   off's throughput: each connection waits between requests, so latency is service time and the queueing of
   bursts rather than the saturated queue (``logging_at_load``).
8. Prints p50/p99 latency, throughput and their ratio, and writes
   ``benchmarks/results/serving.md`` with the command, machine, date and load average.

The default picks request is served from the reader's stored response body
(``recommendations.payloads``): the warm-up computes and stores it once, then each request is
one query, the token lookup that reads the stored body too, like the trivial endpoint's one.
Both endpoints authenticate with ``recommendations.api.authentication.TokenAuthentication``
(DRF's, with its SQL compiled once per process). The site's PostgreSQL backend
(``bre_site.postgresql``) checks a connection's health without a round trip while it is idle.
``benchmarks/serving_breakdown.py`` splits a request's CPU by layer.

Goals (issue 5): p99 <= 20 ms and recommendations throughput >= 0.8x the trivial endpoint's. Issue 18: with
impression logging on, throughput >= 0.9x and p99 <= 1.1x of logging off.
Run: ``.venv/bin/python benchmarks/serving.py`` (about 5 minutes on a fresh database, 4 on a kept one).
"""
from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "benchmarks" / "results" / "serving.md"
GOAL_P99_MS = 20.0
GOAL_RATIO = 0.8

PROFILE_SNIPPET = r"""
import json, time
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
user = get_user_model().objects.get(username=USERNAME)
token = Token.objects.get(user=user).key
client = Client(HTTP_AUTHORIZATION=f"Token {token}")
for _ in range(20):
    client.get("/api/recommendations/")
timings = []
for _ in range(200):
    t = time.perf_counter(); client.get("/api/recommendations/"); timings.append(time.perf_counter() - t)
ping = []
for _ in range(200):
    t = time.perf_counter(); client.get("/api/ping/"); ping.append(time.perf_counter() - t)
computed = []
for _ in range(100):
    t = time.perf_counter(); slow = client.get("/api/recommendations/?limit=10"); computed.append(time.perf_counter() - t)
with CaptureQueriesContext(connection) as slow_ctx:
    client.get("/api/recommendations/?limit=10")
with CaptureQueriesContext(connection) as ctx:
    response = client.get("/api/recommendations/")
body = response.json()["results"]
server_ms = []
with connection.cursor() as cursor:
    for q in ctx.captured_queries:
        try:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + q["sql"])
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            server_ms.append(plan[0]["Execution Time"] + plan[0].get("Planning Time", 0.0))
        except Exception:
            server_ms.append(None)
timings.sort(); ping.sort(); computed.sort()
print("PROFILE" + json.dumps({
    "status": response.status_code,
    "n_items": len(body),
    "sources": sorted({row["source"] for row in body}),
    "titles": [row["item"]["title"] for row in body[:3]],
    "because": body[0]["because"] if body else "",
    "median_ms": 1000 * timings[len(timings) // 2],
    "ping_median_ms": 1000 * ping[len(ping) // 2],
    "computed_median_ms": 1000 * computed[len(computed) // 2],
    "computed_queries": len(slow_ctx.captured_queries),
    "same_bytes": slow.json()["results"] == body,
    "queries": [{"sql": q["sql"][:300], "ms": 1000 * float(q["time"]), "server_ms": server}
                for q, server in zip(ctx.captured_queries, server_ms)],
}))
"""


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(cmd: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, check=True, text=True, **kwargs)


def manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = run([PYTHON, "manage.py", *args], env, capture_output=capture)
    return result.stdout if capture else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("Installing Debian's wrk with apt-get")
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
    if not path:
        sys.exit("wrk is needed: apt-get install -y wrk")
    return path


def parse_wrk(output: str) -> dict[str, float]:
    """Return p50, p99 (ms), requests per second and error counts from ``wrk --latency`` output."""
    def millis(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    result: dict[str, float] = {}
    for pct, key in (("50", "p50_ms"), ("75", "p75_ms"), ("90", "p90_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[key] = millis(match.group(1)) if match else float("nan")
    match = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    result["rps"] = float(match.group(1)) if match else 0.0
    match = re.search(r"(\d+) requests in", output)
    result["requests"] = float(match.group(1)) if match else 0.0
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(match.group(1)) if match else 0.0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = float(sum(map(int, match.groups()))) if match else 0.0
    return result


def combine_rounds(rounds: list[dict], seconds: int) -> dict:
    """One endpoint's figures over its interleaved rounds.

    Requests and errors add up and throughput is requests over the rounds' seconds. Percentiles
    are of all the rounds' requests together (``pooled_percentile``); the largest round p99 is
    kept too, as ``p99_max_round_ms``.
    """
    requests = sum(r["requests"] for r in rounds)
    out = {
        "requests": requests,
        "rps": requests / (seconds * len(rounds)),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "rounds_rps": [r["rps"] for r in rounds],
        "rounds_p99_ms": [r["p99_ms"] for r in rounds],
        "p99_max_round_ms": max(r["p99_ms"] for r in rounds),
    }
    for pct, key in ((50, "p50_ms"), (75, "p75_ms"), (90, "p90_ms"), (99, "p99_ms")):
        out[key] = pooled_percentile(rounds, pct)
    return out


def pooled_percentile(rounds: list[dict], pct: float) -> float:
    """Return the ``pct``-th percentile (ms) of all the rounds' requests together.

    wrk gives percentiles per run. Each round's run also prints its percentile grid
    (``WRK_SCRIPT``: every 0.1 up to 90, every 0.01 above), so the pooled distribution is known
    at each grid value x: round r has at least ``requests_r * q / 100`` requests at or below x,
    q being its largest grid percentile whose latency is <= x. The answer is the smallest x where
    these lower bounds reach ``pct`` of all requests: never below the true pooled percentile,
    above it by one grid step at most.
    """
    total = sum(r["requests"] for r in rounds)
    grids = [(r["requests"], [q for q, _ in r["grid"]], [v for _, v in r["grid"]]) for r in rounds]
    for x in sorted({v for _, _, values in grids for v in values}):
        below = sum(n * (qs[i - 1] if (i := bisect.bisect_right(values, x)) else 0.0) / 100 for n, qs, values in grids)
        if below >= pct / 100 * total - 1e-6:
            return x / 1000
    return max(values[-1] for _, _, values in grids) / 1000


# Prints the run's latency percentile grid (microseconds), for pooling rounds (pooled_percentile).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write("BRE-PERCENTILES")
  for i = 1, 900 do io.write(string.format(" %.2f:%d", i / 10, latency:percentile(i / 10))) end
  for i = 9001, 9999 do io.write(string.format(" %.2f:%d", i / 100, latency:percentile(i / 100))) end
  io.write(string.format(" 100.00:%d\\n", latency.max))
end
"""


def parse_grid(output: str) -> list[tuple[float, int]]:
    """Return the ``(percentile, microseconds)`` pairs that ``WRK_SCRIPT`` printed."""
    line = re.search(r"^BRE-PERCENTILES (.*)$", output, re.M)
    if not line:
        raise RuntimeError("wrk printed no percentile grid (is its Lua scripting available?)")
    pairs = [item.split(":") for item in line.group(1).split()]
    return [(float(q), int(v)) for q, v in pairs]


def wrk(binary: str, url: str, token: str, *, duration: int, connections: int, threads: int,
        think_ms: float = 0.0) -> tuple[dict, str]:
    """Run wrk; with ``think_ms`` each connection waits that long after a response before its next request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT + (f"delay = function() return {think_ms:.1f} end\n" if think_ms else ""))
        script.flush()
        cmd = [binary, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
               "-s", script.name, "-H", f"Authorization: Token {token}", url]
        output = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = parse_wrk(output)
    result["grid"] = parse_grid(output)
    # The grid is for pooling; the raw output kept in the report is wrk's own.
    return result, re.sub(r"^BRE-PERCENTILES .*\n?", "", output, flags=re.M)


def _cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def _backend_pids(env: dict[str, str]) -> list[int]:
    """Return the PostgreSQL backends connected to the benchmark's database (the gunicorn workers' connections)."""
    sql = "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    out = subprocess.run(["psql", env["DATABASE_URL"], "-tAc", sql], capture_output=True, text=True).stdout
    return [int(line) for line in out.split() if line.strip().isdigit()]


def cpu_snapshot(server_pid: int, env: dict[str, str]) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each gunicorn process and by each of their PostgreSQL backends."""
    return {
        "app": {pid: _cpu_seconds(pid) for pid in [server_pid, *_children(server_pid)]},
        "db": {pid: _cpu_seconds(pid) for pid in _backend_pids(env)},
    }


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots by the processes alive at the second one."""
    return sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())


def wait_until_up(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout:.0f} s")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def gunicorn_workers(cli_args: list[str], env: dict[str, str]) -> str:
    """Describe the workers gunicorn will run with ``cli_args``, as gunicorn resolves them.

    From gunicorn's own configuration (``gunicorn.conf.py``, ``GUNICORN_CMD_ARGS``, the command line):
    ``--worker-class sync`` with ``threads`` above 1 runs the threaded worker, which the settings alone do not show.
    """
    snippet = ("import sys; from gunicorn.app.wsgiapp import WSGIApplication; "
               f"sys.argv = ['gunicorn', *{cli_args!r}]; cfg = WSGIApplication('%(prog)s').cfg; "
               "print(cfg.workers, cfg.worker_class_str, cfg.threads, cfg.keepalive)")
    out = run([PYTHON, "-c", snippet], env, capture_output=True).stdout.split()
    workers, worker_class, threads, keepalive = out[-4:]
    if worker_class == "gthread":
        return f"{workers} gthread workers x {threads} threads (keep-alive {keepalive} s)"
    return f"{workers} {worker_class} workers"

OFF = "recommendations (impressions off)"


def start_logging_off(server_cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start a second gunicorn like the first, with impression logging off (RECOMMENDATIONS_IMPRESSIONS=0)."""
    port = free_port()
    cmd = list(server_cmd)
    cmd[cmd.index("--bind") + 1] = f"127.0.0.1:{port}"
    log(f"Starting gunicorn with impression logging off on port {port}")
    process = subprocess.Popen(cmd, cwd=ROOT, env={**env, "RECOMMENDATIONS_IMPRESSIONS": "0"})
    wait_until_up(f"http://127.0.0.1:{port}/api/ping/")
    return process, f"http://127.0.0.1:{port}"


def round_order(names: list[str], k: int) -> list[str]:
    """Return the order of round ``k``: logging on and off swap places every other round (ABBA).

    What runs right after a slice inherits its leftovers (the last flush, PostgreSQL's autovacuum of the rows it
    wrote), so a fixed order would always charge them to the same side.
    """
    if k % 2 and OFF in names and "recommendations" in names:
        i, j = names.index("recommendations"), names.index(OFF)
        names[i], names[j] = names[j], names[i]
    return names


def logging_comparison(results: dict) -> str:
    """Print and return (markdown) impression logging on vs off, measured in the same interleaved rounds."""
    if OFF not in results:
        return ""
    on, off = results["recommendations"], results[OFF]
    rps_ratio = on["rps"] / off["rps"] if off["rps"] else float("nan")
    p99_ratio = on["p99_ms"] / off["p99_ms"] if off["p99_ms"] else float("nan")
    verdict = "met" if rps_ratio >= 0.9 and p99_ratio <= 1.1 else "NOT met"
    cpu_on, cpu_off = on["app_cpu_ms"] + on["db_cpu_ms"], off["app_cpu_ms"] + off["db_cpu_ms"]
    cpu_ratio = cpu_off / cpu_on if cpu_on else float("nan")
    round_ratios = ", ".join(f"{a / b:.2f}x" for a, b in zip(on["rounds_p99_ms"], off["rounds_p99_ms"]) if b)
    print(f"impression logging on vs off: throughput {rps_ratio:.2f}x (goal >= 0.9), p99 {p99_ratio:.2f}x "
          f"(goal <= 1.1): {verdict}; CPU per request {cpu_on:.2f} vs {cpu_off:.2f} ms "
          f"-> CPU-bound throughput {cpu_ratio:.2f}x")
    return ("\n## Impression logging on vs off (same rounds, interleaved)\n\n"
            "| | p50 ms | p99 ms | req/s | rounds req/s | CPU ms/request (gunicorn + PostgreSQL) |\n"
            "| --- | --- | --- | --- | --- | --- |\n"
            f"| logging on | {on['p50_ms']:.2f} | {on['p99_ms']:.2f} | {on['rps']:.0f} | "
            f"{', '.join(f'{x:.0f}' for x in on['rounds_rps'])} | {cpu_on:.2f} |\n"
            f"| logging off | {off['p50_ms']:.2f} | {off['p99_ms']:.2f} | {off['rps']:.0f} | "
            f"{', '.join(f'{x:.0f}' for x in off['rounds_rps'])} | {cpu_off:.2f} |\n\n"
            f"p99 of logging on over off, round by round: {round_ratios}.\n\n"
            f"Throughput {rps_ratio:.2f}x, p99 {p99_ratio:.2f}x of logging off (goal >= 0.9x and <= 1.1x): {verdict}. "
            f"CPU per request gives a CPU-bound throughput of {cpu_ratio:.2f}x.\n")


def logging_at_load(wrk_bin: str, endpoints: dict, token: str, args, off_rps: float) -> tuple[dict, float]:
    """Measure logging on and off at ``--load-share`` of logging off's throughput; return their figures and the
    think time.

    At 32 busy connections the server is saturated and latency is connections / throughput (Little's law), so the
    p99 ratio there restates the throughput ratio. Here each connection waits a think time between requests, sized
    so that logging off runs at the given share of what it served saturated: latency is then service time plus the
    queueing of bursts, which is where a reader would feel the writes.
    """
    think_ms = 1000.0 * args.connections / (args.load_share * off_rps)
    rounds = max(1, args.rounds)
    slice_s = max(1, round(args.duration / rounds))
    per_round: dict[str, list[dict]] = {"recommendations": [], OFF: []}
    for k in range(rounds):
        for name in round_order(list(per_round), k):
            log(f"Measuring {name} at {args.load_share:.0%} load: {args.connections} connections, "
                f"{think_ms:.1f} ms between requests, {slice_s} s (round {k + 1} of {rounds})")
            result, _ = wrk(wrk_bin, endpoints[name], token, duration=slice_s, connections=args.connections,
                            threads=args.threads, think_ms=think_ms)
            per_round[name].append(result)
    return {name: combine_rounds(r, slice_s) for name, r in per_round.items()}, think_ms


def logging_at_load_rows(at_load: dict, think_ms: float, share: float) -> str:
    """Print and return (markdown) the p99 of logging on over off at a share of capacity."""
    on, off = at_load["recommendations"], at_load[OFF]
    p99_ratio = on["p99_ms"] / off["p99_ms"] if off["p99_ms"] else float("nan")
    rounds = [a / b for a, b in zip(on["rounds_p99_ms"], off["rounds_p99_ms"]) if b]
    verdict = "met" if p99_ratio <= 1.1 else "NOT met"
    print(f"impression logging on vs off at {share:.0%} load: p99 {on['p99_ms']:.2f} vs {off['p99_ms']:.2f} ms, "
          f"{p99_ratio:.2f}x (goal <= 1.1): {verdict}")
    return (f"\n### The same at {share:.0%} of logging off's throughput (each connection waits {think_ms:.1f} ms "
            "between requests)\n\n"
            "| | p50 ms | p99 ms | req/s | rounds p99 ms |\n| --- | --- | --- | --- | --- |\n"
            + "".join(f"| logging {label} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} | "
                      f"{', '.join(f'{x:.2f}' for x in r['rounds_p99_ms'])} |\n"
                      for label, r in (("on", on), ("off", off)))
            + f"\np99 of logging on over off, round by round: {', '.join(f'{x:.2f}x' for x in rounds)} "
              f"(median {statistics.median(rounds):.2f}x).\n\n"
              f"At {share:.0%} load, p99 {p99_ratio:.2f}x of logging off (goal <= 1.1x): {verdict}.\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="Seconds per measured run (default 30).")
    parser.add_argument("--warmup", type=int, default=5, help="Seconds of warm-up per endpoint (default 5).")
    parser.add_argument("--rounds", type=int, default=6,
                        help="Interleave the endpoints in this many slices of --duration / rounds seconds (default 6).")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--low-connections", type=int, default=2,
                        help="Also measure both endpoints at this concurrency (0: skip; default 2).")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--username", default="demo", help="The reader whose picks are fetched (default demo).")
    parser.add_argument("--keep-db", action="store_true", help="Keep the throwaway database.")
    parser.add_argument("--breakdown-requests", type=int, default=1000,
                        help="Requests per row of the in-process CPU breakdown (default 1000).")
    parser.add_argument("--impressions", choices=["on", "off", "both"], default="both",
                        help="Impression logging of the measured site: on, off, or both side by side (a second "
                             "gunicorn with logging off, measured in the same interleaved rounds; default both).")
    parser.add_argument("--load-share", type=float, default=0.6,
                        help="With --impressions both, also compare logging on and off at this share of logging "
                             "off's saturated throughput (0: skip; default 0.6).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    env = {**os.environ, "DEBUG": "0", "DJANGO_ENV": "development", "DJANGO_SETTINGS_MODULE": "bre_site.settings",
           "LOG_LEVEL": "WARNING", "BRE_LOG_LEVEL": "WARNING", "CELERY_TASK_ALWAYS_EAGER": "0",
           # Keep each worker's database connection for the whole run (its backend's CPU is measured).
           "DB_CONN_MAX_AGE": "600"}
    env.pop("PYTEST_CURRENT_TEST", None)
    env["RECOMMENDATIONS_IMPRESSIONS"] = "0" if args.impressions == "off" else "1"
    created_db = None
    if env.get("DATABASE_URL"):
        if not env["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
            sys.exit("DATABASE_URL must point at PostgreSQL for this benchmark.")
    else:
        created_db = f"bre_serving_{os.getpid()}"
        log(f"Creating the throwaway database {created_db} on 127.0.0.1")
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", created_db], check=True)
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{created_db}"

    wrk_bin = ensure_wrk()
    server = server_off = None
    try:
        log("Migrating")
        manage(env, "migrate", "--no-input", "-v", "0")
        log("Loading the demo data (first time only)")
        manage(env, "load_demo_data", "--no-admin")
        status = manage(env, "recommendations", "status", capture=True)
        if "Active build: none" in status or "Active build" not in status:
            log("Running a full build in process (recommendations build --sync)")
            started = time.monotonic()
            manage(env, "recommendations", "build", "--sync")
            log(f"Build done in {time.monotonic() - started:.0f} s")
        out = manage(env, "drf_create_token", args.username, capture=True)
        token = re.search(r"token (\S+) for user", out).group(1)

        log("Profiling one request in process")
        snippet = f"USERNAME = {args.username!r}\n" + PROFILE_SNIPPET
        profile_out = manage(env, "shell", "-c", snippet, capture=True)
        profile = json.loads(profile_out.split("PROFILE", 1)[1])
        if profile["status"] != 200 or not profile["n_items"]:
            sys.exit(f"The recommendations endpoint does not serve picks: {profile}")
        log(f"{profile['n_items']} picks ({', '.join(profile['sources'])}), e.g. {profile['titles']}; "
            f"{len(profile['queries'])} SQL queries, in-process median {profile['median_ms']:.2f} ms "
            f"(ping {profile['ping_median_ms']:.2f} ms; computed without the stored body "
            f"{profile['computed_median_ms']:.2f} ms, {profile['computed_queries']} queries)")
        if not profile["same_bytes"]:
            sys.exit("The stored body differs from the computed picks: refusing to benchmark a wrong answer.")

        log("Splitting a request's CPU by layer in process (benchmarks/serving_breakdown.py)")
        breakdown = run([PYTHON, "benchmarks/serving_breakdown.py", "--username", args.username,
                         "--requests", str(args.breakdown_requests)], env, capture_output=True).stdout
        print(breakdown, flush=True)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = str(Path(PYTHON).with_name("gunicorn"))
        server_cmd = [gunicorn, "bre_site.wsgi:application", "--workers", str(args.workers), "--bind",
                      f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning"]
        args.workers_described = gunicorn_workers(server_cmd[1:], env)
        log(f"Starting gunicorn: {' '.join(server_cmd[1:])} ({args.workers_described})")
        server = subprocess.Popen(server_cmd, cwd=ROOT, env=env)
        wait_until_up(f"{base}/api/ping/")

        endpoints = {"ping": f"{base}/api/ping/", "recommendations": f"{base}/api/recommendations/"}
        if args.impressions == "both":
            server_off, off_base = start_logging_off(server_cmd, env)
            endpoints[OFF] = f"{off_base}/api/recommendations/"
        load_before = os.getloadavg()
        for name, url in endpoints.items():
            log(f"Warming up {name} for {args.warmup} s")
            wrk(wrk_bin, url, token, duration=args.warmup, connections=args.connections, threads=args.threads)
        rounds = max(1, args.rounds)
        slice_s = max(1, round(args.duration / rounds))
        per_round: dict[str, list[dict]] = {name: [] for name in endpoints}
        raw: dict[str, str] = {name: "" for name in endpoints}
        cpu = {name: {"app": 0.0, "db": 0.0} for name in endpoints}
        # Interleaved slices (ping, recommendations, ping, ...): a slow minute of the shared machine
        # then weighs on both endpoints instead of on whichever ran during it.
        for k in range(rounds):
            for name in round_order(list(endpoints), k):
                url = endpoints[name]
                log(f"Measuring {name}: {args.connections} connections for {slice_s} s (round {k + 1} of {rounds})")
                pid = server_off.pid if name == OFF else server.pid
                before = cpu_snapshot(pid, env)
                result, output = wrk(wrk_bin, url, token, duration=slice_s, connections=args.connections,
                                     threads=args.threads)
                after = cpu_snapshot(pid, env)
                per_round[name].append(result)
                raw[name] += f"# round {k + 1} of {rounds}\n{output.strip()}\n"
                cpu[name]["app"] += cpu_used(before["app"], after["app"])
                cpu[name]["db"] += cpu_used(before["db"], after["db"])
        results = {}
        for name in endpoints:
            r = results[name] = combine_rounds(per_round[name], slice_s)
            served = max(r["requests"], 1.0)
            # CPU per request barely depends on how busy the machine is, unlike latency and throughput.
            r["app_cpu_ms"] = 1000 * cpu[name]["app"] / served
            r["db_cpu_ms"] = 1000 * cpu[name]["db"] / served
            print(f"{name}:", flush=True)
            print(f"    p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  {r['rps']:.0f} req/s "
                  f"(rounds: {', '.join(f'{x:.0f}' for x in r['rounds_rps'])})  "
                  f"non-2xx {r['non_2xx']:.0f}  socket errors {r['socket_errors']:.0f}  "
                  f"CPU per request: app {r['app_cpu_ms']:.2f} ms, PostgreSQL {r['db_cpu_ms']:.2f} ms", flush=True)
        at_load = {}
        if OFF in endpoints and args.load_share > 0:
            at_load = logging_at_load(wrk_bin, endpoints, token, args, results[OFF]["rps"])
        load_after = os.getloadavg()
        low = {}
        if args.low_connections:
            for name, url in endpoints.items():
                log(f"Measuring {name} at low concurrency: {args.low_connections} connections for {args.duration} s")
                low[name], raw[f"{name} (low)"] = wrk(wrk_bin, url, token, duration=args.duration,
                                                      connections=args.low_connections,
                                                      threads=min(args.threads, args.low_connections))
                r = low[name]
                print(f"    p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  {r['rps']:.0f} req/s  "
                      f"non-2xx {r['non_2xx']:.0f}", flush=True)
    finally:
        for process in (server, server_off):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        if created_db and not args.keep_db:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", created_db], check=False)

    rec, ping = results["recommendations"], results["ping"]
    ratio = rec["rps"] / ping["rps"] if ping["rps"] else float("nan")
    rec_cpu, ping_cpu = rec["app_cpu_ms"] + rec["db_cpu_ms"], ping["app_cpu_ms"] + ping["db_cpu_ms"]
    cpu_ratio = ping_cpu / rec_cpu if rec_cpu else float("nan")
    p99_ok = rec["p99_ms"] <= GOAL_P99_MS
    ratio_ok = ratio >= GOAL_RATIO
    print(f"\nrecommendations: p50 {rec['p50_ms']:.2f} ms, p99 {rec['p99_ms']:.2f} ms, {rec['rps']:.0f} req/s")
    print(f"ping:            p50 {ping['p50_ms']:.2f} ms, p99 {ping['p99_ms']:.2f} ms, {ping['rps']:.0f} req/s")
    print(f"throughput ratio {ratio:.2f} (goal >= {GOAL_RATIO}: {'met' if ratio_ok else 'NOT met'}); "
          f"p99 goal <= {GOAL_P99_MS:.0f} ms: {'met' if p99_ok else 'NOT met'}")
    load = (load_before[0], load_after[0])
    if max(load) > 1.5 * (os.cpu_count() or 1):
        print(f"WARNING: the machine was busy with other work (load average {load[0]:.1f} before, "
              f"{load[1]:.1f} after the runs, on {os.cpu_count()} cores): the figures understate this code.")
    print(f"CPU per request (gunicorn + PostgreSQL): recommendations {rec_cpu:.2f} ms, ping {ping_cpu:.2f} ms "
          f"-> CPU-bound throughput ratio {cpu_ratio:.2f}")
    if low:
        low_ratio = low["recommendations"]["rps"] / low["ping"]["rps"] if low["ping"]["rps"] else float("nan")
        print(f"at {args.low_connections} connections: recommendations p99 {low['recommendations']['p99_ms']:.2f} ms, "
              f"{low['recommendations']['rps']:.0f} req/s; ping p99 {low['ping']['p99_ms']:.2f} ms, "
              f"{low['ping']['rps']:.0f} req/s; ratio {low_ratio:.2f}")
    logging_rows = logging_comparison(results)
    if at_load:
        logging_rows += logging_at_load_rows(*at_load, args.load_share)
    write_results(args, rec, ping, ratio, p99_ok, ratio_ok, profile, raw, load, cpu_ratio, low, breakdown)
    if logging_rows:
        with args.results.open("a") as out:
            out.write(logging_rows)
    print(f"Results written to {args.results}")
    return 0


def write_results(args, rec, ping, ratio, p99_ok, ratio_ok, profile, raw, load, cpu_ratio, low, breakdown) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/serving.py " + " ".join(
        a for a in sys.argv[1:] if a != "--keep-db") if len(sys.argv) > 1 else "python benchmarks/serving.py"
    queries = "\n".join(
        f"| {i} | {q['ms']:.0f} | {q['server_ms'] if q['server_ms'] is None else round(q['server_ms'], 3)} "
        f"| `{q['sql'][:160].replace('|', '/')}` |"
        for i, q in enumerate(profile["queries"], 1))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(f"""# Serving benchmark: GET /api/recommendations/ vs a trivial endpoint

- Command: `{command}`
- Date: {now}
- Machine: {machine()}
- Load average (1 min) before / after the measured runs: {load[0]:.1f} / {load[1]:.1f}
  {"(the machine was busy with other processes: these figures understate the code)" if max(load) > 1.5 * (os.cpu_count() or 1) else "(quiet machine)"}
- Stack: gunicorn: {args.workers_described}{f" (GUNICORN_CMD_ARGS={os.environ['GUNICORN_CMD_ARGS']!r})" if os.environ.get("GUNICORN_CMD_ARGS") else ""}, DEBUG off, PostgreSQL on 127.0.0.1, demo data + one full build;
  load from Debian's `wrk` on the same machine ({args.threads} threads, {args.connections} connections,
  {args.duration} s per endpoint after {args.warmup} s of warm-up, in {max(1, args.rounds)} interleaved rounds: ping then
  recommendations, each round), token authentication on both endpoints. Requests/s and the percentiles are
  over all the rounds' requests together (pooled from each wrk run's percentile grid, at most 0.01 percentile
  points above the exact value). Per round, requests/s: recommendations {', '.join(f'{x:.0f}' for x in rec['rounds_rps'])};
  ping {', '.join(f'{x:.0f}' for x in ping['rounds_rps'])}. p99 ms: recommendations
  {', '.join(f'{x:.2f}' for x in rec['rounds_p99_ms'])}; ping {', '.join(f'{x:.2f}' for x in ping['rounds_p99_ms'])}.
- Reader: `{args.username}`: {profile['n_items']} picks ({', '.join(profile['sources'])}), e.g. {', '.join(profile['titles'])};
  "{profile['because']}".

| endpoint | p50 ms | p99 ms | requests/s | requests | non-2xx | socket errors | CPU ms/request: gunicorn | PostgreSQL |
|---|---|---|---|---|---|---|---|---|
{_row("`GET /api/recommendations/`", rec)}
{_row("`GET /api/ping/` (trivial)", ping)}

CPU per request is measured from /proc (the gunicorn processes and their PostgreSQL backends, before and
after each run). It is inflated on a busy machine too (cache and scheduler contention), but far less than
latency and throughput, which here mostly measure the other processes: by CPU alone, the recommendations endpoint
would reach **{cpu_ratio:.2f}x** the trivial endpoint's throughput.

Throughput ratio (recommendations / trivial): **{ratio:.2f}** (goal >= {GOAL_RATIO}: **{'met' if ratio_ok else 'not met'}**).
p99 of recommendations: **{rec['p99_ms']:.2f} ms** (goal <= {GOAL_P99_MS:.0f} ms: **{'met' if p99_ok else 'not met'}**);
the largest of its rounds' p99s: {rec['p99_max_round_ms']:.2f} ms.
{_low_section(args, low)}
## Where the time goes (one request, in process, same database)

Median over 200 requests through Django's test client: recommendations {profile['median_ms']:.2f} ms,
ping {profile['ping_median_ms']:.2f} ms. The same picks computed without the stored body (`?limit=10`, the
slow path, same bytes: {'yes' if profile['same_bytes'] else 'NO'}): {profile['computed_median_ms']:.2f} ms and
{profile['computed_queries']} queries. The default recommendations request (the reader's stored body,
`recommendations.payloads`) runs {len(profile['queries'])} SQL queries:

| # | ms seen by Django (1 ms resolution) | ms in PostgreSQL (EXPLAIN ANALYZE: planning + execution) | SQL (first 160 characters) |
|---|---|---|---|
{queries}

{breakdown.strip()}

Differences between these rows price each layer: Django with its middleware, one database round
trip (Django's per-request connection health check polls the socket first: `bre_site.postgresql`),
DRF's own token lookup through the ORM (replaced here by
`recommendations.api.authentication.TokenAuthentication`: the same SQL compiled once per process),
DRF's dispatch, and the stored body, which the token lookup reads in the same query. gunicorn's own
work (HTTP parsing, and with sync workers one connection per request) and wrk's come on top, in the
table above.

With {args.connections} connections on {args.workers_described}, a request waits for the others ahead of it,
so latency is about connections / throughput (Little's law): here {args.connections} / {rec['rps']:.0f} requests/s
= {1000 * args.connections / rec['rps']:.1f} ms on average. p99 <= 20 ms at 32 connections needs about
1,600 requests/s or more, and a narrow spread.

## Raw wrk output

```
{raw['recommendations'].strip()}
```

```
{raw['ping'].strip()}
```
""" + "".join(f"""
```
{raw[key].strip()}
```
""" for key in raw if key.endswith("(low)")))


def _low_section(args, low: dict) -> str:
    if not low:
        return ""
    rec, ping = low["recommendations"], low["ping"]
    ratio = rec["rps"] / ping["rps"] if ping["rps"] else float("nan")
    return f"""
Extra information, not the goal: the same runs at {args.low_connections} connections (about one request in
flight per worker, so latency is mostly service time rather than queueing):

| endpoint | p50 ms | p99 ms | requests/s | requests | non-2xx | socket errors |
|---|---|---|---|---|---|---|
| `GET /api/recommendations/` | {rec['p50_ms']:.2f} | {rec['p99_ms']:.2f} | {rec['rps']:.0f} | {rec['requests']:.0f} | {rec['non_2xx']:.0f} | {rec['socket_errors']:.0f} |
| `GET /api/ping/` (trivial) | {ping['p50_ms']:.2f} | {ping['p99_ms']:.2f} | {ping['rps']:.0f} | {ping['requests']:.0f} | {ping['non_2xx']:.0f} | {ping['socket_errors']:.0f} |

Throughput ratio at {args.low_connections} connections: {ratio:.2f}.
"""


def _row(name: str, r: dict) -> str:
    return (f"| {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps']:.0f} | {r['requests']:.0f} | "
            f"{r['non_2xx']:.0f} | {r['socket_errors']:.0f} | {r['app_cpu_ms']:.2f} | {r['db_cpu_ms']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
