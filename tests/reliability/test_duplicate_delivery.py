"""Deliver the same task twice at the same time: the active results equal those of a single delivery.

With ``acks_late``, a broker hands a task to a second worker when the first one looks dead
(a lost connection, a visibility timeout shorter than the task): both copies then run at once.
Before the fix in services (one lease owner per delivery, serialised chunk and refresh writes), both
copies of a build wrote neighbours and popular lists twice, and on PostgreSQL (READ COMMITTED) both
copies of a chunk or refresh deleted nothing and then inserted, doubling the picks.
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections
from django.test import override_settings

from recommendations import selectors, services, tasks
from recommendations.models import BuildRun, PopularItem, SimilarItem, UserRecommendation
from tests.reliability.support import fault_recommendations, make_library

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ROUNDS = 3


def _twice(func, *args) -> list[BaseException]:
    """Run ``func(*args)`` in two threads released at the same instant; return their exceptions."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait()
            func(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def _results(build_id: int) -> dict[str, list]:
    """Everything a build serves, without build ids or primary keys; the score is the last field."""
    return {
        "picks": sorted(UserRecommendation.objects.filter(build_id=build_id).values_list(
            "user_id", "rank", "content_type_id", "object_id", "score")),
        "similar": sorted(SimilarItem.objects.filter(build_id=build_id).values_list(
            "kind", "content_type_id", "object_id", "rank", "target_content_type_id", "target_object_id", "score")),
        "popular": sorted(PopularItem.objects.filter(build_id=build_id).values_list(
            "window", "content_type_id", "rank", "object_id", "score")),
    }


def _difference(actual: dict, expected: dict) -> dict:
    """Return, per kind of result, the rows found on one side only, and scores that differ by over 1e-3.

    Scores are float32 sums whose last digit may change from run to run, so they are compared with a tolerance.
    """
    out = {}
    for key in expected:
        a = Counter(row[:-1] for row in actual[key])
        e = Counter(row[:-1] for row in expected[key])
        if a != e:
            out[key] = {"rows": (sum(a.values()), sum(e.values())), "extra": list((a - e).elements())[:3],
                        "missing": list((e - a).elements())[:3]}
            continue
        scores = dict((row[:-1], row[-1]) for row in expected[key])
        far = [row for row in actual[key] if abs(row[-1] - scores[row[:-1]]) > 1e-3]
        if far:
            out[key] = {"scores": far[:3]}
    return out


def _duplicates(build_id: int) -> list:
    ranks = Counter(UserRecommendation.objects.filter(build_id=build_id).values_list("user_id", "rank"))
    return [key for key, n in ranks.items() if n > 1]


@pytest.fixture
def library():
    with override_settings(RECOMMENDATIONS=fault_recommendations(chunk_size=10, lock_timeout=600)):
        yield make_library(n_users=50, n_books=60, per_user=10, seed=5)


def _single_delivery() -> tuple[BuildRun, dict]:
    build = BuildRun.objects.create(triggered_by="test-single")
    tasks.full_build_fan_out(build.pk)
    build.refresh_from_db()
    assert build.status == BuildRun.Status.SUCCEEDED and build.is_active, build.error
    return build, _results(build.pk)


def test_full_build_delivered_twice_at_once(library):
    _, reference = _single_delivery()
    for _ in range(ROUNDS):
        build = BuildRun.objects.create(triggered_by="test-twice")
        errors = _twice(tasks.full_build_fan_out, build.pk)
        assert not errors, errors
        build.refresh_from_db()
        assert build.status == BuildRun.Status.SUCCEEDED, build.error
        assert selectors.active_build().pk == build.pk
        assert _duplicates(build.pk) == []
        assert _difference(_results(build.pk), reference) == {}
        assert services.build_lock_holder() is None


def test_score_chunk_delivered_twice_at_once(library):
    _, reference = _single_delivery()
    for _ in range(ROUNDS):
        build = BuildRun.objects.create(triggered_by="test-chunk-twice")
        chunks = services.build_prepare(build_id=build.pk)
        assert chunks and len(chunks) > 1
        for start, stop in chunks:
            errors = _twice(tasks.build_score_chunk, build.pk, start, stop)
            assert not errors, errors
        # The finalizer too may be delivered twice.
        errors = _twice(tasks.build_finalize, build.pk)
        assert not errors, errors
        build.refresh_from_db()
        assert build.status == BuildRun.Status.SUCCEEDED and build.is_active, build.error
        assert _duplicates(build.pk) == []
        assert _difference(_results(build.pk), reference) == {}


def test_user_refresh_delivered_twice_at_once(library):
    build, _ = _single_delivery()
    users = library["users"][:ROUNDS * 2]
    for user in users:
        tasks.user_refresh(str(user.pk))  # one delivery: the reference
        once = _results(build.pk)["picks"]
        errors = _twice(tasks.user_refresh, str(user.pk))
        assert not errors, errors
        assert _duplicates(build.pk) == []
        assert _difference({"picks": _results(build.pk)["picks"]}, {"picks": once}) == {}
