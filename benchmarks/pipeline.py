"""Provides the end-to-end pipeline benchmark: database -> full build over real Celery workers -> stored, served picks.

What one invocation does, for every backend (SQLite, PostgreSQL) and data set (MovieLens-1M,
synthetic power-law data at one or more scales):

1. Creates a throwaway database (a file under /tmp for SQLite; ``createdb -h 127.0.0.1 -U postgres
   bre_bench_pipeline`` for PostgreSQL, dropped at the end) and migrates it with
   ``benchmarks.pipeline_settings`` (the test settings, whose ``testapp`` provides Item/Score/Like).
2. Loads the data into the testapp models (COPY on PostgreSQL, one ``executemany`` transaction on
   SQLite). The loading is timed apart and is not part of the build.
3. For each worker count (1 and 2 by default) starts real Celery workers
   (``celery -A bre_site worker -c N``) on Redis db 5 (results on db 6), queues a full build with
   ``services.full_build_start`` (the ``full_build_fan_out`` task prepares, then fans out a chord of the build's
   parts, ``build_part`` for the neighbour lists and the rating model, and its user chunks,
   ``build_score_chunk``, then ``build_finalize`` switches), and waits for it. A hook
   imported into the workers (``-I benchmarks.pipeline``) records when each task starts and ends and
   the worker process's peak RSS.
   With ``--rounds R`` the worker counts are interleaved R times (1, 2, 1, 2, ...), so that the
   shared host's slow spells fall on both; the fan-out goal is then judged on the median speedup.
4. Checks that the result is served: ``selectors.recommended_for`` for 200 users.
5. Times the incremental refresh (``--refresh-events``, ``--refresh-burst``): with one fresh worker
   process, ratings are saved one at a time for the top pick of a user, and each is timed until
   the worker's debounced ``user_refresh`` of that user has committed; the rated item must have
   left the stored picks. Then a burst of users at once.
6. Optionally (``--profile``) runs the build once more in process under cProfile.

It prints, and writes to ``benchmarks/results/pipeline.md``: seconds per stage (from
``BuildRun.timings``; chunk stages are summed over chunks, i.e. worker-seconds), the wall time of
the fan-out (first part or chunk start -> finalize end) for 1 and 2 workers, peak memory, the ratio of the
total to the pure compute (fit + score), the refresh latencies, and whether each goal of issue 4 is met.

Run: ``.venv/bin/python benchmarks/pipeline.py`` (MovieLens-1M and 1M synthetic on both backends);
``--scale 1M,3M,10M --data synthetic --backends postgresql`` for the growth series. Everything of
issue 4 in one command (MovieLens-1M with 1 and 2 workers on both backends, then the synthetic
series with 2 workers on SQLite)::

    .venv/bin/python benchmarks/pipeline.py --data movielens,synthetic --scale 1M,3M,10M \
        --backends sqlite,postgresql --workers 1,2 --synthetic-backends sqlite --synthetic-workers 2

Several people can run it at once on one machine with their own ``BRE_PIPELINE_PG_DB``,
``BRE_PIPELINE_SQLITE_PATH``, ``BRE_PIPELINE_BROKER_URL``, ``BRE_PIPELINE_RESULT_BACKEND`` and
``BRE_PIPELINE_RUNS_DIR`` (the broker and result Redis databases are flushed before each build).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "pipeline.md"
RUNS_DIR = Path(os.environ.get("BRE_PIPELINE_RUNS_DIR", "/tmp/bre_pipeline/runs"))
MOVIELENS_DIR = ROOT.parent / "shared" / "data" / "movielens-1m"
# Overridable so that several people can run it at once on one machine (own database, own Redis dbs).
PG_DB = os.environ.get("BRE_PIPELINE_PG_DB", "bre_bench_pipeline")
PG_URL = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
SQLITE_PATH = Path(os.environ.get("BRE_PIPELINE_SQLITE_PATH", "/tmp/bre_bench_pipeline.sqlite3"))
BROKER = os.environ.get("BRE_PIPELINE_BROKER_URL", "redis://127.0.0.1:6379/5")
BACKEND_URL = os.environ.get("BRE_PIPELINE_RESULT_BACKEND", "redis://127.0.0.1:6379/6")
SETTINGS = "benchmarks.pipeline_settings"

GOAL_RATIO = 2.0
GOAL_ML1M_SECONDS = 30.0
GOAL_SPEEDUP = 1.8
GOAL_REFRESH_P95 = 2.0


def log(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- the hook run inside the Celery workers ---------------------------------------------------------------


def _connect_worker_hooks(path: str) -> None:
    """Record each task's start and end (wall clock, pid, peak RSS) as JSON lines in ``path``."""
    from celery.signals import task_postrun, task_prerun

    def record(phase: str, task, args) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        event = {"task": task.name, "phase": phase, "t": time.time(), "pid": os.getpid(),
                 "cpu": usage.ru_utime + usage.ru_stime,  # this process's CPU seconds so far (all its threads)
                 "maxrss_kb": usage.ru_maxrss, "args": list(args or [])}
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")

    task_prerun.connect(lambda task=None, args=None, **kw: record("start", task, args), weak=False)
    task_postrun.connect(lambda task=None, args=None, **kw: record("end", task, args), weak=False)
    source = os.environ.get("BRE_PIPELINE_SERVICES_SOURCE")
    if source:
        from celery.signals import worker_process_init

        worker_process_init.connect(lambda **kw: _load_services_source(source), weak=False)


def _load_services_source(path: str) -> None:
    """What-if runs: execute a proposed ``services.py`` into the imported module (the file is not touched)."""
    from recommendations import services

    code = compile(Path(path).read_text(), services.__file__, "exec")
    exec(code, services.__dict__)


if os.environ.get("BRE_PIPELINE_EVENTS") and __name__ != "__main__":
    _connect_worker_hooks(os.environ["BRE_PIPELINE_EVENTS"])


# --- data ---------------------------------------------------------------------------------------------------


def _uuid(label: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.md5(label.encode()).digest(), version=4)


def movielens_ratings(folder: Path):
    """Return (users, movies, stars, timestamps) arrays of MovieLens-1M, or None when absent.

    Reads ``ratings.dat`` (UserID::MovieID::Rating::Timestamp) when present, else the reassembled
    ``ratings.csv.gz`` plus the known timestamps of ``ratings_timestamps_partial.csv.gz`` (ratings
    without a known timestamp get the earliest known one).
    """
    import numpy as np

    dat = folder / "ratings.dat"
    if dat.exists():
        raw = np.loadtxt(dat, delimiter="::", dtype=np.int64)
        return raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3].astype(np.float64)
    csv = folder / "ratings.csv.gz"
    if not csv.exists():
        return None
    with gzip.open(csv, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.int64)
    users, movies, stars = raw[:, 0], raw[:, 1], raw[:, 2]
    timestamps = np.full(len(raw), np.nan)
    partial = folder / "ratings_timestamps_partial.csv.gz"
    if partial.exists():
        with gzip.open(partial, "rt") as f:
            known = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.int64)
        key = users * 10_000 + movies
        known_key = known[:, 0] * 10_000 + known[:, 1]
        order = np.argsort(key)
        pos = np.searchsorted(key, known_key, sorter=order)
        timestamps[order[pos]] = known[:, 3]
    fill = np.nanmin(timestamps) if np.isfinite(timestamps).any() else 956703932.0
    return users, movies, stars, np.where(np.isnan(timestamps), fill, timestamps)


