"""Connects the content site's hooks: a tag renamed or an item's tags changed forget every served result.

The recommendations app already does so for items, interactions, editors' rules and builds; tags
are the site's own, shown on list and detail pages (and cached with them, ``articles.page_cache``).
On SQLite, a build that became active also refreshes the query planner's statistics.
"""
from __future__ import annotations

from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save

from .models import Article, Book, Tag
from .recommendation_adapter import build_switched_connect, served_results_invalidate

# Rows ANALYZE samples per index: statistics good enough for the planner, in milliseconds.
SQLITE_ANALYSIS_LIMIT = 1000


def _tags_changed(sender, action: str = "", raw: bool = False, **kwargs) -> None:
    if raw or (action and not action.startswith("post_")):
        return
    served_results_invalidate()


def _planner_statistics_refresh(sender, **kwargs) -> None:
    """Run a bounded ANALYZE on SQLite (PostgreSQL's autovacuum keeps its own statistics).

    Without statistics SQLite's planner walks the whole neighbour index for one item's
    neighbours instead of starting from the one active build; the first build creates the
    tables' rows, so this is when statistics first mean something.
    """
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        cursor.execute("ANALYZE")


def connect() -> None:
    """Connect the hooks (called once by ``ArticlesConfig.ready``)."""
    post_save.connect(_tags_changed, sender=Tag, dispatch_uid="articles.tag_saved")
    post_delete.connect(_tags_changed, sender=Tag, dispatch_uid="articles.tag_deleted")
    for model in (Article, Book):
        m2m_changed.connect(_tags_changed, sender=model.tags.through, dispatch_uid=f"articles.{model.__name__}.tags")
    build_switched_connect(_planner_statistics_refresh, dispatch_uid="articles.planner_statistics")
