"""With the broker down, a save returns at once, the refresh stays pending, and runs once the broker is back.

The host keeps Celery's defaults (no publish retry policy) and a Redis broker and result store
that nobody listens on (a closed port): only the app's own send options bound the wait.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

import pytest

from recommendations import selectors, services, tasks
from recommendations.models import UserRecommendation, UserRefresh
from tests.hostproject.celery import app
from tests.hostproject.shop.models import Customer, Review
from tests.hostproject.tests.shopdata import shop_create

CLOSED = "redis://127.0.0.1:1/0"


@contextmanager
def broker_down(retry_policy=None):
    """Publish for real (not eagerly) to a broker and result store on a port where nothing listens."""
    conf = app.conf
    saved = {key: conf[key] for key in ("task_always_eager", "broker_url", "result_backend",
                                        "task_publish_retry_policy")}
    saved_env = {key: os.environ.get(key) for key in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}

    def reset():
        for attr in ("queues", "default_queue", "router", "send_task_message"):
            app.amqp.__dict__.pop(attr, None)
        app._pool = None
        app.amqp._producer_pool = None
        app._backend_cache = None
        app._local = threading.local()

    conf.task_always_eager = False
    if retry_policy is not None:
        conf.task_publish_retry_policy = retry_policy
    conf.broker_url = os.environ["CELERY_BROKER_URL"] = CLOSED
    conf.result_backend = os.environ["CELERY_RESULT_BACKEND"] = "redis://127.0.0.1:1/1"
    reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            conf[key] = value
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset()


@pytest.fixture
def shop(db):
    products, customers = shop_create()
    services.full_build_run()
    return {"products": products, "customers": customers}


def _picks(customer):
    return list(UserRecommendation.objects.filter(build__is_active=True, user=customer)
                .order_by("rank").values_list("object_id", "source"))


@pytest.mark.parametrize("host_policy", [None, {"max_retries": 10, "interval_start": 1, "interval_max": 2}],
                         ids=["celery-defaults", "host-retries-longer"])
def test_a_rating_saved_while_the_broker_is_down(shop, django_capture_on_commit_callbacks, host_policy):
    customer = shop["customers"]["camping1"]
    before = _picks(customer)
    assert services.pending_refreshes_list() == []
    with broker_down(host_policy):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            Review.objects.create(author=customer, product=shop["products"]["Stand mixer"], stars=5)
        took = time.monotonic() - started
    assert callbacks and took < 1.5, f"the save waited {took:.1f} s on a dead broker"
    # Nothing is lost: the request is recorded and waits for the broker.
    assert services.pending_refreshes_list() == [customer.pk]
    assert _picks(customer) == before
    # The broker is back: the periodic task (beat) refreshes every pending reader.
    assert tasks.pending_refreshes_run.delay().get() == 1
    after = _picks(customer)
    assert after != before and {source for _, source in after} == {"refresh"}
    assert services.pending_refreshes_list() == []
    state = UserRefresh.objects.get(user=customer)
    assert state.refreshed_at >= state.requested_at
    assert any("Stand mixer" in p.rec_because for p in selectors.recommended_for(customer, n=6))


def test_build_now_while_the_broker_is_down(transactional_db, shop, client, django_capture_on_commit_callbacks):
    # The admin's button and the API, with real commits: no 500 and no long wait; the build says why it never ran.
    from recommendations.models import BuildRun

    client.force_login(Customer.objects.create_superuser("boss@example.com", "pw"))
    with broker_down():
        started = time.monotonic()
        response = client.post("/admin/recommendations/buildrun/build-now/", follow=True)
        took = time.monotonic() - started
        api = client.post("/api/builds/")
    assert response.status_code == 200 and took < 1.5, f"{response.status_code} after {took:.1f} s"
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages and messages[0][0] == "error" and "could not be queued" in messages[0][1], messages
    assert api.status_code == 503 and "could not be queued" in api.json()["detail"], api.content
    failed = BuildRun.objects.exclude(is_active=True).order_by("pk")
    assert [b.status for b in failed] == [BuildRun.Status.FAILED] * 2
    assert all("broker" in b.error for b in failed)
    # The broker is back (eager here): the next build runs.
    with django_capture_on_commit_callbacks(execute=True):
        build = services.full_build_start(triggered_by="after")
    build.refresh_from_db()
    assert build.status == BuildRun.Status.SUCCEEDED and build.is_active