def movielens_titles(folder: Path) -> dict[int, tuple[str, str]]:
    titles = {}
    path = folder / "movies.dat"
    if path.exists():
        for line in path.read_text(encoding="latin-1").splitlines():
            movie_id, title, genres = line.split("::")
            titles[int(movie_id)] = (title, genres.replace("|", " "))
    return titles


def synthetic_interactions(n: int, *, n_items: int, per_user: int = 50, alpha: float = 1.0, seed: int = 0):
    """Return (users, items) of ``n`` distinct pairs: power-law item popularity, log-normal user activity.

    Item ``r`` (in popularity order) is drawn with probability proportional to ``1 / (r + 10) ** alpha``;
    users get log-normal activity (sigma 1) around ``per_user`` interactions on average.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n_users = max(1, n // per_user)
    item_p = 1.0 / (np.arange(n_items) + 10.0) ** alpha
    item_cdf = np.cumsum(rng.permutation(item_p))  # popular items are spread over the ids
    item_cdf /= item_cdf[-1]
    user_cdf = np.cumsum(rng.lognormal(0.0, 1.0, n_users))
    user_cdf /= user_cdf[-1]
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n:
        m = int((n - len(keys)) * 1.2) + 1000
        users = np.searchsorted(user_cdf, rng.random(m))
        items = np.searchsorted(item_cdf, rng.random(m))
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * n_items + items]))
    keys = np.sort(rng.choice(keys, n, replace=False))
    return keys // n_items, keys % n_items


class Loader:
    """Bulk inserts into the testapp tables: COPY on PostgreSQL, executemany in one transaction on SQLite."""

    def __init__(self):
        from django.db import connection

        self.connection = connection
        self.pg = connection.vendor == "postgresql"

    def rows(self, table: str, columns: list[str], rows) -> None:
        """Insert an iterable of tuples (already in the database's text/number form)."""
        names = ", ".join(columns)
        self.connection.ensure_connection()
        raw = self.connection.connection
        if self.pg:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                block = []
                for row in rows:
                    block.append("\t".join(_pg_text(v) for v in row))
                    if len(block) >= 200_000:
                        copy.write("\n".join(block) + "\n")
                        block = []
                if block:
                    copy.write("\n".join(block) + "\n")
            raw.commit() if not raw.autocommit else None
        else:
            marks = ", ".join("?" * len(columns))
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            cursor.execute("COMMIT")

    def lines(self, table: str, columns: list[str], text_blocks, tuple_blocks) -> None:
        """Insert pre-formatted COPY text blocks (PostgreSQL) or tuple blocks (SQLite)."""
        names = ", ".join(columns)
        self.connection.ensure_connection()
        raw = self.connection.connection
        if self.pg:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for block in text_blocks():
                    copy.write(block)
            raw.commit() if not raw.autocommit else None
        else:
            marks = ", ".join("?" * len(columns))
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            for block in tuple_blocks():
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", block)
            cursor.execute("COMMIT")

    def finish(self) -> None:
        with self.connection.cursor() as cursor:
            if self.pg:
                cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), (SELECT max(id) FROM auth_user))")
                cursor.execute("VACUUM ANALYZE") if self.connection.connection.autocommit else cursor.execute("ANALYZE")
            else:
                cursor.execute("ANALYZE")


def _pg_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _load_users(loader: Loader, n_users: int, prefix: str) -> None:
    joined = "2026-01-01 00:00:00+00" if loader.pg else "2026-01-01 00:00:00"
    rows = ((i, "!", False, f"{prefix}{i}", "", "", "", False, True, joined) for i in range(1, n_users + 1))
    loader.rows("auth_user", ["id", "password", "is_superuser", "username", "first_name", "last_name", "email",
                              "is_staff", "is_active", "date_joined"], rows)


def _item_db_ids(loader: Loader, uuids: list[uuid.UUID]) -> list[str]:
    return [str(u) for u in uuids] if loader.pg else [u.hex for u in uuids]


