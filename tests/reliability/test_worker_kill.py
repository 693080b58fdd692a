"""Kill -9 a real Celery worker in the middle of a full build: readers never notice, the next build completes."""
from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from recommendations import selectors, services
from recommendations.models import BuildLock, BuildRun, UserRecommendation
from tests.api_lists import results
from tests.reliability.support import (
    Readers,
    celery_publishing,
    celery_worker,
    fault_recommendations,
    make_library,
    subprocess_env,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CHUNK_SIZE = 4  # many small chunks, so that the build lasts a few seconds on one worker process
LOCK_TIMEOUT = 8  # seconds without a heartbeat before the lease of a dead build expires
VISIBILITY_TIMEOUT = 4  # seconds before Redis hands an unacknowledged task to another worker
N_USERS, N_BOOKS, PER_USER = 320, 120, 15


def _picks(client) -> list[str]:
    response = client.get("/api/recommendations/?limit=10", HTTP_ACCEPT="application/json")
    if response.status_code != 200:
        return response.status_code, None
    return 200, [row["item"]["id"] for row in results(response)]


def test_kill_9_worker_in_the_middle_of_a_full_build(processes, fault_queue, record):
    recs = fault_recommendations(chunk_size=CHUNK_SIZE, lock_timeout=LOCK_TIMEOUT)
    with override_settings(RECOMMENDATIONS=recs), celery_publishing(queue=fault_queue):
        library = make_library(n_users=N_USERS, n_books=N_BOOKS, per_user=PER_USER)
        previous = services.full_build_run(triggered_by="test")
        assert previous.status == BuildRun.Status.SUCCEEDED and previous.is_active
        readers_users = library["users"][:4]
        from django.test import Client

        old = {}
        for user in readers_users:
            client = Client()
            client.force_login(user)
            status, ids = _picks(client)
            assert status == 200 and ids
            old[user.pk] = ids
        book = library["books"][0]

        def step(client, reader, i):
            if i % 3 == 0:
                status, ids = _picks(client)
                return "picks", status, (readers_users[reader].pk, ids)
            if i % 3 == 1:
                response = client.get("/")
                return "home", response.status_code, None
            response = client.get(f"/api/books/{book.pk}/similar/")
            return "similar", response.status_code, None

        # An auditor checks, many times a second, that the active build's rows are all there.
        audits, incomplete = [], []
        stop_audit = threading.Event()

        def audit():
            from django.db import connections

            try:
                while not stop_audit.is_set():
                    build = selectors.active_build()
                    stored = UserRecommendation.objects.filter(build_id=build.pk).count()
                    audits.append(build.pk)
                    if stored != build.counts.get("recommendations"):
                        incomplete.append((build.pk, stored, build.counts.get("recommendations")))
                    time.sleep(0.05)
            finally:
                connections.close_all()

        env = subprocess_env(queue=fault_queue, chunk_size=CHUNK_SIZE, lock_timeout=LOCK_TIMEOUT,
                             visibility_timeout=VISIBILITY_TIMEOUT)
        readers = Readers()
        auditor = threading.Thread(target=audit, daemon=True)
        try:
            worker = celery_worker("worker-a", env, queue=fault_queue)
            processes.append(worker)
            readers.start(len(readers_users), step, user_for=lambda r: readers_users[r], pause=0.02)
            auditor.start()

            build = services.full_build_start(triggered_by="test")
            n_chunks = -(-N_USERS // CHUNK_SIZE)

            def users_scored() -> int:
                return UserRecommendation.objects.filter(build_id=build.pk).values("user").distinct().count()

            # Wait until a few chunks are stored, then kill -9 the worker and its pool process.
            wait_until(lambda: users_scored() >= 3 * CHUNK_SIZE, timeout=120, interval=0.02,
                       what="the first chunks of the build")
            worker.kill()
            killed_at = time.monotonic()
            build.refresh_from_db()
            scored_at_kill = users_scored()
            assert build.status == BuildRun.Status.RUNNING, (
                f"The build was {build.status} when the worker was killed; it must be in the middle."
            )
            assert scored_at_kill < N_USERS, "Every user was already scored at the kill; make the build longer."
            assert selectors.active_build().pk == previous.pk
            time.sleep(2)  # readers keep reading with no worker at all

            worker_b = celery_worker("worker-b", env, queue=fault_queue)
            processes.append(worker_b)

            # Either the killed tasks are redelivered (Redis, after the visibility timeout) and finish the
            # same build, or they are lost (filesystem broker) and, once the dead build's lease expired,
            # the next build takes the lock over.
            retry = None
            deadline = time.monotonic() + LOCK_TIMEOUT + VISIBILITY_TIMEOUT + 90
            while time.monotonic() < deadline:
                build.refresh_from_db()
                if build.status == BuildRun.Status.SUCCEEDED:
                    break
                # Once the next build took the dead build's lease over, the dead build is marked failed.
                assert retry is not None or build.status != BuildRun.Status.FAILED, build.error
                if retry is None and services.build_lock_holder() is None and \
                        time.monotonic() - killed_at > VISIBILITY_TIMEOUT + 10:
                    retry = services.full_build_start(triggered_by="test-after-kill")
                if retry is not None:
                    retry.refresh_from_db()
                    if retry.status in (BuildRun.Status.SUCCEEDED, BuildRun.Status.FAILED):
                        break
                time.sleep(0.2)
            recovered_in = time.monotonic() - killed_at
            time.sleep(1)  # readers see the new build for a moment too
        finally:
            readers.stop()
            stop_audit.set()
            auditor.join(timeout=30)

        build.refresh_from_db()
        killed_build_status = build.status
        final = selectors.active_build()
        assert final is not None and final.status == BuildRun.Status.SUCCEEDED
        finished = retry if retry is not None else build
        finished.refresh_from_db()
        assert finished.status == BuildRun.Status.SUCCEEDED, finished.error
        assert final.pk == finished.pk, f"Build #{final.pk} is active, expected #{finished.pk}"
        assert final.counts["users"] == N_USERS
        assert UserRecommendation.objects.filter(build=final).values("user").distinct().count() == N_USERS
        assert not BuildLock.objects.exists(), "The lock was left behind"
        # The next build can start at once: nothing holds the lock.
        assert services.build_lock_holder() is None

        # Readers: zero failed requests; every list they got was the previous build's or the new one's.
        new = {}
        for user in readers_users:
            client = Client()
            client.force_login(get_user_model().objects.get(pk=user.pk))
            new[user.pk] = _picks(client)[1]
        failures = readers.failures()
        assert not failures, failures[:5]
        picks = [o for o in readers.outcomes if o.what == "picks"]
        assert len(picks) > 20
        partial = [o.detail for o in picks if o.detail[1] not in (old[o.detail[0]], new[o.detail[0]])]
        assert not partial, partial[:3]
        assert not incomplete, incomplete[:3]
        assert set(audits) <= {previous.pk, final.pk}
        record("kill -9 worker mid-build", {
            "path": "redelivered: same build finished" if retry is None else "new build after lease expiry",
            "chunks": n_chunks, "users_scored_at_kill": scored_at_kill, "requests": len(readers.outcomes),
            "failed": len(failures), "partial_or_mixed_lists": len(partial), "audits": len(audits),
            "incomplete_active_build_seen": len(incomplete), "recover_seconds": round(recovered_in, 1),
            "killed_build_ends": killed_build_status, "lock_left": BuildLock.objects.count(),
            "readers": readers.summary(),
        })
