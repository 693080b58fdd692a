"""Provides a cache of served lists (the API's neighbour lists) keyed by the active build and the generation.

Like the stored picks of ``recommendations.payloads``, an entry's key holds the active build and
the generation of served results, which every change that can alter a list bumps (a new build, an
item saved or deleted, an editor's rule, content neighbours recomputed). A change therefore
never invalidates an entry: it changes the key, so a stale entry is never read, in any process,
and ages out. The cache is ``RECOMMENDATIONS["CACHE"]``; one that fails costs the computation,
never the response.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.core.cache import caches

from .conf import app_settings
from .payloads import user_payload_snapshot

logger = logging.getLogger(__name__)

# Longer than any build interval is needed for: an unused entry only takes room until then.
TIMEOUT_SECONDS = 600


def served_cache_key(name: str, *parts: Any) -> str | None:
    """Return the key of list ``name`` with ``parts`` under the live build and generation (one query); None when
    nothing is active, so that nothing is cached."""
    snapshot = user_payload_snapshot(user_id=None)
    if snapshot.build_id is None or snapshot.generation is None:
        return None
    digest = hashlib.sha1(json.dumps([snapshot.build_id, snapshot.generation, *parts], default=str).encode())
    return f"recommendations:{name}:{digest.hexdigest()}"


def served_cache_get(key: str | None) -> Any:
    """Return the value cached under ``key``, or None."""
    if key is None:
        return None
    try:
        return caches[app_settings.CACHE].get(key)
    except Exception:
        logger.warning("Could not read the cache of served lists", exc_info=True)
        return None


def served_cache_set(key: str | None, value: Any) -> None:
    """Cache ``value`` under ``key`` (nothing when ``key`` is None)."""
    if key is None:
        return
    try:
        caches[app_settings.CACHE].set(key, value, TIMEOUT_SECONDS)
    except Exception:
        logger.warning("Could not write the cache of served lists", exc_info=True)
