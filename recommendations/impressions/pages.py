"""Provides recommendation ids for lists on (cached) pages: a placeholder per rendered list, a fresh id per response.

A page or fragment cache replays its HTML, so an id rendered into it would be replayed to every
later viewer and their views would record nothing. With ``ImpressionMiddleware`` installed, a
template tag gives each list a placeholder token instead and notes the list (surface, items in
order, source) on the request; a cache stores, after the HTML it caches, a marker comment with
the notes of the lists rendered inside it (``slots_marker()``). For every response the
middleware collects the lists of the request and of the markers in the body, records one
impression per list under a fresh ``recommendation_id``, puts those ids in place of the
tokens and removes the markers. Without the middleware, a tag records its list at once under
a real id (right for pages that are not cached).
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

from .recording import impression_record_for_request, item_keys, item_propensities

TOKEN_PREFIX = "bre-rid-"
MARKER_RE = re.compile(rb"<!--bre-impression:([A-Za-z0-9+/=]+)-->")
ACTIVE_ATTR = "bre_impressions_active"
SLOTS_ATTR = "bre_impression_slots"


class ServedList(list):
    """A list of items as shown to a reader, with its ``recommendation_id`` (blank when nothing is shown)."""

    recommendation_id: str = ""


def served_list(request, items: Iterable[Any], *, surface: str, algorithm: str = "", build_id: int | None = None,
                experiment: str = "", arm: str = "") -> ServedList:
    """Return ``items`` as a ``ServedList`` shown on ``surface`` in response to ``request``, and record it.

    ``algorithm`` defaults to the sources of the items (``rec_source``: personal, popular,
    content, collaborative). An empty list gets no id and no impression: nothing was shown.
    """
    shown = ServedList(items)
    if request is None or not shown:
        return shown
    if not algorithm:
        algorithm = "+".join(dict.fromkeys(str(getattr(item, "rec_source", "") or "") for item in shown)).strip("+")
    meta = {"surface": surface, "items": item_keys(shown), "algorithm": algorithm, "build_id": build_id,
            "experiment": experiment, "arm": arm}
    propensities = item_propensities(shown)
    if propensities:
        meta["propensities"] = propensities
    if getattr(request, ACTIVE_ATTR, False):
        token = f"{TOKEN_PREFIX}{uuid.uuid4().hex}"
        request.__dict__.setdefault(SLOTS_ATTR, {})[token] = meta
        shown.recommendation_id = token
    else:
        shown.recommendation_id = str(impression_record_for_request(request, **_record_args(meta)))
    return shown


def slot_tokens(request) -> set[str]:
    """Return the tokens of the lists noted on ``request`` so far (to tell which a render adds)."""
    return set(getattr(request, SLOTS_ATTR, {}) or ()) if request is not None else set()


def slots_marker(request, *, exclude: set[str] = frozenset()) -> str:
    """Return the marker comment of the lists noted on ``request`` except ``exclude``; a cache stores it with its HTML."""
    slots = getattr(request, SLOTS_ATTR, None) if request is not None else None
    if not slots:
        return ""
    notes = [{"token": token, **meta} for token, meta in slots.items() if token not in exclude]
    if not notes:
        return ""
    return f"<!--bre-impression:{base64.b64encode(json.dumps(notes).encode()).decode()}-->"


def response_impressions_record(request, response):
    """Record one impression per list in ``response`` under a fresh id, replacing its tokens; return the response."""
    slots = dict(getattr(request, SLOTS_ATTR, None) or {})
    if getattr(response, "streaming", False):
        return response
    content = response.content
    if b"<!--bre-impression:" in content:
        for match in MARKER_RE.finditer(content):
            for note in json.loads(base64.b64decode(match.group(1))):
                slots.setdefault(note.pop("token"), note)
        content = MARKER_RE.sub(b"", content)
    if not slots:
        return response
    for token, meta in slots.items():
        rid = impression_record_for_request(request, **_record_args(meta))
        content = content.replace(token.encode(), str(rid).encode())
    response.content = content
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(content))
    return response


def _record_args(meta: dict[str, Any]) -> dict[str, Any]:
    return {"surface": meta["surface"], "items": [tuple(key.split(":", 1)) for key in meta["items"]],
            "algorithm": meta.get("algorithm", ""), "build_id": meta.get("build_id"),
            "experiment": meta.get("experiment", ""), "arm": meta.get("arm", ""),
            "propensities": meta.get("propensities")}


class ImpressionMiddleware:
    """Give every list of a page a fresh ``recommendation_id`` per response and record it (see the module docstring).

    Place it before ``ConditionalGetMiddleware`` (and any middleware that caches whole responses),
    so that they see the tokens and a revalidated page (304) records nothing: the reader sees the
    copy they have, under the ids it was sent with.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        setattr(request, ACTIVE_ATTR, True)
        return response_impressions_record(request, self.get_response(request))
