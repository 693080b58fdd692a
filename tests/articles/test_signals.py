"""Tests of the site's hooks (articles/signals.py): planner statistics after a build."""
from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from articles.models import Book, Rating
from recommendations import services as rec_services

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's statistics only")


def _stat_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if not cursor.fetchone():
            return set()
        cursor.execute("SELECT tbl FROM sqlite_stat1")
        return {row[0] for row in cursor.fetchall()}


def _clear_stats() -> None:
    if _stat_tables():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM sqlite_stat1")


@pytest.mark.django_db
def test_a_build_that_becomes_active_gives_sqlite_planner_statistics(django_user_model):
    books = [Book.objects.create(title=f"Novel {i}", authors=f"Author {i}") for i in range(6)]
    ct = ContentType.objects.get_for_model(Book)
    for u in range(4):
        user = django_user_model.objects.create_user(username=f"r{u}", password="pw-r-12345")
        for i in range(6):
            if (i + u) % 2:
                Rating.objects.create(user=user, content_type=ct, object_id=books[i].pk, stars=1 + (i + u) % 5)
    _clear_stats()
    rec_services.full_build_run()
    assert {"recommendations_buildrun", "recommendations_similaritem"} <= _stat_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN QUERY PLAN SELECT s.target_object_id FROM recommendations_similaritem s "
            "JOIN recommendations_buildrun b ON s.build_id = b.id WHERE b.is_active AND s.content_type_id = %s "
            "AND s.kind = 'content' AND s.object_id = %s ORDER BY s.rank", [ct.pk, str(books[0].pk)])
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "SEARCH s USING INDEX similar_lookup" in plan, plan
