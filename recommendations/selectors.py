"""Provides the reads of the recommendations app: stored picks, neighbours and popular items.

Selectors only read rows of the active build; they never compute recommendations. Each
returns host item instances with ``rec_score``, ``rec_rank``, ``rec_explanation`` (a list of
``{"title", "content_type", "object_id"}``), ``rec_because`` ("Because you read X", in the
active language, worded by ``adapter.explanation_text()``) and ``rec_source`` ("personal",
"popular", "content" or "collaborative"), ``rec_new`` (a new item placed by its content) and
``rec_explore`` (in an exploration slot). The cost of a call is a fixed number
of queries: the stored rows, one per item model for the items, and one per interaction
model for the user's history when seen items are filtered.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Case, FloatField, IntegerField, Value, When

from .adapters import DefaultAdapter, get_adapter
from .algorithms.diversity import capped_ranking, validate_caps
from .build.cold import cold_scoring
from .build.errors import BuildError
from .build.state import build_state
from .conf import app_settings
from .items import items_by_key
from .models import ArmPicks, BuildRun, ItemRule, PopularItem, SimilarItem, UserRecommendation
from .payloads import user_payload_snapshot
from .rules import rules_by_key

Key = tuple[int, str]

logger = logging.getLogger(__name__)


def active_build() -> BuildRun | None:
    """Return the build whose results are served, if any."""
    return BuildRun.objects.active().first()


def _model_of(model) -> type[models.Model] | None:
    if model is None or isinstance(model, type):
        return model
    return apps.get_model(model)


def _ct(model) -> ContentType:
    return ContentType.objects.get_for_model(model)


def _seen_keys(user, candidates: Iterable[Key] | None = None) -> set[Key]:
    """Return which of ``candidates`` (or of all items) ``user`` has interacted with.

    Stored picks already exclude what the user had seen when they were computed; this check
    covers the seconds between a new interaction and the user's refresh.
    """
    if not app_settings.EXCLUDE_SEEN or user is None or not getattr(user, "is_authenticated", False):
        return set()
    return get_adapter().user_item_keys(user.pk, candidates=candidates)


def explanation_text(explanation: list[dict]) -> str:
    """Return the "Because you read ..." sentence of a stored explanation, in the active language."""
    return get_adapter().explanation_text(explanation or [])


_reported_settings: set[str] = set()


def item_queryset(model: type[models.Model]) -> models.QuerySet:
    """Return the items of ``model`` that may be served: the adapter's ``item_queryset()``.

    When ``ITEM_FILTERS`` does not apply to the model, return none and log the error once.
    Serving nothing hides what ``ITEM_FILTERS`` was meant to hide (unpublished, out of stock)
    instead of a 500 on every page; check ``recommendations.E016`` names the cause at startup.
    """
    try:
        return get_adapter().item_queryset(model)
    except ImproperlyConfigured as exc:
        if str(exc) not in _reported_settings:
            _reported_settings.add(str(exc))
            logger.error("Serving no %s recommendations: %s", model._meta.label, exc)
        return model._default_manager.none()


def _materialise(
    candidates: Iterable[tuple[Key, float, list[dict], str]],
    *,
    n: int,
    model=None,
    queryset: models.QuerySet | None = None,
    exclude: set[Key] = frozenset(),
    rules: dict[Key, ItemRule] | None = None,
) -> list[Any]:
    """Turn ``(key, score, explanation, source)`` candidates into up to ``n`` host items.

    Applies the item filters, the editors' rules (ban, boost, pin) and the exclusions, with
    one query per item model.
    """
    rules = rules_by_key() if rules is None else rules
    adapter = get_adapter()
    by_ct: dict[int, list[tuple[Key, float, list[dict], str]]] = {}
    for cand in candidates:
        key = cand[0]
        if key in exclude:
            continue
        rule = rules.get(key)
        if rule is not None and rule.action == ItemRule.Action.BAN:
            continue
        by_ct.setdefault(key[0], []).append(cand)
    allowed = set(app_settings.ITEM_MODELS)

    def narrowed(item_model) -> models.QuerySet | None:
        if item_model._meta.label not in allowed or (model is not None and item_model is not model):
            return None
        return queryset if queryset is not None and queryset.model is item_model else item_queryset(item_model)

    objects = items_by_key((c[0] for cands in by_ct.values() for c in cands), queryset=narrowed)
    ranked = []
    for ct_id, cands in by_ct.items():
        for key, score, explanation, source in cands:
            obj = objects.get(key)
            if obj is None:
                continue
            rule = rules.get(key)
            pinned = rule is not None and rule.action == ItemRule.Action.PIN
            if rule is not None and rule.action == ItemRule.Action.BOOST:
                score = score * rule.factor
            ranked.append((pinned, score, key, obj, explanation, source))
    ranked.sort(key=lambda r: (not r[0], -r[1]))
    result = []
    for rank, (_, score, _, obj, explanation, source) in enumerate(ranked[:n], 1):
        obj.rec_score = float(score)
        obj.rec_rank = rank
        obj.rec_explanation = explanation
        obj.rec_because = adapter.explanation_text(explanation)
        obj.rec_source = source
        obj.rec_new = any(e.get("new") for e in explanation)
        obj.rec_explore = any(e.get("explore") for e in explanation)
        result.append(obj)
    return result


def _mmr(items: list[Any], n: int, lam: float) -> list[Any]:
    """Re-rank by maximal marginal relevance: relevance against similarity to what is already chosen.

    Similarity between two picks is 1 when they share an explanation item or a model, else 0:
    a cheap proxy that needs no vectors at request time.
    """
    if lam <= 0 or len(items) <= 2:
        return items[:n]
    top = max(i.rec_score for i in items) or 1.0
    chosen: list[Any] = []
    pool = list(items)
    while pool and len(chosen) < n:
        def gain(item):
            sources = {(e["content_type"], e["object_id"]) for e in item.rec_explanation}
            overlap = max(
                (1.0 if sources & {(e["content_type"], e["object_id"]) for e in c.rec_explanation} else 0.0)
                for c in chosen
            ) if chosen else 0.0
            return (1 - lam) * item.rec_score / top - lam * overlap
        best = max(pool, key=gain)
        pool.remove(best)
        chosen.append(best)
    for rank, item in enumerate(chosen, 1):
        item.rec_rank = rank
    return chosen


def stored_picks(user, *, model=None, arm=None) -> list[tuple[int, str, float, list]]:
    """Return ``user``'s stored picks as ``(content_type_id, object_id, score, explanation)``, best first.

    Without ``arm`` (or with an arm that serves the default configuration) these are the active
    build's picks; an experiment arm with an algorithm of its own reads the lists the active build
    stored for it (``ArmPicks``), and an arm naming a kept build reads that build's picks.
    """
    if arm is not None and arm.algorithm and not arm.build_id:
        body = (ArmPicks.objects.filter(build__is_active=True, arm_id=arm.pk, user=user)
                .values_list("items", flat=True).first())
        ct_id = _ct(model).pk if model is not None else None
        return [(ct, oid, score, []) for ct, oid, score in json.loads(body or "[]") if ct_id in (None, ct)]
    if arm is not None and arm.build_id:
        rows = UserRecommendation.objects.filter(build_id=arm.build_id, user=user)
    else:
        rows = UserRecommendation.objects.filter(build__is_active=True, user=user)
    if model is not None:
        rows = rows.filter(content_type=_ct(model))
    return list(rows.order_by("rank").values_list("content_type_id", "object_id", "score", "explanation"))


def recommended_for(user, *, model=None, n: int = 10, queryset: models.QuerySet | None = None,
                    mmr_lambda: float | None = None, arm=None) -> list[Any]:
    """Return up to ``n`` picks for ``user`` (of ``model`` only, when given), best first.

    A user with no stored picks (a new reader, or one the active build has not seen) gets
    content neighbours of what they did, then the most popular items. ``DIVERSITY_CAPS`` limits
    how many picks share the adapter's ``diversity_key()`` (an author): every stored pick is a
    candidate, then the fallbacks. ``arm`` (an experiment arm, see ``stored_picks``) chooses whose
    stored picks are the candidates.
    """
    model = _model_of(model)
    if user is None or not getattr(user, "is_authenticated", False):
        return popular_items(model=model, n=n, queryset=queryset)
    rows = stored_picks(user, model=model, arm=arm)
    seen = _seen_keys(user, candidates=[(ct, oid) for ct, oid, _, _ in rows]) if rows else _seen_keys(user)
    rules = rules_by_key()
    candidates = [((ct, oid), score, expl or [], "personal") for ct, oid, score, expl in rows]
    lam = app_settings.MMR_LAMBDA if mmr_lambda is None else mmr_lambda
    caps = _diversity_caps()
    # With a cap, every stored pick is a candidate: those it skips leave room for the next best.
    fetch = max(n, len(candidates)) if caps else n * 2 if lam > 0 else n
    items = _materialise(candidates, n=fetch, model=model, queryset=queryset, exclude=seen, rules=rules)
    items = _mmr(items, n * DIVERSITY_POOL if caps else n, lam) if lam > 0 else items
    pool = items
    if caps:
        items = _capped(pool, n, caps, rules, fill=False)
    if len(items) < n:
        if rows:
            seen = _seen_keys(user)  # the fallbacks need the whole history, not just the candidates
        have = {(_ct(type(i)).pk, str(i.pk)) for i in pool}
        need = (n - len(items)) * (DIVERSITY_POOL if caps else 1)
        extra = _content_fallback(seen, n=need, model=model, queryset=queryset,
                                  exclude=seen | have, rules=rules)
        have |= {(_ct(type(i)).pk, str(i.pk)) for i in extra}
        if caps:
            pool = pool + extra
            items = _capped(pool, n, caps, rules, fill=False)
        else:
            items += extra
        if len(items) < n:
            popular = popular_items(model=model, n=(n - len(items)) * (DIVERSITY_POOL if caps else 1),
                                    queryset=queryset, exclude=seen | have, rules=rules)
            items = _capped(pool + popular, n, caps, rules, fill=True) if caps else items + popular
        for rank, item in enumerate(items, 1):
            item.rec_rank = rank
    return items


# --- diversity cap ----------------------------------------------------------------------------

#: Fallback candidates (content neighbours, popular items) read per missing pick when a diversity cap is on.
DIVERSITY_POOL = 3


def _diversity_caps() -> list[tuple[int, int]]:
    """Return the valid ``DIVERSITY_CAPS``, or none when the adapter gives no keys (or the cap is off).

    A malformed value serves uncapped lists and is logged once (check ``recommendations.E018``).
    """
    if type(get_adapter()).diversity_key is DefaultAdapter.diversity_key:
        return []  # no item has a key: nothing to cap, and no pool to read
    try:
        return validate_caps(app_settings.DIVERSITY_CAPS)
    except ValueError as exc:
        message = f"DIVERSITY_CAPS: {exc}"
        if message not in _reported_settings:
            _reported_settings.add(message)
            logger.error("Serving picks without a diversity cap: %s", message)
        return []


def _capped(items: list[Any], n: int, caps: list[tuple[int, int]], rules: dict[Key, ItemRule], *,
            fill: bool) -> list[Any]:
    """Cut ``items`` (best first) to ``n`` so that few share the adapter's ``diversity_key()``.

    ``DIVERSITY_CAPS`` bounds each key; below the bounds ``DIVERSITY_PENALTY`` moves a repeat down.

    Pinned items keep their place: they are never capped and do not count. With ``fill``, a
    pool too uniform to fill the list within the caps is completed by the best skipped items.
    """
    adapter = get_adapter()
    keys = []
    for item in items:
        rule = rules.get((_ct(type(item)).pk, str(item.pk)))
        keys.append(None if rule is not None and rule.action == ItemRule.Action.PIN else adapter.diversity_key(item))
    penalty = app_settings.DIVERSITY_PENALTY
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty >= 0:
        penalty = 0.0  # reported by check recommendations.E018
    chosen = [items[i] for i in capped_ranking(keys, n, caps, penalty=penalty, fill=fill)]
    for rank, item in enumerate(chosen, 1):
        item.rec_rank = rank
    return chosen


def _content_fallback(seen: set[Key], *, n: int, model, queryset, exclude: set[Key], rules) -> list[Any]:
    """Content neighbours of the few items a cold user has touched."""
    if not seen or n <= 0:
        return []
    sources = set(list(seen)[:50])
    build_id = BuildRun.objects.active().values_list("pk", flat=True).first()
    # IN lists on the indexed columns (build, kind, content_type, object_id) instead of an OR of pairs,
    # which SQLite cannot use its index for; the pairs are checked in Python.
    rows = [
        row for row in SimilarItem.objects.filter(
            build_id=build_id, kind=SimilarItem.Kind.CONTENT,
            content_type_id__in={ct for ct, _ in sources}, object_id__in={oid for _, oid in sources}, rank__lte=10,
        ).values_list("content_type_id", "object_id", "target_content_type_id", "target_object_id", "score")
        if (row[0], row[1]) in sources
    ]
    best: dict[Key, tuple[float, Key]] = {}
    for ct_id, object_id, t_ct, t_id, score in rows:
        key = (t_ct, t_id)
        if key not in best or score > best[key][0]:
            best[key] = (score, (ct_id, object_id))
    sources = get_adapter().item_titles(src for _, src in best.values())
    candidates = [
        (key, score, [{"content_type": src[0], "object_id": src[1], "title": sources.get(src, "")}], "content")
        for key, (score, src) in best.items()
    ]
    return _materialise(candidates, n=n, model=model, queryset=queryset, exclude=exclude, rules=rules)


def recommended_queryset(user, *, model, n: int = 10, queryset: models.QuerySet | None = None) -> models.QuerySet:
    """Return ``user``'s stored picks of ``model`` as an ordered QuerySet annotated with ``rec_score`` and ``rec_rank``.

    The QuerySet chains with the host's own managers, e.g.
    ``recommended_queryset(user, model=Article, queryset=Article.objects.filter(is_published=True))``.
    Explanations, and the diversity cap (``DIVERSITY_CAPS``), are on the items returned by
    ``recommended_for``: this QuerySet keeps the stored order.
    """
    model = _model_of(model)
    rows = list(
        UserRecommendation.objects.filter(build__is_active=True, user=user, content_type=_ct(model))
        .order_by("rank").values_list("object_id", "score", "rank")[: n * 3]
    )
    seen = {oid for ct, oid in _seen_keys(user) if ct == _ct(model).pk}
    pk = model._meta.pk
    rows = [(pk.to_python(oid), score, rank) for oid, score, rank in rows if oid not in seen]
    base = queryset if queryset is not None else item_queryset(model)
    if not rows:
        return base.none()
    ids = [r[0] for r in rows]
    return (
        base.filter(pk__in=ids)
        .annotate(
            rec_score=Case(*[When(pk=i, then=Value(s)) for i, s, _ in rows], output_field=FloatField()),
            rec_rank=Case(*[When(pk=i, then=Value(r)) for i, _, r in rows], output_field=IntegerField()),
        )
        .order_by("rec_rank")[:n]
    )


def similar_to(obj, *, n: int = 10, kind: str = "content", queryset: models.QuerySet | None = None) -> list[Any]:
    """Return the stored neighbours of ``obj`` of ``kind`` ("content" or "collaborative"), best first.

    An item the collaborative model has not seen yet (a cold item) falls back to its content neighbours.
    """
    if kind not in SimilarItem.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(SimilarItem.Kind.values)}, not {kind!r}.")
    ct = _ct(type(obj))
    rows = list(
        SimilarItem.objects.filter(build__is_active=True, kind=kind, content_type=ct, object_id=str(obj.pk))
        .order_by("rank").values_list("target_content_type_id", "target_object_id", "score")[: n * 2]
    )
    source = str(kind)  # "content" or "collaborative"
    if not rows and kind == SimilarItem.Kind.COLLABORATIVE:
        return similar_to(obj, n=n, kind=SimilarItem.Kind.CONTENT, queryset=queryset)
    candidates = [((t_ct, t_id), score, [], source) for t_ct, t_id, score in rows]
    return _materialise(candidates, n=n, model=type(obj), queryset=queryset, exclude={(ct.pk, str(obj.pk))})


def popular_items(*, model=None, n: int = 10, window: str = "all", queryset: models.QuerySet | None = None,
                  exclude: set[Key] = frozenset(), rules=None) -> list[Any]:
    """Return the most popular items (of ``model``, when given) of the active build.

    ``window="recent"`` counts only the last ``POPULAR_WINDOW_DAYS`` days ("Popular this week")
    and falls back to all time when too few items were read recently.
    """
    model = _model_of(model)
    rows = PopularItem.objects.filter(build__is_active=True, window=window)
    if model is not None:
        rows = rows.filter(content_type=_ct(model))
    rows = list(rows.order_by("rank", "content_type_id").values_list("content_type_id", "object_id", "score")
                [: (n + len(exclude)) * 2])
    candidates = [((ct, oid), score, [], "popular") for ct, oid, score in rows]
    items = _materialise(candidates, n=n, model=model, queryset=queryset, exclude=set(exclude), rules=rules)
    if len(items) < n and window != "all":
        have = {(_ct(type(i)).pk, str(i.pk)) for i in items}
        items += popular_items(model=model, n=n - len(items), window="all", queryset=queryset,
                               exclude=set(exclude) | have, rules=rules)
    return items


def has_personal_recommendations(user) -> bool:
    """Return whether the active build (or a refresh) stored picks for ``user``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return UserRecommendation.objects.filter(build__is_active=True, user=user).exists()


