"""Connects the content site's hooks: a tag renamed or an item's tags changed forget every served result.

The recommendations app already does so for items, interactions, editors' rules and builds; tags
are the site's own, shown on list and detail pages (and cached with them, ``articles.page_cache``).
"""
from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save

from .models import Article, Book, Tag
from .recommendation_adapter import served_results_invalidate


def _tags_changed(sender, action: str = "", raw: bool = False, **kwargs) -> None:
    if raw or (action and not action.startswith("post_")):
        return
    served_results_invalidate()


def connect() -> None:
    """Connect the hooks (called once by ``ArticlesConfig.ready``)."""
    post_save.connect(_tags_changed, sender=Tag, dispatch_uid="articles.tag_saved")
    post_delete.connect(_tags_changed, sender=Tag, dispatch_uid="articles.tag_deleted")
    for model in (Article, Book):
        m2m_changed.connect(_tags_changed, sender=model.tags.through, dispatch_uid=f"articles.{model.__name__}.tags")
