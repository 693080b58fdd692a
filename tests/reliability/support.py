"""Provides the tools of the fault tests: real worker and server processes, a private Redis, a library, readers."""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = Path(os.environ.get("BRE_VAR_DIR", ROOT / "var")) / "reliability"


def fault_recommendations(*, chunk_size: int, lock_timeout: int) -> dict[str, Any]:
    """Return the site's ``RECOMMENDATIONS`` with a fixed, fast algorithm and the given chunk size and lock lease."""
    from bre_site.settings import RECOMMENDATIONS

    return {
        **RECOMMENDATIONS,
        "ALGORITHM": "itemknn",
        "ALGORITHM_PARAMS": {"top_k": 50},
        "N_RECOMMENDATIONS": 20,
        "N_SIMILAR": 10,
        "BUILD_CHUNK_SIZE": chunk_size,
        "LOCK_TIMEOUT": lock_timeout,
        "REFRESH_DEBOUNCE_SECONDS": 0.5,
        "CONTENT_ON_SAVE": False,
        # The cold model is an iALS fit whose floats may differ between two builds; these tests compare builds row for row.
        "COLD_START": False,
    }


# --- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_database_url() -> str:
    """Return a DATABASE_URL that points a subprocess at the test database of this process."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    if connection.vendor == "postgresql":  # Django's backend or bre_site.postgresql
        auth = quote(s["USER"] or "", safe="")
        if s.get("PASSWORD"):
            auth += ":" + quote(s["PASSWORD"], safe="")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    raise RuntimeError(f"No DATABASE_URL for {s['ENGINE']}")


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def subprocess_env(*, queue: str, chunk_size: int, lock_timeout: int, visibility_timeout: int = 3600,
                   broker_url: str | None = None, result_backend: str | None = None, **extra: str) -> dict[str, str]:
    """Return the environment of a worker or server that shares this test's database, broker and options."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.reliability.settings",
        DATABASE_URL=subprocess_database_url(),
        CELERY_BROKER_URL=broker_url or settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=result_backend or settings.CELERY_RESULT_BACKEND,
        BRE_FAULT_QUEUE=queue,
        BRE_FAULT_CHUNK_SIZE=str(chunk_size),
        BRE_FAULT_LOCK_TIMEOUT=str(lock_timeout),
        CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class ManagedProcess:
    """A subprocess in its own process group, so that a kill reaches its children too (prefork pool)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name, self.argv, self.env = name, argv, env
        self.log_path = LOG_DIR / f"{name}-{os.getpid()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.write_text("")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not log {text!r} in {timeout} s:\n{self.log()[-4000:]}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (kill -9: no cleanup, no acknowledgements)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group (a warm shutdown), then SIGKILL what is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # children left behind by the warm shutdown, if any
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=30)
        self._log.close()


def celery_worker(name: str, env: dict[str, str], *, queue: str, concurrency: int = 1,
                  supervised: bool = False) -> ManagedProcess:
    """Start ``celery -A bre_site worker`` (prefork) on ``queue``; return once it is ready.

    ``supervised`` runs it under scripts/reliability/supervise.sh, which starts it again when it exits.
    """
    celery = Path(sys.executable).with_name("celery")
    argv = [str(ROOT / "scripts" / "reliability" / "supervise.sh")] if supervised else []
    argv += [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
    argv += ["-A", "bre_site", "worker", "-P", "prefork", "-c", str(concurrency), "-Q", queue,
             "-n", f"{name}-{os.getpid()}@%h", "--loglevel=INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"]
    worker = ManagedProcess(name, argv, env).start()
    worker.wait_for_log(" ready.", timeout=90)
    return worker


def gunicorn_server(name: str, env: dict[str, str], *, port: int, workers: int = 1, threads: int = 1) -> ManagedProcess:
    """Start gunicorn serving ``bre_site.wsgi`` on 127.0.0.1:``port``; return once it answers."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    argv = [str(gunicorn), "bre_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "5"]
    server = ManagedProcess(name, argv, env).start()
    wait_http(f"http://127.0.0.1:{port}/api/ping/", timeout=60, process=server)
    return server


def wait_http(url: str, *, timeout: float, process: ManagedProcess | None = None) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status < 500:
                    return
        except Exception:
            if process is not None and not process.alive:
                raise RuntimeError(f"{process.name} exited:\n{process.log()[-4000:]}") from None
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


class PrivateRedis:
    """A redis-server of this test only, on its own port: stopping it never touches the shared one."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: ManagedProcess | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None

    def start(self) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.server = ManagedProcess(f"redis-{self.port}", argv, dict(os.environ)).start()
        deadline = time.monotonic() + 30
        while not self.ping():
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on {self.port} did not start:\n{self.server.log()[-2000:]}")
            time.sleep(0.1)

    def ping(self) -> bool:
        result = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        """Shut the server down without saving (its queued messages are lost, as in a crash)."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        if self.server is not None:
            self.server.stop(timeout=10)


# --- Celery in the test process --------------------------------------------------------------------