def _timestamps_text(seconds, pg: bool):
    """Unix seconds -> the text a DateTimeField stores (numpy, no per-row datetime objects)."""
    import numpy as np

    text = np.datetime_as_string(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"))
    text = np.char.replace(text, "T", " ")
    return np.char.add(text, "+00") if pg else text


def load_movielens(folder: Path) -> dict[str, Any] | None:
    import numpy as np

    data = movielens_ratings(folder)
    if data is None:
        return None
    users, movies, stars, timestamps = data
    # A live site: shift the history so that the newest rating is from now (recency decay stays sane).
    timestamps = timestamps + (time.time() - timestamps.max())
    titles = movielens_titles(folder)
    movie_ids = sorted(set(titles) | set(np.unique(movies).tolist()))
    loader = Loader()
    uuids = [_uuid(f"movielens-{m}") for m in movie_ids]
    db_ids = _item_db_ids(loader, uuids)
    by_movie = dict(zip(movie_ids, db_ids))
    loader.rows("testapp_item", ["id", "name", "description", "is_active"],
                ((db_ids[k], titles.get(m, (f"Movie {m}", ""))[0], titles.get(m, ("", ""))[1], True)
                 for k, m in enumerate(movie_ids)))
    _load_users(loader, int(users.max()), "ml")
    stamps = _timestamps_text(timestamps, loader.pg)
    item_col = [by_movie[m] for m in movies.tolist()]
    user_col, star_col, stamp_col = users.tolist(), stars.tolist(), stamps.tolist()
    loader.rows("testapp_score", ["user_id", "item_id", "stars", "created_at"],
                zip(user_col, item_col, star_col, stamp_col))
    loader.finish()
    return {"users": int(len(np.unique(users))), "items": len(movie_ids), "interactions": int(len(users)),
            "kind": "ratings (Score, 1-5 stars)"}


def load_synthetic(n: int, *, n_items: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    users, items = synthetic_interactions(n, n_items=n_items, seed=seed)
    users = users + 1
    loader = Loader()
    rng = np.random.default_rng(seed + 1)
    uuids = [_uuid(f"synthetic-{seed}-{k}") for k in range(n_items)]
    db_ids = _item_db_ids(loader, uuids)
    vocabulary = [f"w{j}" for j in range(20_000)]
    words = rng.integers(0, len(vocabulary), size=(n_items, 6))
    loader.rows("testapp_item", ["id", "name", "description", "is_active"],
                ((db_ids[k], f"Item {k}", " ".join(vocabulary[w] for w in words[k]), True) for k in range(n_items)))
    _load_users(loader, int(users.max()), "u")
    now = time.time()
    timestamps = now - rng.random(n) * 90 * 86400
    block = 1_000_000
    item_array = np.asarray(db_ids, dtype=object)

    def text_blocks():
        for start in range(0, n, block):
            u = users[start:start + block].astype(str)
            stamps = _timestamps_text(timestamps[start:start + block], True)
            ids = item_array[items[start:start + block]]
            yield "".join(f"{a}\t{b}\t{c}\n" for a, b, c in zip(u.tolist(), ids.tolist(), stamps.tolist()))

    def tuple_blocks():
        for start in range(0, n, block):
            stamps = _timestamps_text(timestamps[start:start + block], False)
            ids = item_array[items[start:start + block]]
            yield list(zip(users[start:start + block].tolist(), ids.tolist(), stamps.tolist()))

    loader.lines("testapp_like", ["user_id", "item_id", "created_at"], text_blocks, tuple_blocks)
    loader.finish()
    return {"users": int(len(np.unique(users))), "items": n_items, "interactions": int(n),
            "kind": "implicit (Like), power-law items"}


# --- one run (a child process per backend and data set) -------------------------------------------------------


def _worker_env(events: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS, "BRE_PIPELINE_EVENTS": str(events),
        "BRE_PIPELINE_BROKER_URL": BROKER, "BRE_PIPELINE_RESULT_BACKEND": BACKEND_URL,
        # No hidden BLAS threads on top of the pool (Auto's one iALS thread in prepare is explicit).
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    })
    return env


def _start_workers(concurrency: int, events: Path, logfile: Path) -> subprocess.Popen:
    celery = str(Path(sys.executable).with_name("celery"))
    command = [celery, "-A", "bre_site", "worker", "-c", str(concurrency), "--pool", "prefork", "-l", "INFO",
               "-n", f"pipeline{concurrency}-{os.getpid()}@%h", "-I", "benchmarks.pipeline",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "--prefetch-multiplier", "1"]
    out = open(logfile, "w")
    process = subprocess.Popen(command, cwd=ROOT, env=_worker_env(events), stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited: see {logfile}")
        if " ready." in logfile.read_text():
            return process
        time.sleep(0.5)
    raise RuntimeError(f"The Celery worker did not start within 180 s: see {logfile}")


def _stop_workers(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # warm shutdown of the master and its pool (our own session)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _flush_redis() -> None:
    import redis

    for url in (BROKER, BACKEND_URL):
        redis.Redis.from_url(url).flushdb()


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _served_check(build_id: int, sample: int = 200) -> dict[str, Any]:
    """Serve picks for ``sample`` users with the selectors; return median/p95 ms and how many had picks."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from recommendations import selectors
    from recommendations.models import UserRecommendation

    user_ids = list(UserRecommendation.objects.filter(build_id=build_id, rank=1)
                    .order_by("user_id").values_list("user_id", flat=True)[:5000])
    rng = np.random.default_rng(0)
    chosen = rng.choice(user_ids, size=min(sample, len(user_ids)), replace=False).tolist() if user_ids else []
    users = get_user_model().objects.in_bulk(chosen)
    times, personal = [], 0
    for pk in chosen:
        t = time.perf_counter()
        picks = selectors.recommended_for(users[pk], n=10)
        times.append(time.perf_counter() - t)
        personal += bool(picks)
    times.sort()
    return {"users": len(chosen), "with_picks": personal,
            "median_ms": 1000 * times[len(times) // 2] if times else None,
            "p95_ms": 1000 * times[int(len(times) * 0.95)] if times else None,
            "example": [str(p) for p in selectors.recommended_for(users[chosen[0]], n=3)] if chosen else []}


class DatabaseRestarted(RuntimeError):
    """PostgreSQL restarted during a run (others restart it in reliability tests): the run is retried."""


def _server_started() -> str | None:
    """PostgreSQL's start time (a restart kills the workers' connections mid-build), None elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    for _ in range(60):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_postmaster_start_time()::text")
                return cursor.fetchone()[0]
        except Exception:
            connection.close()
            time.sleep(2)
    raise RuntimeError("PostgreSQL did not come back within 2 minutes")


def _build_with_retries(concurrency: int, workdir: Path, attempts: int = 3) -> dict[str, Any]:
    from django.db import connection

    for attempt in range(1, attempts + 1):
        try:
            run = _build_with_workers(concurrency, workdir)
            run["attempt"] = attempt
            return run
        except DatabaseRestarted as exc:
            log(f"  attempt {attempt} lost: {exc}; retrying with fresh workers")
            connection.close()
            time.sleep(5)
            _server_started()  # wait until it is back
            _clear_lost_builds()
    raise RuntimeError(f"{attempts} attempts with {concurrency} worker(s) were lost to database restarts")


def _clear_lost_builds() -> None:
    """Fail the builds a restart interrupted and drop their lease (a throwaway database)."""
    from recommendations import services
    from recommendations.models import BuildLock, BuildRun

    lost = BuildRun.objects.exclude(status__in=[BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED])
    for build_id in lost.values_list("pk", flat=True):
        services.build_fail(build_id=build_id, error="benchmark: lost to a PostgreSQL restart")
    BuildLock.objects.all().delete()


def _build_with_workers(concurrency: int, workdir: Path) -> dict[str, Any]:
    from django.db import connection
    from django.db.utils import OperationalError, InterfaceError

    from recommendations import services
    from recommendations.models import BuildRun, SimilarItem, UserRecommendation

    events = workdir / f"events-c{concurrency}.jsonl"
    events.unlink(missing_ok=True)
    _flush_redis()
    load_before = os.getloadavg()
    started = _server_started()
    workers = _start_workers(concurrency, events, workdir / f"worker-c{concurrency}.log")
    try:
        t_queued = time.time()
        build = services.full_build_start(triggered_by="benchmark")
        deadline = time.monotonic() + 3 * 3600
        while time.monotonic() < deadline:
            try:
                build.refresh_from_db()
                if started is not None and _server_started() != started:
                    raise DatabaseRestarted(f"PostgreSQL restarted during build #{build.pk}")
            except (OperationalError, InterfaceError) as exc:
                connection.close()
                if started is not None and _server_started() != started:
                    raise DatabaseRestarted(f"PostgreSQL restarted during build #{build.pk}") from exc
                raise
            if build.status in (BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let the last task_postrun line land
    finally:
        _stop_workers(workers)
    if build.status != BuildRun.Status.SUCCEEDED:
        if started is not None and _server_started() != started:
            raise DatabaseRestarted(f"PostgreSQL restarted during build #{build.pk}: {build.error}")
        raise RuntimeError(f"Build #{build.pk} ended {build.status}: {build.error}")
    ev = _events(events)
    starts = {e["task"]: [] for e in ev}
    ends = {e["task"]: [] for e in ev}
    for e in ev:
        (starts if e["phase"] == "start" else ends)[e["task"]].append(e["t"])
    chunk_starts = starts.get("recommendations.build_score_chunk", [])
    chunk_ends = ends.get("recommendations.build_score_chunk", [])
    # The fan-out starts with the first task of the chord's header: a chunk or a part (build_part).
    header_starts = chunk_starts + starts.get("recommendations.build_part", [])
    finalize_end = max(ends.get("recommendations.build_finalize", [build.finished_at.timestamp()]))
    prepare_start = min(starts.get("recommendations.full_build_fan_out", [t_queued]))
    prepare_end = max(ends.get("recommendations.full_build_fan_out", [min(chunk_starts, default=t_queued)]))
    pids = sorted({e["pid"] for e in ev})
    return {
        "workers": concurrency,
        "build_id": build.pk,
        "timings": dict(build.timings),
        "tuning": dict(build.tuning or {}),
        "algorithm_params": dict(build.params or {}),
        "counts": dict(build.counts),
        "stored_picks": UserRecommendation.objects.filter(build_id=build.pk).count(),
        "stored_neighbours": SimilarItem.objects.filter(build_id=build.pk).count(),
        "chunks": len(chunk_ends),
        "wall_end_to_end": finalize_end - t_queued,
        "wall_prepare": prepare_end - prepare_start,
        "wall_fanout": finalize_end - min(header_starts) if header_starts else None,
        "wall_chunks": max(chunk_ends) - min(chunk_starts) if chunk_starts else None,
        "pool_pids": pids,
        "chunks_per_pid": {str(p): sum(1 for e in ev if e["pid"] == p and e["phase"] == "end"
                                       and e["task"] == "recommendations.build_score_chunk") for p in pids},
        "parts_by_pid": {str(p): [e["args"][1] for e in ev if e["pid"] == p and e["phase"] == "end"
                                  and e["task"] == "recommendations.build_part"] for p in pids},
        "peak_rss_mib_worker": max((e["maxrss_kb"] for e in ev), default=0) / 1024,
        "peak_rss_mib_by_pid": {str(p): max(e["maxrss_kb"] for e in ev if e["pid"] == p) / 1024 for p in pids},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "served": _served_check(build.pk),
        "cpu_by_task": _cpu_by_task(ev),
    }


def refresh_latency(workdir: Path, *, events: int, burst: int, concurrency: int = 1, seed: int = 0) -> dict[str, Any]:
    """Time a new rating -> that user's picks refreshed from the active model by a real worker.

    Each event is one ``Score`` saved, in its own transaction, by a user who has stored picks,
    for the item at the top of them; the model's ``post_save`` queues the user's refresh on
    commit, debounced (``REFRESH_DEBOUNCE_SECONDS``: the task waits that long for more events
    of the same user). The clock stops when the refresh has committed (``UserRefresh.
    refreshed_at`` set after the save, in the same transaction as the picks), and the rated item
    must then have left the user's stored picks. First one event on a fresh worker process
    (it loads the build's model: reported apart), then ``events`` one at a time (a quiet site),
    then ``burst`` users at once (a queue on the worker).
    """
    import datetime as dt

    import numpy as np

    from recommendations.conf import app_settings
    from recommendations.models import BuildRun, UserRecommendation, UserRefresh
    from tests.recommendations.testapp.models import Score

    build = BuildRun.objects.get(is_active=True)
    tops = list(UserRecommendation.objects.filter(build=build, rank=1).order_by("user_id").values_list("user_id", "object_id"))
    random.Random(seed).shuffle(tops)
    todo = iter(tops)
    stale: list[Any] = []  # users whose rated item was still in their picks after the refresh

    def rate() -> tuple[Any, str, float]:
        user_id, object_id = next(todo)
        t0 = time.time()
        Score.objects.create(user_id=user_id, item_id=uuid.UUID(object_id), stars=5)  # autocommit: on_commit runs now
        return user_id, object_id, t0

    def wait(pending: list[tuple[Any, str, float]], timeout: float = 60.0) -> list[float]:
        latencies: dict[Any, float] = {}
        deadline = time.monotonic() + timeout
        while len(latencies) < len(pending) and time.monotonic() < deadline:
            for user_id, _, t0 in pending:
                if user_id not in latencies and UserRefresh.objects.filter(
                        user_id=user_id, refreshed_at__gte=dt.datetime.fromtimestamp(t0, dt.timezone.utc)).exists():
                    latencies[user_id] = time.time() - t0
            time.sleep(0.01)
        for user_id, object_id, _ in pending:
            if user_id in latencies and UserRecommendation.objects.filter(build=build, user_id=user_id,
                                                                          object_id=object_id).exists():
                stale.append(user_id)
        return [latencies.get(user_id, math.inf) for user_id, _, _ in pending]

    _flush_redis()
    (workdir / "events-refresh.jsonl").unlink(missing_ok=True)
    workers = _start_workers(concurrency, workdir / "events-refresh.jsonl", workdir / "worker-refresh.log")
    try:
        first = wait([rate()])[0]
        quiet = []
        for _ in range(events):
            quiet += wait([rate()])
        at_once = wait([rate() for _ in range(burst)]) if burst else []
    finally:
        _stop_workers(workers)
    pct = lambda values, q: float(np.percentile(values, q)) if values else None  # noqa: E731
    return {"debounce_s": app_settings.REFRESH_DEBOUNCE_SECONDS, "workers": concurrency, "first_s": first,
            "events": len(quiet), "p50_s": pct(quiet, 50), "p95_s": pct(quiet, 95), "max_s": max(quiet, default=None),
            "burst": len(at_once), "burst_p50_s": pct(at_once, 50), "burst_p95_s": pct(at_once, 95),
            "burst_max_s": max(at_once, default=None), "stale": len(stale),
            "loadavg": os.getloadavg()}


def _cpu_by_task(ev: list[dict]) -> dict[str, float]:
    """CPU seconds per task name (end minus start in the same process), summed over deliveries.

    Unlike wall times these hardly move with the load of the shared machine: they compare the
    work of two versions of the code, and the prepare task's is the serial part of a build.
    """
    out: dict[str, float] = {}
    open_: dict[tuple, dict] = {}
    for e in ev:
        if "cpu" not in e:
            continue
        key = (e["pid"], e["task"])
        if e["phase"] == "start":
            open_[key] = e
        elif key in open_:
            name = e["task"].rsplit(".", 1)[-1]
            out[name] = out.get(name, 0.0) + e["cpu"] - open_.pop(key)["cpu"]
    return out


def chunk_size_for(n_users: int, workers: int, max_size: int, per_worker: int = 4) -> int:
    """Users per chunk: at least ``per_worker`` chunks per worker process, a multiple of ``workers`` chunks,
    and at most ``max_size`` users per chunk (a chunk's dense score block is users x items).

    With few chunks the last round leaves a worker idle: 7 chunks on 2 workers cap the speed-up at 7/4 = 1.75x.
    """
    n_chunks = max(per_worker * workers, -(-n_users // max_size))
    n_chunks = -(-n_chunks // workers) * workers
    return max(1, -(-n_users // n_chunks))


def _cpu_work(n: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t


def parallel_probe(n: int = 10_000_000) -> dict[str, float]:
    """How much faster 2 processes finish 2 equal pure-Python tasks than 1 process finishes 1, right now.

    On an idle 2-core machine this is about 2; on a shared one it is the ceiling of any 1 -> 2 worker speedup.
    """
    import multiprocessing

    one = _cpu_work(n)
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        t = time.perf_counter()
        pool.map(_cpu_work, [n, n])
        two = time.perf_counter() - t
    return {"one_task_s": one, "two_tasks_two_processes_s": two, "speedup_ceiling": 2 * one / two}


def _profile_in_process(top: int = 30, chunks: int = 3) -> dict[str, Any]:
    """cProfile the prepare stage and ``chunks`` chunks of a build run in this process."""
    import cProfile
    import io
    import pstats

    from recommendations import services
    from recommendations.models import BuildRun

    from threadpoolctl import threadpool_limits

    build = BuildRun.objects.create(triggered_by="benchmark-profile", algorithm=services.algorithm_settings()[0])
    out: dict[str, Any] = {}
    with threadpool_limits(1):  # like the workers: one BLAS thread
        _profile_stages(build.pk, out, top, chunks)
    build.refresh_from_db()
    out["timings"] = dict(build.timings)
    services.build_fail(build_id=build.pk, error="profiling run, discarded")
    return out


def _profile_stages(build_id: int, out: dict[str, Any], top: int, chunks: int) -> None:
    import cProfile

    from recommendations import services

    profiler = cProfile.Profile()
    profiler.enable()
    spans = services.build_prepare(build_id=build_id)
    profiler.disable()
    out["prepare"] = _stats_text(profiler, top)
    profiler = cProfile.Profile()
    n_users = 0
    t = time.perf_counter()
    profiler.enable()
    for start, stop in spans[:chunks]:
        services.build_score_chunk(build_id=build_id, start=start, stop=stop)
        n_users += stop - start
    profiler.disable()
    out["chunks"] = _stats_text(profiler, top)
    out["chunk_users"] = n_users
    out["chunk_seconds_profiled"] = time.perf_counter() - t


def _stats_text(profiler, top: int) -> str:
    import io
    import pstats

    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)
    text = stream.getvalue()
    return text[text.find("ncalls") - 1 if "ncalls" in text else 0:]


def child_run(args: argparse.Namespace) -> None:
    """Run one (backend, data set) in this process and write its JSON to ``args.json_out``."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    os.environ["BRE_PIPELINE_BROKER_URL"] = BROKER
    os.environ["BRE_PIPELINE_RESULT_BACKEND"] = BACKEND_URL
    sys.path.insert(0, str(ROOT))
    django.setup()
    import bre_site.celery  # noqa: F401  (the Celery app that tasks are sent with)
    from django.core.management import call_command
    from django.db import connection

    workdir = Path(args.json_out).parent
    variant = os.environ.get("BRE_PIPELINE_SERVICES_SOURCE")
    result: dict[str, Any] = {"backend": connection.vendor, "started": _now(),
                              "dataset": args.dataset + (f" (what-if: {Path(variant).name})" if variant else ""),
                              "loadavg_start": os.getloadavg(), "chunk_size": int(os.environ["BRE_PIPELINE_CHUNK_SIZE"])}
    log(f"{args.dataset} on {connection.vendor}: migrating")
    call_command("migrate", verbosity=0)
    t = time.perf_counter()
    if args.dataset == "movielens-1m":
        info = load_movielens(Path(args.movielens_dir))
        if info is None:
            log(f"MovieLens-1M not found in {args.movielens_dir}: skipped")
            result["skipped"] = f"no ratings in {args.movielens_dir}"
            Path(args.json_out).write_text(json.dumps(result))
            return
    else:
        info = load_synthetic(int(args.dataset.split("-")[1]), n_items=args.items)
    result["data"] = info
    result["data_load_seconds"] = time.perf_counter() - t
    size = chunk_size_for(info["users"], max(args.workers), int(os.environ["BRE_PIPELINE_CHUNK_SIZE"]))
    os.environ["BRE_PIPELINE_CHUNK_SIZE"] = str(size)  # the workers read it at start
    result["chunk_size"] = size
    log(f"loaded {info['interactions']:,} interactions, {info['users']:,} users, {info['items']:,} items "
        f"in {result['data_load_seconds']:.1f} s (not counted); load average {loadavg()}")
    result["runs"] = []
    # Rounds interleave the worker counts (1, 2, 1, 2, ...), so that the host's slow spells fall on both.
    for round_, concurrency in ((r, c) for r in range(1, args.rounds + 1) for c in args.workers):
        log(f"full build with {concurrency} worker process(es), round {round_} of {args.rounds}; load average {loadavg()}")
        run = _build_with_retries(concurrency, workdir)
        run["round"], run["rounds"] = round_, args.rounds
        run["probe"] = parallel_probe()
        log(f"  parallel probe after the run: 2 processes are {run['probe']['speedup_ceiling']:.2f}x faster than 1")
        result["runs"].append(run)
        log(f"  {concurrency} worker(s): end to end {run['wall_end_to_end']:.1f} s, fan-out {run['wall_fanout']:.1f} s, "
            f"timings {run['timings']}, peak worker RSS {run['peak_rss_mib_worker']:.0f} MiB; served "
            f"{run['served']['with_picks']}/{run['served']['users']} users, median {run['served']['median_ms']:.1f} ms")
        Path(args.json_out).write_text(json.dumps(result, default=str))
    if args.refresh_events:
        log(f"incremental refresh: {args.refresh_events} ratings one at a time, then {args.refresh_burst} at once; "
            f"load average {loadavg()}")
        result["refresh"] = refresh_latency(workdir, events=args.refresh_events, burst=args.refresh_burst)
        f = result["refresh"]
        log(f"  first (fresh worker) {f['first_s']:.2f} s; one at a time p50 {f['p50_s']:.2f} s, p95 {f['p95_s']:.2f} s, "
            f"max {f['max_s']:.2f} s; burst of {f['burst']}: p95 {_f(f['burst_p95_s'], 2)} s; stale picks {f['stale']}")
        Path(args.json_out).write_text(json.dumps(result, default=str))
    if args.profile:
        log("profiling the build in process (cProfile)")
        result["profile"] = _profile_in_process()
    result["orchestrator_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["finished"] = _now()
    Path(args.json_out).write_text(json.dumps(result, default=str))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- the parent: databases, child runs, report -------------------------------------------------------------------


def _create_db(backend: str) -> str:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{SQLITE_PATH}"
    _drop_db(backend)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", PG_DB], check=True)
    return PG_URL


def _drop_db(backend: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    else:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", PG_DB], check=False)


def _parse_scale(text: str) -> int:
    text = text.strip().upper()
    factor = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * factor)


def run_all(args: argparse.Namespace) -> list[dict]:
    datasets = []
    if "movielens" in args.data:
        datasets.append("movielens-1m")
    if "synthetic" in args.data:
        datasets += [f"synthetic-{_parse_scale(s)}" for s in args.scale.split(",")]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    synthetic_backends = (args.synthetic_backends or args.backends).split(",")
    for backend in dict.fromkeys(args.backends.split(",") + synthetic_backends):
        for dataset in datasets:
            synthetic = dataset.startswith("synthetic")
            if backend not in (synthetic_backends if synthetic else args.backends.split(",")):
                continue
            workers = (args.synthetic_workers or args.workers) if synthetic else args.workers
            url = _create_db(backend)
            out = RUNS_DIR / f"{stamp}-{backend}-{dataset}.json"
            env = dict(os.environ, BRE_PIPELINE_DATABASE_URL=url, BRE_PIPELINE_CHUNK_SIZE=str(args.chunk_size),
                       PYTHONPATH=str(ROOT))
            command = [sys.executable, str(Path(__file__).resolve()), "--child", "--dataset", dataset,
                       "--json-out", str(out), "--workers", ",".join(map(str, workers)), "--rounds", str(args.rounds),
                       "--refresh-events", str(args.refresh_events), "--refresh-burst", str(args.refresh_burst),
                       "--movielens-dir", args.movielens_dir, "--items", str(args.items)]
            if args.profile:
                command.append("--profile")
            if args.services_source:
                env["BRE_PIPELINE_SERVICES_SOURCE"] = str(Path(args.services_source).resolve())
            try:
                code = subprocess.run(command, cwd=ROOT, env=env).returncode
            finally:
                if not args.keep_db:
                    _drop_db(backend)
            if out.exists():
                result = json.loads(out.read_text())
                result["exit_code"] = code
                results.append(result)
            else:
                results.append({"backend": backend, "dataset": dataset, "error": f"exit code {code}, no result"})
    return results


def _f(x, digits=1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def stage_row(result: dict, run: dict) -> dict[str, Any]:
    t = run["timings"]
    load, fit, write = t.get("load", 0.0), t.get("fit", 0.0), t.get("write", 0.0)
    load_state, score, picks, switch = t.get("load_state", 0.0), t.get("score", 0.0), t.get("write_picks", 0.0), t.get("switch", 0.0)
    total = load + fit + write + load_state + score + picks + switch
    compute = fit + score
    return {"load": load, "fit": fit, "write": write, "load_state": load_state, "score": score, "write_picks": picks,
            "switch": switch, "write_wait": t.get("write_wait"), "total": total, "compute": compute, "ratio": total / compute if compute else math.inf}


CARRIED_TABLES = ("## Stages (seconds) per run", "## 1 worker against 2 workers (fan-out stage)",
                  "## Served results and memory", "## Incremental refresh")


def carried_rows(path: Path, results: list[dict]) -> dict[str, list[str]]:
    """Table rows of an earlier report (``--merge old.md``) for the (data, backend) pairs not measured now.

    The rows are copied verbatim, per table; ``"provenance"`` holds the earlier report's command
    and date lines, ``"goals"`` its growth goal lines for backends with no synthetic run now.
    """
    fresh = {(r["dataset"], r["backend"]) for r in results if r.get("runs")}
    fresh_growth = {r["backend"] for r in results if r.get("runs") and r["dataset"].startswith("synthetic")}
    out: dict[str, list[str]] = {title: [] for title in (*CARRIED_TABLES, "provenance", "goals")}
    section = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            section = line.strip()
        elif section is None and line.startswith(("- Command:", "- Date:", "- Code:")):
            out["provenance"].append(line[2:])
        elif section in CARRIED_TABLES and line.startswith("| ") and not line.startswith("| data |"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if (cells[0], cells[1]) not in fresh:
                out[section].append(line)
        elif section == "## Goals" and line.startswith("- growth on "):
            if line.split()[3].rstrip(",") not in fresh_growth:
                note = " (carried over from the earlier report)"
                out["goals"].append(line if line.endswith(note) else line + note)
    return out


def report(results: list[dict], command: str, carried: dict[str, list[str]] | None = None) -> str:
    carried = carried or {}
    lines = [
        "# Pipeline benchmark: end-to-end full build, database -> Celery workers -> stored, served picks",
        "",
        f"- Command: `{command}`",
        f"- Date: {_now()}",
        f"- Machine: {os.cpu_count()} cores, {_mem_gib():.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; shared with other engineers' runs (load average in each table).",
        f"- Code: {_git_state()}",
        "- Build: `services.full_build_start` queues the real `full_build_fan_out` task; Celery workers "
        f"(`celery -A bre_site worker -c N --pool prefork`, broker {BROKER}, results {BACKEND_URL}, BLAS threads 1 "
        "per process; the prepare task's `auto` fit runs its iALS component in a second thread beside the item-item "
        "components, `Auto(n_threads=0)`, so it uses up to 2 cores even with 1 worker: see the CPU table) prepare (load, fit, write), fan out a chord of the parts (`build_part`: neighbour lists, "
        "rating model) and the user chunks (`build_score_chunk`) and switch in `build_finalize`. Algorithm `auto` (the production default), testapp models "
        "(Item with UUID pk, Score/Like) via `benchmarks/pipeline_settings.py`.",
        "- Stage seconds come from `BuildRun.timings`: load, fit, write (artifacts, popular) from the "
        "prepare task plus fit and write of the parts (neighbours, rating model; runs before they were tasks did them "
        "in the prepare task); load_state, score, write_picks summed over chunks (worker-seconds; lock wait is the part of "
        "write_picks spent waiting for the chunk write lock, — where the code did not record it); switch from finalize. "
        "`total` = sum of all stages, `compute` = fit + score; the ratio total / compute is the database and "
        "plumbing overhead on top of the pure compute.",
        "- Wall times come from a hook in the workers (task start/end): end to end = queued -> finalize end; "
        "fan-out = first part or chunk start -> finalize end. Data loading is timed apart and not counted.",
    ]
    if any(carried.get(title) for title in CARRIED_TABLES):
        lines.append("- Rows of data sets not measured by this command are carried over verbatim from the earlier "
                     f"report ({'; '.join(carried.get('provenance', []))}).")
    lines.append("")
    ok_results = [r for r in results if r.get("runs")]
    for r in results:
        if r.get("skipped"):
            lines += [f"**{r['dataset']} on {r['backend']}: skipped** ({r['skipped']}).", ""]
        elif r.get("error") or not r.get("runs"):
            lines += [f"**{r['dataset']} on {r['backend']}: failed** ({r.get('error', 'no runs')}).", ""]
    lines += ["## Stages (seconds) per run", "",
              "| data | backend | started | workers | interactions | users | items | load | fit | write | load_state | score | "
              "write_picks | (of which lock wait) | switch | total | compute | total/compute | end to end (wall) | "
              "fan-out (wall) | peak RSS worker MiB | load avg (1 min) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += carried.get(CARRIED_TABLES[0], [])
    for r in ok_results:
        d = r["data"]
        for run in r["runs"]:
            s = stage_row(r, run)
            lines.append(
                f"| {r['dataset']} | {r['backend']} | {r.get('started', '')[11:16]} | {_workers(run)} | "
                f"{d['interactions']:,} | {d['users']:,} | "
                f"{d['items']:,} | {_f(s['load'])} | {_f(s['fit'])} | {_f(s['write'])} | {_f(s['load_state'])} | "
                f"{_f(s['score'])} | {_f(s['write_picks'])} | {_f(s['write_wait'], 2)} | {_f(s['switch'], 2)} | {_f(s['total'])} | "
                f"{_f(s['compute'])} | **{_f(s['ratio'], 2)}** | **{_f(run['wall_end_to_end'])}** | "
                f"{_f(run['wall_fanout'])} | {run['peak_rss_mib_worker']:.0f} | "
                f"{run['loadavg_before'][0]:.1f} -> {run['loadavg_after'][0]:.1f} |")
    lines += ["", "## 1 worker against 2 workers (fan-out stage)", "",
              "The probe column is the speedup that 2 processes got over 1 on a pure-Python CPU task, measured right "
              "after each run: the ceiling that the shared machine allowed at the time (about 2.0 when idle).", "",
              "| data | backend | chunks | fan-out 1 worker s | fan-out 2 workers s | speedup | chunks (+ parts) per process (2 workers) | probe ceiling (1w run, 2w run) | goal >= 1.8x |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += carried.get(CARRIED_TABLES[1], [])
    for r in ok_results:
        pairs = _fanout_pairs(r)
        for by, speedup in pairs:
            label = f" (round {by[1]['round']})" if len(pairs) > 1 else ""
            lines.append(f"| {r['dataset']} | {r['backend']}{label} | {by[2]['chunks']} | {_f(by[1]['wall_fanout'])} | "
                         f"{_f(by[2]['wall_fanout'])} | **{speedup:.2f}x** | {_per_process(by[2])} | "
                         f"{_probe(by[1])}, {_probe(by[2])} | "
                         f"{'met' if speedup >= GOAL_SPEEDUP * 0.95 else 'not met'} |")
        if len(pairs) > 1:
            median = statistics.median(speedup for _, speedup in pairs)
            lines.append(f"| {r['dataset']} | {r['backend']}: **median of {len(pairs)} rounds** | | | | **{median:.2f}x** | | | "
                         f"{'met' if median >= GOAL_SPEEDUP * 0.95 else 'not met'} |")
    cpu_rows = [(r, run) for r in ok_results for run in r["runs"] if run.get("cpu_by_task")]
    if cpu_rows:
        lines += ["", "## CPU seconds per task", "",
                  "From the same hook (process CPU time at each task's start and end, all threads): the work done, "
                  "which moves much less than wall time with the machine's load. `full_build_fan_out` (the prepare task) is "
                  "the serial part of a build; the total is the work that one worker does alone.", "",
                  "| data | backend | workers | full_build_fan_out (prepare) | build_part | build_score_chunk | build_finalize | total | load avg (1 min) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r, run in cpu_rows:
            c = run["cpu_by_task"]
            lines.append(f"| {r['dataset']} | {r['backend']} | {_workers(run)} | {_f(c.get('full_build_fan_out'))} | "
                         f"{_f(c.get('build_part'))} | {_f(c.get('build_score_chunk'))} | {_f(c.get('build_finalize'), 2)} | "
                         f"**{_f(sum(c.values()))}** | {run['loadavg_before'][0]:.1f} -> {run['loadavg_after'][0]:.1f} |")
    lines += ["", "## Served results and memory", "",
              "| data | backend | workers | stored picks | stored neighbours | served users with picks | "
              "recommended_for median ms | p95 ms | peak RSS per worker process MiB | orchestrator peak RSS MiB | data load s (not counted) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += carried.get(CARRIED_TABLES[2], [])
    for r in ok_results:
        for run in r["runs"]:
            sv = run["served"]
            lines.append(
                f"| {r['dataset']} | {r['backend']} | {_workers(run)} | {run['stored_picks']:,} | "
                f"{run['stored_neighbours']:,} | {sv['with_picks']}/{sv['users']} | {_f(sv['median_ms'])} | "
                f"{_f(sv['p95_ms'])} | {', '.join(f'{v:.0f}' for v in run['peak_rss_mib_by_pid'].values())} | "
                f"{r.get('orchestrator_peak_rss_mib', 0):.0f} | {_f(r['data_load_seconds'])} |")
    lines += ["", "## Incremental refresh", "",
              "A new rating -> that user's stored picks recomputed from the active model by a real worker (1 process), "
              "without a full build: each event is one `Score` saved for the item at the top of a user's picks; the "
              "model's `post_save` queues the user's refresh on commit, and the task waits `REFRESH_DEBOUNCE_SECONDS` "
              "for more events of that user before it runs. Timed from the save to the committed refresh (polled every "
              "10 ms); the rated item must have left the picks. The first event on a fresh worker process loads the "
              "build's model and is shown apart; the burst saves ratings of that many users at once.", "",
              "| data | backend | debounce s | first, fresh worker s | events one at a time | p50 s | p95 s | max s | "
              "burst users | burst p50 s | burst p95 s | rated item still in the picks | load avg (1 min) | goal p95 <= 2 s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += carried.get(CARRIED_TABLES[3], [])
    for r in ok_results:
        f = r.get("refresh")
        if f:
            lines.append(f"| {r['dataset']} | {r['backend']} | {f['debounce_s']:g} | {_f(f['first_s'], 2)} | {f['events']} | "
                         f"{_f(f['p50_s'], 2)} | **{_f(f['p95_s'], 2)}** | {_f(f['max_s'], 2)} | {f['burst']} | "
                         f"{_f(f['burst_p50_s'], 2)} | {_f(f['burst_p95_s'], 2)} | {f['stale']} | {f['loadavg'][0]:.1f} | "
                         f"{'met' if f['p95_s'] is not None and f['p95_s'] <= GOAL_REFRESH_P95 and not f['stale'] else 'not met'} |")
    lines += ["", "## Goals", ""] + goals(ok_results) + carried.get("goals", [])
    for r in ok_results:
        if r.get("profile"):
            p = r["profile"]
            lines += ["", f"## cProfile of one in-process build: {r['dataset']} on {r['backend']}", "",
                      f"Timings of the profiled build: `{json.dumps(p['timings'])}` "
                      f"({p['chunk_users']} users scored in the profiled chunks).", "",
                      "Prepare (load, fit, write), top functions by own time:", "", "```", p["prepare"].rstrip(), "```",
                      "", f"{p['chunk_users']} users of chunks (score + write_picks), top functions by own time:", "",
                      "```", p["chunks"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def _workers(run: dict) -> str:
    """The worker count of a run, with its round where the command ran several."""
    return f"{run['workers']} (round {run['round']})" if run.get("rounds", 1) > 1 else str(run["workers"])


def _fanout_pairs(result: dict) -> list[tuple[dict[int, dict], float]]:
    """Per round, the 1- and 2-worker runs and the fan-out speedup between them."""
    pairs = []
    for round_ in sorted({run.get("round", 1) for run in result["runs"]}):
        by = {run["workers"]: run for run in result["runs"] if run.get("round", 1) == round_}
        if 1 in by and 2 in by and by[1]["wall_fanout"] and by[2]["wall_fanout"]:
            pairs.append((by, by[1]["wall_fanout"] / by[2]["wall_fanout"]))
    return pairs


def _per_process(run: dict) -> str:
    """Chunks per worker process, and the parts each one fitted (runs before parts were tasks have none)."""
    parts = run.get("parts_by_pid", {})
    return ", ".join(f"{n}" + (f" + {'/'.join(parts[pid])}" if parts.get(pid) else "")
                     for pid, n in run["chunks_per_pid"].items())


def _probe(run: dict) -> str:
    return f"{run['probe']['speedup_ceiling']:.2f}x" if run.get("probe") else "—"


def goals(results: list[dict]) -> list[str]:
    out = []
    ratios = [(r, run, stage_row(r, run)["ratio"]) for r in results for run in r["runs"]]
    if ratios:
        worst = max(ratios, key=lambda x: x[2])
        met = all(x[2] <= GOAL_RATIO for x in ratios)
        out.append(f"- total <= 2x compute: **{'met' if met else 'not met'}**: met in {sum(x[2] <= GOAL_RATIO for x in ratios)}"
                   f" of {len(ratios)} runs (worst {worst[2]:.2f}: {worst[0]['dataset']} on {worst[0]['backend']}, "
                   f"{worst[1]['workers']} worker(s)).")
    for label, whatif in (("current code", False), ("what-if with the proposed patch", True)):
        ml = [(r, run) for r in results if r["dataset"].startswith("movielens-1m")
              and ("what-if" in r["dataset"]) == whatif for run in r["runs"]]
        if ml:
            walls = ", ".join(f"{r['backend']} {run['workers']}w {run['wall_end_to_end']:.1f} s" for r, run in ml)
            met = [run["wall_end_to_end"] <= GOAL_ML1M_SECONDS for _, run in ml]
            verdict = "met" if all(met) else ("met in some runs" if any(met) else "not met")
            out.append(f"- MovieLens-1M end to end <= 30 s, {label}: **{verdict}** ({walls}).")
    for backend in sorted({r["backend"] for r in results}):
        for whatif in (False, True):
            series = sorted(((r["data"]["interactions"], min(run["wall_end_to_end"] for run in r["runs"]))
                             for r in results if r["backend"] == backend and r["dataset"].startswith("synthetic")
                             and ("what-if" in r["dataset"]) == whatif))
            if len(series) >= 2:
                (n0, t0), (n1, t1) = series[0], series[-1]
                slope = math.log(t1 / t0) / math.log(n1 / n0)
                per = ", ".join(f"{n / 1e6:g}M: {t:.1f} s ({1e6 * t / n:.1f} s per million)" for n, t in series)
                out.append(f"- growth on {backend}{' (what-if with the proposed patch)' if whatif else ''}, best "
                           f"end-to-end wall per scale: {per}; log-log slope {slope:.2f} -> "
                           f"**{'linear or better (met)' if slope <= 1.1 else 'faster than linear (not met)'}**.")
    refreshes = [(r, r["refresh"]) for r in results if r.get("refresh")]
    if refreshes:
        met = all(f["p95_s"] is not None and f["p95_s"] <= GOAL_REFRESH_P95 and not f["stale"] for _, f in refreshes)
        text = ", ".join(f"{r['dataset']} {r['backend']} p95 {f['p95_s']:.2f} s" for r, f in refreshes)
        out.append(f"- incremental refresh within 2 s (p95), one rating at a time: **{'met' if met else 'not met'}** ({text}).")
    speedups = []
    for r in results:
        pairs = _fanout_pairs(r)
        if pairs:
            values = [speedup for _, speedup in pairs]
            speedups.append((r, statistics.median(values), values))
    if speedups:
        text = ", ".join(f"{r['dataset']} {r['backend']} {s:.2f}x"
                         + (f" (median of {', '.join(f'{v:.2f}' for v in values)})" if len(values) > 1 else "")
                         for r, s, values in speedups)
        met = all(s >= GOAL_SPEEDUP * 0.95 for _, s, _ in speedups)
        out.append(f"- 2 workers about 1.8x faster than 1 on the fan-out: **{'met' if met else 'not met'}** ({text}).")
    return out


def _git_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.rstrip("\n")

    dirty = [line[3:] for line in git("status", "--short", "--", "recommendations").splitlines()]
    text = f"commit {git('rev-parse', '--short', 'HEAD')}"
    if dirty:
        text += f", with uncommitted changes (others' work in progress) in {', '.join(f'`{d}`' for d in dirty)}"
    return text + "."


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="movielens,synthetic", help="movielens, synthetic or both (comma separated)")
    parser.add_argument("--scale", default="1M", help="synthetic sizes, e.g. 1M,3M,10M")
    parser.add_argument("--items", type=int, default=25_000, help="items of the synthetic data set")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--rounds", type=int, default=1,
                        help="build each worker count this many times, interleaved (1, 2, 1, 2, ...); the fan-out "
                             "goal is judged on the median speedup of the rounds")
    parser.add_argument("--refresh-events", type=int, default=40,
                        help="after the builds, time this many ratings one at a time -> the user's picks refreshed "
                             "by a real worker (0: skip)")
    parser.add_argument("--refresh-burst", type=int, default=10, help="then this many users' ratings at once")
    parser.add_argument("--synthetic-backends", help="backends of the synthetic runs (default: --backends)")
    parser.add_argument("--synthetic-workers", type=lambda s: [int(x) for x in s.split(",")],
                        help="worker counts of the synthetic runs (default: --workers)")
    parser.add_argument("--chunk-size", type=int, default=1000,
                        help="most users per chunk (RECOMMENDATIONS['BUILD_CHUNK_SIZE']); the run picks a size that "
                             "gives at least 4 chunks per worker process and a multiple of the worker count")
    parser.add_argument("--movielens-dir", default=str(MOVIELENS_DIR))
    parser.add_argument("--profile", action="store_true", help="also cProfile one in-process build")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--services-source", help="what-if: run the workers with this proposed services.py "
                        "executed into recommendations.services (the repository file is not changed)")
    parser.add_argument("--out", default=str(RESULTS), help="markdown report ('-' to skip writing)")
    parser.add_argument("--merge", nargs="*", default=[],
                        help="earlier run JSON files to include in the report, or an earlier report (.md) whose rows "
                             "of the data sets not measured now are carried over verbatim")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_run(args)
        return 0
    if not shutil.which("createdb") and "postgresql" in f"{args.backends},{args.synthetic_backends}":
        log("createdb not found: PostgreSQL skipped")
        args.backends = ",".join(b for b in args.backends.split(",") if b != "postgresql")
        if args.synthetic_backends:
            args.synthetic_backends = ",".join(b for b in args.synthetic_backends.split(",") if b != "postgresql")
    command = "python benchmarks/pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:])
    log(f"machine: {os.cpu_count()} cores, load average {loadavg()}")
    results = [json.loads(Path(p).read_text()) for p in args.merge if not p.endswith(".md")] + run_all(args)
    carried: dict[str, list[str]] = {}
    for p in (p for p in args.merge if p.endswith(".md")):
        for key, rows in carried_rows(Path(p), results).items():
            carried.setdefault(key, []).extend(rows)
    text = report(results, command, carried)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
