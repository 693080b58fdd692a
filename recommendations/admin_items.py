"""Provides the admin's item helpers: links to an item's admin, and the mixin that adds recommendation controls to a host's item admin."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import selectors
from .models import ItemRule, SimilarItem
from .rules import item_rule_clear, item_rule_set

def item_admin_url(obj) -> str | None:
    """Return the admin change URL of any model instance, or None when it has no admin."""
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def item_link(obj) -> str:
    url = item_admin_url(obj)
    return format_html('<a href="{}">{}</a>', url, obj) if url else format_html("{}", obj)


class ItemRecommendationsAdminMixin:
    """Add recommendation controls to a host's item ``ModelAdmin``.

    * the readonly fields ``recommendation_rule`` (the item's editor rule, with links to
      change it), ``recommendation_neighbours`` (its stored neighbours of both kinds) and
      ``recommendation_cold`` (how the cold-item model scores it: warmth, source, nearest items);
    * the actions "Pin in recommendations", "Boost in recommendations", "Ban from
      recommendations" and "Clear recommendation rule";
    * the changelist column ``recommendation_rule_display`` (the rules of a page load in one query).

    Usage::

        @admin.register(Product)
        class ProductAdmin(ItemRecommendationsAdminMixin, admin.ModelAdmin):
            list_display = ("name", "recommendation_rule_display")
            readonly_fields = ("recommendation_rule", "recommendation_neighbours", "recommendation_cold")
    """

    recommendation_boost_factor = 1.5
    recommendation_neighbours_n = 20

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            for name in ("recommendation_pin", "recommendation_boost", "recommendation_ban", "recommendation_clear"):
                func = getattr(type(self), name)
                actions[name] = (func, name, func.short_description)
        return actions

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)

        class RuleChangeList(base):
            """Load the rules of the page's items in one query (``rec_rule_action`` on each row)."""

            def get_results(self, request):
                super().get_results(request)
                rows = list(self.result_list)
                if rows:
                    ct = ContentType.objects.get_for_model(self.model)
                    rules = dict(ItemRule.objects.filter(content_type=ct, object_id__in=[str(r.pk) for r in rows])
                                 .values_list("object_id", "action"))
                    for row in rows:
                        row.rec_rule_action = rules.get(str(row.pk))

        return RuleChangeList

    def _rule_set(self, request, queryset, action: str, factor: float = 1.5):
        count = 0
        for obj in queryset:
            item_rule_set(obj=obj, action=action, factor=factor, note=f"admin: {request.user}")
            count += 1
        label = dict(ItemRule.Action.choices)[action].lower()
        self.message_user(request, f"{count} item(s): {label} in recommendations.", messages.SUCCESS)

    def recommendation_pin(self, request, queryset):
        self._rule_set(request, queryset, ItemRule.Action.PIN)

    recommendation_pin.short_description = "Pin in recommendations"

    def recommendation_boost(self, request, queryset):
        self._rule_set(request, queryset, ItemRule.Action.BOOST, factor=self.recommendation_boost_factor)

    recommendation_boost.short_description = "Boost in recommendations"

    def recommendation_ban(self, request, queryset):
        self._rule_set(request, queryset, ItemRule.Action.BAN)

    recommendation_ban.short_description = "Ban from recommendations"

    def recommendation_clear(self, request, queryset):
        for obj in queryset:
            item_rule_clear(obj=obj)
        self.message_user(request, f"Cleared the recommendation rules of {queryset.count()} item(s).", messages.SUCCESS)

    recommendation_clear.short_description = "Clear recommendation rule"

    @admin.display(description="recommendations")
    def recommendation_rule_display(self, obj):
        action = getattr(obj, "rec_rule_action", None)
        return dict(ItemRule.Action.choices).get(action, "—") if action else "—"

    @admin.display(description="recommendation rule")
    def recommendation_rule(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        ct = ContentType.objects.get_for_model(obj)
        rule = ItemRule.objects.filter(content_type=ct, object_id=str(obj.pk)).first()
        if rule is None:
            url = reverse("admin:recommendations_itemrule_add") + f"?content_type={ct.pk}&object_id={obj.pk}"
            return format_html('None. <a href="{}">Add a rule</a> (or use the actions of the list).', url)
        url = reverse("admin:recommendations_itemrule_change", args=[rule.pk])
        factor = f" ×{rule.factor:g}" if rule.action == ItemRule.Action.BOOST else ""
        return format_html('{}{} <a href="{}">change</a>', rule.get_action_display(), factor, url)

    @admin.display(description="stored neighbours")
    def recommendation_neighbours(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        if selectors.active_build() is None:
            return "No active build yet: run a build to compute neighbours."
        neighbours = selectors.neighbours_for_admin(obj, n=self.recommendation_neighbours_n)
        columns = []
        for kind, items in neighbours.items():
            title = kind.capitalize()
            if kind == SimilarItem.Kind.COLLABORATIVE and items and all(i.rec_source == "content" for i in items):
                title += " (none stored: the content fallback readers get)"
            rows = format_html_join(
                "", '<tr><td>{}</td><td>{}</td><td>{}</td></tr>',
                ((item.rec_rank, item_link(item), f"{item.rec_score:.3f}") for item in items),
            ) or mark_safe('<tr><td colspan="3">none stored</td></tr>')
            columns.append(format_html(
                '<div class="recommendations-neighbours"><strong>{}</strong><table><thead><tr><th>#</th>'
                '<th>item</th><th>score</th></tr></thead><tbody>{}</tbody></table></div>', title, rows))
        return format_html('<div style="display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start">{}</div>',
                           format_html_join("", "{}", ((c,) for c in columns)))

    @admin.display(description="cold-item scoring")
    def recommendation_cold(self, obj):
        """How the active build scores the item on its content: warmth, the cold score's source, nearest items."""
        if obj is None or obj.pk is None:
            return "—"
        scoring, held = selectors.cold_scoring_for_admin(obj)
        if scoring is None:
            return "No active build with a cold-item model (COLD_START) yet."
        if not scoring.source:
            return "Not mapped yet: the item is mapped when it is saved (if servable) and by the next build."
        source = ("the build's content map (fitted with the other items)" if scoring.source == "build"
                  else "mapped on save, after the build, with its stored content map")
        readers = "saved since the build" if scoring.readers is None else f"{scoring.readers} reader(s) at the build"
        nearest = format_html_join("", "<li>{} ({})</li>", ((item_link(i), f"{s:.2f}") for i, s in scoring.nearest))
        return format_html(
            "<p>{}; warmth {} (its score is {}% the warm model's, {}% the content model's){}.</p>"
            "<p>Cold score: {}. In the stored picks of {} reader(s).</p><p>Nearest by content:</p><ul>{}</ul>",
            readers, f"{scoring.warmth:.2f}", round(100 * scoring.warmth), round(100 * (1 - scoring.warmth)),
            "; shown as New" if scoring.is_new else "", source, held, nearest or mark_safe("<li>none</li>"))
