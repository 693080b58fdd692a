"""Provides ``ArticlesAdapter``: the only module of the site that talks to ``recommendations``."""
from __future__ import annotations

import re
from typing import Any

from recommendations.adapters import DefaultAdapter

# Goodreads titles name their series at the end: "The Hunger Games (The Hunger Games, #1)".
SERIES = re.compile(r"\(([^()#]+?),\s*#[^()]*\)\s*$")


class ArticlesAdapter(DefaultAdapter):
    """Tell the recommender what a title, a cover, a link and an author are on this site."""

    def item_payload(self, obj) -> dict[str, Any]:
        payload = super().item_payload(obj)
        payload["type"] = obj._meta.model_name
        if hasattr(obj, "cover_url"):
            payload["cover_url"] = obj.cover_url or None
            payload["authors"] = obj.authors
        else:
            payload["summary"] = obj.summary
        return payload

    def diversity_key(self, obj) -> str | None:
        """Return the author (a book's first listed author, else its series; an article's author), or None.

        Keys are case-folded author names shared by books and articles, so a list holds at most
        a few items of one writer whatever their kind.
        """
        if hasattr(obj, "authors"):
            first = obj.authors.split(",")[0].strip()
            if first:
                return f"author:{first.casefold()}"
            series = SERIES.search(obj.title or "")
            return f"series:{series.group(1).strip().casefold()}" if series else None
        author = (getattr(obj, "author", "") or "").strip()
        return f"author:{author.casefold()}" if author else None

def serving_generation(*, user=None):
    """Return (active build, generation of served results, ``user``'s version): the page cache's key."""
    from recommendations.selectors import serving_generation as _serving_generation

    return _serving_generation(user=user)


def served_results_invalidate() -> None:
    """Bump the generation of served results (stored picks and cached pages) in the current transaction."""
    from recommendations.payloads import user_payloads_invalidate

    user_payloads_invalidate()


def build_switched_connect(receiver, *, dispatch_uid: str) -> None:
    """Call ``receiver(sender, build=..., **kwargs)`` each time a build has become active."""
    from recommendations.build.pipeline import build_switched

    build_switched.connect(receiver, dispatch_uid=dispatch_uid)
