"""Provides template tags that show stored recommendations: ``{% load recommendations %}``.

Each tag calls one function of ``recommendations.selectors`` and does nothing else, so a page
never computes recommendations; it reads the rows of the active build. The tags know nothing
about the host project's models: items are the host's own instances, with these attributes
added by the selectors:

* ``rec_score`` (float) and ``rec_rank`` (int, 1 = best);
* ``rec_explanation``: a list of ``{"title", "content_type", "object_id"}`` of the history
  items that contributed most (may be empty);
* ``rec_because``: ready-to-show text in the active language, such as ``"Because you read Dune
  and Emma"`` (or ``""``), worded by the adapter's ``explanation_text()``;
* ``rec_source``: ``"personal"``, ``"popular"`` or ``"content"`` for picks, ``"content"`` or
  ``"collaborative"`` for neighbours.

Models are named by their ``"app_label.ModelName"`` label (case-insensitive), the way
``RECOMMENDATIONS["ITEM_MODELS"]`` names them.

Each list tag returns a list with a ``recommendation_id`` and records it as an impression on
``surface`` (default ``"tag"``): put the id and the 1-based position in the item links
(``?rid={{ recs.recommendation_id }}&pos={{ forloop.counter }}``) so that the clicks and what
follows are attributed to the list. Cached pages need ``ImpressionMiddleware``
(``recommendations.impressions.pages``) so that each view gets its own id. The partial
``recommendations/item_list.html`` renders any of the lists as links::

    {% include "recommendations/item_list.html" with items=recs %}
"""
from __future__ import annotations

from django import template
from django.apps import apps

from .. import selectors
from ..experiments.serving import picks_served
from ..impressions.pages import served_list

register = template.Library()


def _model(label):
    """Resolve ``"app_label.ModelName"`` (or a model class, or ``None``) to a model class."""
    if label is None or label == "" or isinstance(label, type):
        return label or None
    try:
        return apps.get_model(str(label))
    except (LookupError, ValueError):
        raise template.TemplateSyntaxError(
            f"Unknown model {label!r}: name it as 'app_label.ModelName', e.g. 'shop.product'."
        ) from None


def _limit(value, tag: str) -> int:
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise template.TemplateSyntaxError(f"{tag}: limit must be a whole number, not {value!r}.") from None
    return max(0, limit)


def _request(context):
    return context.get("request") if context is not None else None


@register.simple_tag(takes_context=True)
def recommended_for(context, user, limit=10, model=None, surface="tag"):
    """
    Return the stored top picks for ``user``, best first.

    Under a live experiment whose surfaces include ``surface``, the reader gets their arm's picks
    (``recommendations.experiments``), recorded with the experiment and arm.
    Signed-in users with history get their personal picks (each with ``rec_because``); new
    users get content neighbours of their little history, then popular items; anonymous
    users get popular items. Items the user has
    already seen or rated, marked "not interested", banned or unpublished are left out.

    Syntax::

        {% recommended_for user [limit=N] [model="app_label.ModelName"] [surface="home"] as context_name %}

    Example usage::

        {% recommended_for request.user limit=10 as recs %}
        {% for item in recs %}
          <a href="{{ item.get_absolute_url }}">{{ item }}</a>
          {% if item.rec_because %}<small>{{ item.rec_because }}</small>{% endif %}
        {% endfor %}

        {% recommended_for user model="library.book" limit=6 as book_picks %}
    """
    request = _request(context)
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    # Under a live experiment of ``surface``, the reader's arm's list (or both arms interleaved).
    served = picks_served(user, surface=surface, session_key=session_key, model=_model(model),
                          n=_limit(limit, "recommended_for"))
    return served_list(request, served.items, surface=surface, experiment=served.experiment, arm=served.arm)


@register.simple_tag(takes_context=True)
def similar_items(context, obj, kind="content", limit=10, surface="tag"):
    """
    Return the stored neighbours of ``obj`` (items of the same model), best first.

    ``kind`` is ``"content"`` (similar text and tags, the default) or ``"collaborative"``
    (people who read this also read).

    Syntax::

        {% similar_items obj [kind="content"|"collaborative"] [limit=N] [surface="detail"] as context_name %}

    Example usage::

        {% similar_items article as related %}
        {% similar_items book kind="collaborative" limit=6 as also_read %}
        <ul>{% for item in also_read %}<li><a href="{{ item.get_absolute_url }}">{{ item }}</a></li>{% endfor %}</ul>
    """
    if kind not in ("content", "collaborative"):
        raise template.TemplateSyntaxError(f"similar_items: kind must be 'content' or 'collaborative', not {kind!r}.")
    if obj is None or getattr(obj, "pk", None) is None:
        return served_list(None, [], surface=surface)
    items = selectors.similar_to(obj, kind=kind, n=_limit(limit, "similar_items"))
    return served_list(_request(context), items, surface=surface)


@register.simple_tag(takes_context=True)
def popular_items(context, model, limit=10, window="all", surface="tag"):
    """
    Return the most popular items of ``model`` in the active build.

    ``window`` is ``"all"`` (all time, the default) or ``"recent"`` (the last
    ``RECOMMENDATIONS["POPULAR_WINDOW_DAYS"]`` days, 7 by default: "popular this week").

    Syntax::

        {% popular_items model="app_label.ModelName" [limit=N] [window="all"|"recent"] [surface="home"] as context_name %}

    Example usage::

        {% popular_items model="library.book" limit=8 as books %}
        {% popular_items model="blog.post" limit=6 window="recent" as this_week %}
    """
    if window not in ("all", "recent"):
        raise template.TemplateSyntaxError(f"popular_items: window must be 'all' or 'recent', not {window!r}.")
    resolved = _model(model)
    if resolved is None:
        raise template.TemplateSyntaxError("popular_items needs model=\"app_label.ModelName\".")
    items = selectors.popular_items(model=resolved, n=_limit(limit, "popular_items"), window=window)
    return served_list(_request(context), items, surface=surface)


@register.simple_tag
def predicted_stars(user, obj):
    """
    Return the stars (1.0-5.0) the active build predicts ``user`` would give ``obj``, or ``None``.

    ``None`` for anonymous users and when the build has no prediction for this pair.

    Syntax::

        {% predicted_stars user obj as context_name %}

    Example usage::

        {% predicted_stars request.user book as stars %}
        {% if stars %}We think you'll give this {{ stars|floatformat:1 }} stars.{% endif %}
    """
    if obj is None:
        return None
    return selectors.predicted_stars(user, obj)
