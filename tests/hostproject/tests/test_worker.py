"""The host's own Celery app runs a queued build, refreshes and customer deletes in real worker threads (not eager)."""
from __future__ import annotations

import logging
import time

import pytest

from recommendations import selectors, services
from recommendations.models import BuildRun, UserRecommendation, UserRefresh
from tests.hostproject.celery import app
from tests.hostproject.shop.models import Purchase
from tests.hostproject.tests.shopdata import GROUPS, shop_create

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def worker():
    """Two worker threads of the host's app on its in-memory broker and result backend."""
    from celery.contrib.testing.worker import start_worker

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, concurrency=2, pool="threads", perform_ping_check=False, shutdown_timeout=30) as w:
            yield w
    finally:
        app.conf.task_always_eager = previous


def _wait(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_builds_and_refreshes(worker, caplog):
    products, customers = shop_create()
    build = services.full_build_start(triggered_by="host-worker")
    assert _wait(lambda: BuildRun.objects.get(pk=build.pk).status in ("succeeded", "failed"))
    build.refresh_from_db()
    assert build.status == "succeeded" and build.is_active, build.error
    # 8 customers in chunks of BUILD_CHUNK_SIZE=3: the chord fanned out over 3 tasks.
    assert UserRecommendation.objects.filter(build=build).values("user").distinct().count() == 8
    assert selectors.recommended_for(customers["baking2"], n=1)[0].name == "Proving basket"

    customer = customers["camping1"]
    Purchase.objects.create(buyer=customer, product=products["Stand mixer"])
    assert _wait(lambda: UserRecommendation.objects.filter(build=build, user=customer, source="refresh").exists())
    picks = selectors.recommended_for(customer, n=4)
    # Still the one camping product they lack first; the mixer's baking neighbours now follow, explained by it.
    assert picks[0].name == "Sleeping bag"
    assert any(p.name in GROUPS["baking"] and "Stand mixer" in p.rec_because for p in picks[1:])

    # Deleted customers: one with a refresh just queued for them, one outright. The worker logs no error.
    caplog.set_level(logging.INFO)
    queued, outright = customers["baking3"], customers["camping3"]
    Purchase.objects.create(buyer=queued, product=products["Tent for two"])
    gone = [queued.pk, outright.pk]
    queued.delete()
    outright.delete()
    other = customers["baking0"]
    Purchase.objects.create(buyer=other, product=products["Head torch"])
    assert _wait(lambda: UserRecommendation.objects.filter(build=build, user=other, source="refresh").exists())
    time.sleep(1)  # the two workers have drained the queue
    assert not UserRecommendation.objects.filter(user_id__in=gone).exists()
    assert not UserRefresh.objects.filter(user_id__in=gone).exists()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
