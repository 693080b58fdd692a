"""Provides ``ArticlesAdapter``: the only module of the site that talks to ``recommendations``."""
from __future__ import annotations

from typing import Any

from recommendations.adapters import DefaultAdapter


class ArticlesAdapter(DefaultAdapter):
    """Tell the recommender what a title, a cover and a link are on this site."""

    def item_payload(self, obj) -> dict[str, Any]:
        payload = super().item_payload(obj)
        payload["type"] = obj._meta.model_name
        if hasattr(obj, "cover_url"):
            payload["cover_url"] = obj.cover_url or None
            payload["authors"] = obj.authors
        else:
            payload["summary"] = obj.summary
        return payload


def serving_generation(*, user=None):
    """Return (active build, generation of served results, ``user``'s version): the page cache's key."""
    from recommendations.selectors import serving_generation as _serving_generation

    return _serving_generation(user=user)


def served_results_invalidate() -> None:
    """Bump the generation of served results (stored picks and cached pages) in the current transaction."""
    from recommendations.payloads import user_payloads_invalidate

    user_payloads_invalidate()
