"""``manage.py recommendations status``: the queue depth in eager mode, on the filesystem broker and on Redis."""
from __future__ import annotations

import io
import uuid
from types import SimpleNamespace

import pytest
from celery import Celery, current_app
from django.core.management import call_command

from recommendations.management.commands.recommendations import Command


@pytest.fixture
def celery_conf(monkeypatch):
    """The configuration of a Celery app of its own, the current one during the test (the site's app keeps its caches)."""
    # Celery reads these variables before its configuration (CI sets them), so the tests' broker would be ignored.
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
        monkeypatch.delenv(name, raising=False)
    previous = current_app._get_current_object()
    app = Celery("status-test", set_as_current=True)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    try:
        yield app.conf
    finally:
        previous.set_current()
        app.close()


def _depth_line(**kwargs) -> str:
    out = io.StringIO()
    call_command("recommendations", "status", stdout=out, **kwargs)
    return next(line for line in out.getvalue().splitlines() if line.startswith("Queue depth:"))


def _publish(queue: str, n: int = 1) -> None:
    with current_app.connection_for_write() as conn:
        for _ in range(n):
            current_app.send_task("recommendations.builds_prune", queue=queue, connection=conn)


def _use(conf, url: str, queue: str, **transport_options) -> None:
    conf.update(task_always_eager=False, broker_url=url, broker_read_url=None,
                broker_transport_options=transport_options, task_default_queue=queue)


def test_eager_mode_says_there_is_no_broker(db, celery_conf):
    celery_conf.task_always_eager = True
    assert _depth_line() == "Queue depth: no broker (tasks run eagerly)"


def test_filesystem_broker_counts_the_messages(db, celery_conf, tmp_path):
    queue = f"status-{uuid.uuid4().hex[:8]}"
    _use(celery_conf, "filesystem://", queue, data_folder_in=str(tmp_path), data_folder_out=str(tmp_path))
    assert _depth_line() == f"Queue depth: 0 messages in {queue!r}"
    _publish(queue, 2)
    assert _depth_line() == f"Queue depth: 2 messages in {queue!r}"


def test_redis_reports_zero_for_a_queue_that_does_not_exist_and_counts_messages(db, celery_conf):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/9"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (the suite needs it)")
    queue = f"status-{uuid.uuid4().hex[:8]}"
    _use(celery_conf, url, queue)
    line = _depth_line()
    assert line.startswith(f"Queue depth: 0 messages in {queue!r}") and "unknown" not in line, line
    _publish(queue)
    try:
        assert _depth_line() == f"Queue depth: 1 message in {queue!r}"
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"*{queue}*"))
        if keys:
            client.delete(*keys)


def test_redis_does_not_blame_the_workers_for_an_emptied_queue(db, celery_conf):
    # Redis deletes a queue's list when its last message is taken, though the worker declared it.
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/9"
    queue = f"status-{uuid.uuid4().hex[:8]}"
    _use(celery_conf, url, queue)
    client = redis.Redis.from_url(url)
    try:
        _publish(queue)
        assert client.lpop(queue) is not None and client.exists(f"_kombu.binding.{queue}")
        assert _depth_line() == f"Queue depth: 0 messages in {queue!r}"
    finally:
        client.delete(*[key for key in client.scan_iter(f"*{queue}*")])


def test_an_unreachable_broker_is_reported_plainly_and_quickly(db, celery_conf):
    import time

    _use(celery_conf, "redis://127.0.0.1:1/9", "celery")
    started = time.monotonic()
    line = _depth_line()
    assert time.monotonic() - started < 5
    assert line.startswith("Queue depth: unknown: the broker at redis://") and "is unreachable" in line, line
    assert "Traceback" not in line


def test_build_summary_prints_the_experiment_arms_counts():
    """A build that fitted experiment arms stores their counts as a dict; the summary must still print."""
    build = SimpleNamespace(pk=3, algorithm="auto", tuning={}, timings={"fit": 1.5},
                            counts={"users": 1200, "arms": {"7": 1200}})
    summary = Command._summary(build)
    assert "users 1,200" in summary and "arms {'7': 1200}" in summary