@contextmanager
def celery_publishing(*, queue: str, broker_url: str | None = None,
                      result_backend: str | None = None) -> Iterator[None]:
    """Make this process publish for real (not eagerly) to ``queue`` of ``broker_url``."""
    from bre_site.celery import app

    conf = app.conf
    saved = {key: conf[key] for key in ("task_always_eager", "task_default_queue", "broker_url", "result_backend")}

    def reset() -> None:
        for attr in ("queues", "default_queue", "router"):
            app.amqp.__dict__.pop(attr, None)
        app.amqp._rtable = None
        # Only drop this app's references: kombu keeps its pools in global registries keyed by broker URL,
        # so closing them here would hand a closed pool to the next test on the same broker.
        app._pool = None
        app.amqp._producer_pool = None
        app._backend_cache = None
        app._local = threading.local()

    # Celery reads CELERY_BROKER_URL and CELERY_RESULT_BACKEND from the environment before its own settings.
    saved_env = {key: os.environ.get(key) for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    conf.task_always_eager = False
    conf.task_default_queue = queue
    if broker_url:
        conf.broker_url = os.environ["CELERY_BROKER_URL"] = broker_url
    if result_backend:
        conf.result_backend = os.environ["CELERY_RESULT_BACKEND"] = result_backend
    reset()
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_purge(queue)
        except Exception:
            pass
        conf.update(saved)
        reset()


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


# --- data --------------------------------------------------------------------------------------------


def make_library(*, n_users: int, n_books: int, per_user: int, seed: int = 7, prefix: str = "r") -> dict[str, Any]:
    """Create books and readers with reads and ratings in bulk (no signals: no refresh is queued)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.contenttypes.models import ContentType

    from articles.models import Book, Rating, Read

    rng = random.Random(seed)
    topics = ["space", "cooking", "history", "poetry", "chess", "sailing", "gardens", "music"]
    Book.objects.bulk_create([
        Book(title=f"{topics[i % len(topics)].title()} book {i}", authors=f"Author {i % 37}",
             description=f"A book about {topics[i % len(topics)]} and {topics[(i * 3) % len(topics)]}, number {i}.")
        for i in range(n_books)
    ])
    books = list(Book.objects.order_by("pk"))
    User = get_user_model()
    password = make_password(None)
    User.objects.bulk_create([User(username=f"{prefix}{i}", password=password) for i in range(n_users)])
    users = list(User.objects.filter(username__startswith=prefix).order_by("pk"))
    ct = ContentType.objects.get_for_model(Book)
    reads, ratings = [], []
    for index, user in enumerate(users):
        topic = index % len(topics)
        # Readers lean to one topic, so neighbours and picks have structure.
        pool = [b for j, b in enumerate(books) if j % len(topics) == topic] + rng.sample(books, min(20, len(books)))
        for book in rng.sample(pool, min(per_user, len(pool))):
            reads.append(Read(user=user, content_type=ct, object_id=book.pk, dwell_seconds=rng.uniform(5, 600),
                              progress=rng.random()))
            if rng.random() < 0.4:
                ratings.append(Rating(user=user, content_type=ct, object_id=book.pk, stars=rng.randint(1, 5)))
    Read.objects.bulk_create(reads, batch_size=5000)
    Rating.objects.bulk_create(ratings, batch_size=5000, ignore_conflicts=True)
    return {"users": users, "books": books}


# --- readers -----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    at: float
    what: str
    status: int
    seconds: float
    detail: Any = None
    error: str = ""


@dataclass
class Readers:
    """Threads that keep making requests through Django's test client until stopped; every outcome is kept."""

    outcomes: list[Outcome] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, n: int, step: Callable[[Any, int, int], tuple[str, int, Any]], *, user_for=None,
              pause: float = 0.0) -> None:
        """Run ``step(client, reader, iteration) -> (what, status, detail)`` in ``n`` threads."""
        for reader in range(n):
            thread = threading.Thread(target=self._run, args=(reader, step, user_for, pause), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, reader, step, user_for, pause) -> None:
        from django.db import connections
        from django.test import Client

        client = Client(raise_request_exception=True)
        if user_for is not None:
            client.force_login(user_for(reader))
        i = 0
        try:
            while not self.stop_event.is_set():
                t0 = time.monotonic()
                try:
                    what, status, detail = step(client, reader, i)
                    outcome = Outcome(time.time(), what, status, time.monotonic() - t0, detail)
                except Exception as exc:  # a raised exception is a 500 for the reader
                    outcome = Outcome(time.time(), "exception", 500, time.monotonic() - t0, None, repr(exc))
                with self.lock:
                    self.outcomes.append(outcome)
                i += 1
                if pause:
                    time.sleep(pause)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status >= 500 or o.error]

    def summary(self) -> str:
        import statistics

        secs = sorted(o.seconds for o in self.outcomes) or [0.0]
        p99 = secs[min(len(secs) - 1, int(0.99 * len(secs)))]
        return (f"{len(self.outcomes)} requests, {len(self.failures())} failed, "
                f"p50 {statistics.median(secs) * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {secs[-1] * 1000:.0f} ms")
