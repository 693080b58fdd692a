"""Tests of bre_site.postgresql: the health check asks the socket first, and the server only when it has spoken."""
from __future__ import annotations

import select
import time

import pytest
from django.db import connection, connections
from django.db.backends.postgresql import base as django_base

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="applies to PostgreSQL only"),
]


@pytest.fixture
def spare():
    """A second connection to the test database, outside the test's transaction."""
    other = connections.create_connection("default")
    other.health_check_enabled = True
    other.ensure_connection()
    yield other
    other.close()


@pytest.fixture
def server_checks(monkeypatch):
    """Count the checks that reach the server (Django's SELECT 1)."""
    calls = []
    original = django_base.DatabaseWrapper.is_usable

    def counted(self):
        calls.append(self)
        return original(self)

    monkeypatch.setattr(django_base.DatabaseWrapper, "is_usable", counted)
    return calls


def test_the_site_uses_this_backend():
    assert type(connections["default"]).__module__ == "bre_site.postgresql.base"


def test_idle_healthy_connection_needs_no_round_trip(spare, server_checks):
    assert spare.is_usable() is True
    assert server_checks == []


def test_connection_ended_by_the_server_is_found_and_replaced(spare, server_checks):
    pid = spare.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while not select.select([spare.connection.fileno()], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the terminated backend never wrote to its socket"
    assert spare.is_usable() is False
    assert server_checks == [spare]  # the poll saw the server speak; SELECT 1 decided
    # What Django does at the start of a request: the check fails, the connection is replaced.
    spare.health_check_done = False
    spare.close_if_health_check_failed()
    assert spare.connection is None
    with spare.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_notice_that_arrived_is_left_to_the_server_check(spare, server_checks):
    with spare.cursor() as cursor:
        cursor.execute("LISTEN bre_health_check_test")
    sender = connections.create_connection("default")  # autocommit: the notice leaves at once
    try:
        with sender.cursor() as cursor:
            cursor.execute("SELECT pg_notify('bre_health_check_test', 'x')")
    finally:
        sender.close()
    deadline = time.monotonic() + 5
    while not select.select([spare.connection.fileno()], [], [], 0.05)[0]:
        assert time.monotonic() < deadline, "the notice never reached the socket"
    assert spare.is_usable() is True
    assert server_checks == [spare]
