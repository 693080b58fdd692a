"""Provides the editors' rules (pin, boost, ban): setting and clearing them, and a short-lived cache of all of them."""
from __future__ import annotations

import math

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache

from .models import ItemRule

RULES_CACHE_KEY = "recommendations:item-rules"
RULES_CACHE_SECONDS = 10

Key = tuple[int, str]


def item_rule_set(*, obj, action: str, factor: float = 1.5, note: str = "") -> ItemRule:
    """Pin, boost or ban ``obj`` in every recommendation list."""
    if action not in ItemRule.Action.values:
        raise ValueError(f"Unknown action {action!r}: use one of {', '.join(ItemRule.Action.values)}.")
    if not math.isfinite(factor) or factor <= 0:
        raise ValueError("factor must be a positive number.")
    ct = ContentType.objects.get_for_model(obj)
    rule, _ = ItemRule.objects.update_or_create(
        content_type=ct, object_id=str(obj.pk), defaults={"action": action, "factor": factor, "note": note}
    )
    return rule


def item_rule_clear(*, obj) -> None:
    """Remove the rule on ``obj``, if any."""
    ct = ContentType.objects.get_for_model(obj)
    ItemRule.objects.filter(content_type=ct, object_id=str(obj.pk)).delete()


def rules_by_key() -> dict[Key, ItemRule]:
    """Return the editors' rules by item key; cached for a few seconds, cleared on every change."""
    rules = cache.get(RULES_CACHE_KEY)
    if rules is None:
        rules = {(r.content_type_id, r.object_id): r for r in ItemRule.objects.all()}
        cache.set(RULES_CACHE_KEY, rules, RULES_CACHE_SECONDS)
    return rules


def rules_cache_clear() -> None:
    """Forget the cached rules, so the next read sees every committed change."""
    cache.delete(RULES_CACHE_KEY)
