"""Provides the cache of rendered page fragments, keyed by what the fragment shows.

A key carries the active build, the generation of served results (bumped by every item, tag or
editor's rule change) and, for a reader's own fragments, the reader's version (replaced by each
of their interactions and by their refresh). A change therefore never invalidates an entry: it
changes the key, so a stale entry is never read, in any process, and simply ages out. That is
why the embedded default (a per-process memory cache) is correct with several gunicorn
workers; ``CACHE_URL`` shares one Redis cache between them instead.

``page_render()`` caches a whole page the same way, keyed by the reader too, so that a warm page
renders no template at all; the fragments inside it still spare the first render after a change.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

from recommendations.impressions.pages import slot_tokens, slots_marker

from .recommendation_adapter import serving_generation

logger = logging.getLogger(__name__)

CACHE_ALIAS = "pages"
# Rendered in place of the CSRF token while a fragment is cached; each response gets its own token.
CSRF_PLACEHOLDER = "bre-csrf-token-placeholder-c0ffee"


def page_generation(request: HttpRequest) -> tuple[Any, Any, Any]:
    """Return (active build, generation, reader's version) for ``request``, read once per request."""
    state = getattr(request, "_bre_page_generation", None)
    if state is None:
        state = serving_generation(user=getattr(request, "user", None))
        request._bre_page_generation = state
    return state


def _cache_path(request: HttpRequest) -> str:
    """Return the request's path and query without the list a link came from (``rid``, ``pos``): same page, same key."""
    if "rid" not in request.GET and "pos" not in request.GET:
        return request.get_full_path()
    query = request.GET.copy()
    query.pop("rid", None)
    query.pop("pos", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


def fragment_key(request: HttpRequest, name: str, *, per_user: bool, vary: tuple = ()) -> str:
    """Return the cache key of fragment ``name`` as ``request`` would render it."""
    build_id, generation, version = page_generation(request)
    parts: list[Any] = [name, build_id, generation, _cache_path(request), *vary]
    if per_user:
        user = request.user
        parts += [user.pk, version] if user.is_authenticated else [None, None]
    digest = hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()
    return f"{name}:{digest}"


def fragment_render(request: HttpRequest, key: str, render) -> str:
    """Return the cached fragment ``key``, or ``render()`` it and cache it; with this request's CSRF token.

    ``render`` is called with the CSRF placeholder as the token. A cache that fails (Redis down)
    costs the render, never the page. Inside ``page_render()`` the placeholder is kept: the whole
    page is cached with it, and the page's response gets the token.
    """
    html = _cached_or_render(key, render, request)
    if CSRF_PLACEHOLDER in html and not getattr(request, "_bre_page_rendering", False):
        html = html.replace(CSRF_PLACEHOLDER, get_token(request))
    return html


def page_render(request: HttpRequest, template: str, context: dict, *, vary: tuple = ()) -> HttpResponse:
    """Return ``template`` rendered as ``render()`` would, the whole body cached for this reader and path.

    The key is a ``per_user`` fragment's plus the template, the reader's name (the page header shows
    it) and ``vary``. A request with messages to show renders uncached: they are shown once.
    """
    if get_messages(request):
        return HttpResponse(render_to_string(template, context, request))
    user = request.user
    name = user.get_username() if user.is_authenticated else None
    key = fragment_key(request, "page", per_user=True, vary=(template, name, *vary))

    def render(csrf_token: str) -> str:
        request._bre_page_rendering = True
        try:
            return render_to_string(template, {**context, "csrf_token": csrf_token}, request)
        finally:
            request._bre_page_rendering = False

    html = _cached_or_render(key, render, request)
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, get_token(request))
    return HttpResponse(html)


def cached_data(request: HttpRequest, name: str, *, vary: tuple, render) -> Any:
    """Return what ``render()`` returned for a request with the same key, else call it and cache that.

    For data shared by every reader (the key is a shared fragment's): ``render()`` returns None
    for what must not be cached.
    """
    return _cached_or_render(fragment_key(request, name, per_user=False, vary=vary), lambda _: render())


def _cached_or_render(key: str, render, request: HttpRequest | None = None) -> Any:
    """Return the cached value of ``key`` or render and cache it; HTML keeps the notes of its lists.

    The lists a render adds carry placeholder ids; their notes (``slots_marker``) are cached
    after the HTML, so that every response of it records the lists under fresh ids.
    """
    cache = caches[CACHE_ALIAS]
    value = None
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("Could not read the page cache", exc_info=True)
    if value is None:
        before = slot_tokens(request)
        value = render(CSRF_PLACEHOLDER)
        if isinstance(value, str) and request is not None:
            value += slots_marker(request, exclude=before)
        if value is not None:
            try:
                cache.set(key, value, settings.PAGE_CACHE_TIMEOUT)
            except Exception:
                logger.warning("Could not write the page cache", exc_info=True)
    return value
