"""Stop Redis (the broker and result store) for 30 s while readers read and rate: nothing is lost.

The test runs its own redis-server on a free port, so that stopping it never touches the
Redis other processes share; the site in this process and a real worker both use it.
"""
from __future__ import annotations

import os
import random
import time

import pytest
from django.test import override_settings
from django.utils import timezone

from articles.models import Rating, Read
from recommendations import services, tasks
from recommendations.models import UserRecommendation, UserRefresh
from tests.reliability.support import (
    PrivateRedis,
    Readers,
    celery_publishing,
    celery_worker,
    fault_recommendations,
    make_library,
    subprocess_env,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

OUTAGE = float(os.environ.get("BRE_REDIS_OUTAGE_SECONDS", "30"))
N_READERS = 6
MAX_REQUEST_SECONDS = 5.0  # a request that waits longer on a dead broker counts as a failure


@pytest.mark.skipif(not PrivateRedis.available(), reason="redis-server and redis-cli are not installed")
def test_redis_down_for_30_s_while_readers_read_and_rate(processes, fault_queue, record):
    redis = PrivateRedis()
    redis.start()
    broker, backend = redis.url, redis.url[:-1] + "1"
    recs = fault_recommendations(chunk_size=50, lock_timeout=60)
    try:
        # READ_REOPEN_SECONDS=0: every page view is a new read, so that each one can be counted as stored.
        with override_settings(RECOMMENDATIONS=recs, READ_REOPEN_SECONDS=0), \
                celery_publishing(queue=fault_queue, broker_url=broker, result_backend=backend):
            library = make_library(n_users=60, n_books=80, per_user=10, seed=11)
            services.full_build_run(triggered_by="test")
            env = subprocess_env(queue=fault_queue, chunk_size=50, lock_timeout=60, broker_url=broker,
                                 result_backend=backend)
            # Supervised, as in production: kombu's Redis transport can crash the worker when the broker goes
            # away while it holds unacknowledged tasks (celery/kombu#970, #582); the supervisor starts it again.
            worker = celery_worker("worker-redis", env, queue=fault_queue, supervised=True)
            processes.append(worker)

            readers_users = library["users"][:N_READERS]
            books = library["books"]
            reads_before = Read.objects.filter(user__in=readers_users).count()
            sent_reads = [0] * N_READERS
            sent_stars: dict[tuple[int, int], int] = {}
            rng = [random.Random(r) for r in range(N_READERS)]

            def step(client, reader, i):
                user = readers_users[reader]
                book = rng[reader].choice(books)
                if i % 3 == 0:
                    response = client.get(f"/books/{book.pk}/")
                    if response.status_code == 200:
                        sent_reads[reader] += 1
                    return "read", response.status_code, None
                if i % 3 == 1:
                    stars = rng[reader].randint(1, 5)
                    response = client.post(f"/items/book/{book.pk}/rate", {"stars": stars},
                                           HTTP_ACCEPT="application/json")
                    if response.status_code == 200:
                        sent_stars[(user.pk, book.pk)] = stars
                    return "rate", response.status_code, None
                response = client.get("/api/recommendations/?limit=10")
                return "picks", response.status_code, None

            readers = Readers()
            readers.start(N_READERS, step, user_for=lambda r: readers_users[r], pause=0.05)
            try:
                time.sleep(4)
                down_at = time.time()
                redis.stop()
                time.sleep(OUTAGE)
                redis.start()
                up_at = time.time()
                time.sleep(4)
            finally:
                readers.stop()

            during = [o for o in readers.outcomes if down_at <= o.at - o.seconds and o.at <= up_at]
            slow = [o for o in readers.outcomes if o.seconds > MAX_REQUEST_SECONDS]
            failures = readers.failures()
            assert not failures, failures[:5]
            assert not slow, (f"{len(slow)} requests took over {MAX_REQUEST_SECONDS} s ({readers.summary()}); "
                              f"e.g. {slow[:3]}")
            assert len(during) > 5 * OUTAGE, f"too few requests during the outage: {readers.summary()}"

            # Zero lost: every read that got a page and every rating that got a 200 is stored.
            reads_after = Read.objects.filter(user__in=readers_users).count()
            assert reads_after - reads_before == sum(sent_reads)
            stored = {
                (r.user_id, r.object_id): r.stars
                for r in Rating.objects.filter(user__in=readers_users, object_id__in=[b for _, b in sent_stars])
            }
            lost = {key: stars for key, stars in sent_stars.items() if stored.get(key) != stars}
            assert not lost, lost

            # The refreshes that could not be queued stayed pending; the periodic task (beat runs it every
            # minute) refreshes them once the broker is back.
            pending_after_outage = len(services.pending_refreshes_list())

            def recovered():
                try:
                    tasks.pending_refreshes_run.delay()
                except Exception:
                    return False  # the worker or broker is still reconnecting
                return wait_pending_empty(10)

            def wait_pending_empty(seconds):
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    if not services.pending_refreshes_list():
                        return True
                    time.sleep(0.25)
                return False

            wait_until(recovered, timeout=120, interval=0.5, what="every pending refresh to be done")
            recovered_in = time.time() - up_at
            last_write = max(o.at for o in readers.outcomes)
            for user in readers_users:
                state = UserRefresh.objects.get(user=user)
                assert state.refreshed_at is not None and state.refreshed_at >= state.requested_at, user
                assert state.refreshed_at.timestamp() >= last_write - 60
                assert UserRecommendation.objects.filter(build__is_active=True, user=user, source="refresh").exists()
    finally:
        redis.stop()

    by_kind = {}
    for o in readers.outcomes:
        by_kind[o.what] = by_kind.get(o.what, 0) + 1
    record("Redis down 30 s", {
        "broker_used": "private redis-server (broker and results)", "outage_seconds": OUTAGE,
        "requests": len(readers.outcomes), "during_outage": len(during),
        "failed": len(failures), "by_kind": by_kind,
        "reads_sent": sum(sent_reads), "reads_stored": reads_after - reads_before,
        "ratings_sent": len(sent_stars), "ratings_lost": len(lost),
        "pending_refreshes_after_outage": pending_after_outage,
        "all_refreshed_seconds_after_restart": round(recovered_in, 1),
        "max_request_seconds": round(max(o.seconds for o in readers.outcomes), 2),
        "worker_restarts": worker.log().count("supervise: exited"),
        "worker_unrecoverable_errors": worker.log().count("Unrecoverable error"),
        "readers": readers.summary(), "checked_at": timezone.now().isoformat(timespec="seconds"),
    })
