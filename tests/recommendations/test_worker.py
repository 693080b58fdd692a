"""A real Celery worker against the configured broker builds and refreshes recommendations."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from bre_site.celery import app
from recommendations import selectors, services
from recommendations.models import BuildRun, UserRecommendation
from tests.recommendations.conftest import GENRES
from tests.recommendations.testapp.models import Item, Like

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def real_worker(testapp_settings):
    """Start a worker thread on the configured broker (filesystem by default, Redis on CI)."""
    from celery.contrib.testing.worker import start_worker

    import celery.contrib.testing.tasks  # noqa: F401  (registers celery.ping)

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, concurrency=2, pool="threads", perform_ping_check=False, shutdown_timeout=30) as worker:
            yield worker
    finally:
        app.conf.task_always_eager = previous


def _world():
    items = {}
    for genre, names in GENRES.items():
        for name in names:
            items[name] = Item.objects.create(name=name, description=f"A {genre} book about {name.lower()}.")
    users = {}
    for genre, names in GENRES.items():
        for i in range(4):
            user = get_user_model().objects.create_user(username=f"{genre}{i}", password="x")
            users[user.username] = user
            for j, name in enumerate(names):
                if j != i:
                    Like.objects.create(user=user, item=items[name])
    return items, users


def _wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_worker_runs_a_queued_build_and_a_refresh(real_worker):
    items, users = _world()
    build = services.full_build_start(triggered_by="test")
    assert _wait(lambda: BuildRun.objects.get(pk=build.pk).status in ("succeeded", "failed"))
    build.refresh_from_db()
    assert build.status == "succeeded", build.error
    assert build.is_active
    # The fan-out stored picks for all 8 users, through chunks of BUILD_CHUNK_SIZE=3 users.
    assert UserRecommendation.objects.filter(build=build).values("user").distinct().count() == 8
    assert selectors.recommended_for(users["space0"], n=1)[0].name == "Rockets to Mars"

    # A new like is committed -> a refresh is queued on commit and the worker recomputes the picks.
    cook = users["cooking0"]
    before = list(UserRecommendation.objects.filter(build=build, user=cook).values_list("object_id", flat=True))
    for name in ("Rockets to Mars", "Orbital mechanics for everyone", "Life on the moon"):
        Like.objects.create(user=cook, item=items[name])
    assert _wait(lambda: UserRecommendation.objects.filter(build=build, user=cook, source="refresh").exists())
    after = list(UserRecommendation.objects.filter(build=build, user=cook).values_list("object_id", flat=True))
    assert after != before


def test_an_item_saved_after_a_build_reaches_a_matching_readers_picks_as_new(real_worker, settings):
    """Saving an item queues its content refresh on commit; the worker maps it and places it in matching picks."""
    from django.contrib.contenttypes.models import ContentType

    from tests.recommendations.conftest import TESTAPP_RECOMMENDATIONS

    settings.RECOMMENDATIONS = {**TESTAPP_RECOMMENDATIONS, "COLD_START": True, "EXPLORATION_SHARE": 0,
                                "N_RECOMMENDATIONS": 10}
    items, users = _world()
    build = services.full_build_start(triggered_by="test")
    assert _wait(lambda: BuildRun.objects.get(pk=build.pk).status in ("succeeded", "failed"))
    build.refresh_from_db()
    assert build.status == "succeeded", build.error
    assert build.counts["cold_items"] == len(items)

    new = Item.objects.create(name="Rockets and orbital stars", description="A space book about rockets to mars.")
    ct = ContentType.objects.get_for_model(Item).pk
    placed = UserRecommendation.objects.filter(build=build, content_type_id=ct, object_id=str(new.pk))
    assert _wait(placed.exists, timeout=30)
    reader = placed.select_related("user").first().user
    assert reader.username.startswith("space")
    picks = selectors.recommended_for(reader, n=10)
    served = [p for p in picks if p.pk == new.pk]
    assert served and served[0].rec_new
    assert served[0].rec_because.startswith("New: like ") and served[0].rec_because.endswith(", which you read")