def predicted_stars(user, obj) -> float | None:
    """Return the stars ``user`` would probably give ``obj`` (1-5), from the active build's rating model.

    This reads the stored user and item factors of the build (one dot product), or returns
    None when the build has no rating model or does not know the user or the item.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    build_id = BuildRun.objects.active().values_list("pk", flat=True).first()
    if build_id is None:
        return None
    try:
        state = build_state(build_id)
        rating_model = state.rating_model
    except BuildError:
        return None
    if rating_model is None:
        return None
    u = state.user_map.get(str(user.pk))
    i = state.item_map.get((_ct(type(obj)).pk, str(obj.pk)))
    if u is None or i is None:
        return None
    return float(np.round(rating_model.predict(np.asarray([u]), np.asarray([i]))[0], 1))


def neighbours_for_admin(obj, *, n: int = 20) -> dict[str, list[Any]]:
    """Return both kinds of stored neighbours of ``obj`` (for its admin page)."""
    return {kind: similar_to(obj, n=n, kind=kind) for kind in SimilarItem.Kind.values}


def cold_scoring_for_admin(obj, *, n: int = 5):
    """Return how the active build scores ``obj`` on content (``build.cold.ColdScoring``) and how many readers' picks hold it.

    Returns ``(None, 0)`` without an active build with a cold model.
    """
    build_id = BuildRun.objects.active().values_list("pk", flat=True).first()
    if build_id is None:
        return None, 0
    key = (_ct(type(obj)).pk, str(obj.pk))
    try:
        scoring = cold_scoring(build_state(build_id), key, n=n)
    except BuildError:
        return None, 0
    if scoring is not None:
        titles = items_by_key(k for k, _ in scoring.nearest)
        scoring.nearest = [(titles[k], score) for k, score in scoring.nearest if k in titles]
    held = UserRecommendation.objects.filter(build_id=build_id, content_type_id=key[0], object_id=key[1]).count()
    return scoring, held


def serving_generation(*, user=None) -> tuple[int | None, int | None, str | None]:
    """Return the active build's id, the generation of served results and ``user``'s own version, in one query.

    A page cached under these three values is never served after a new build, an item or editor's
    rule change (the generation) or an interaction or refresh of the reader (their version): the
    same rules as the stored picks of ``recommendations.payloads``. Anonymous users get ``None``
    as their version.
    """
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    snapshot = user_payload_snapshot(user_id=user_id)
    return snapshot.build_id, snapshot.generation, snapshot.version
