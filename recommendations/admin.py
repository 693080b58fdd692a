"""Provides the admin of the recommendations app: a build dashboard, read-only results, editor rules and a reader preview.

* ``BuildRun``: status, duration per stage, counts and offline metrics of every build, a
  server-side SVG chart of the metrics over builds, a "Build now" button that queues
  ``services.full_build_start`` and a "Make this build active" action (``services.build_activate``).
* "Preview as reader" (``<admin>/recommendations/buildrun/preview/``): pick a user and see
  exactly what ``selectors.recommended_for`` serves them, with explanations and sources.
* ``SimilarItem``, ``UserRecommendation``, ``PopularItem``: read-only browsing of stored rows.
* ``ItemRule``: the editors' pin / boost / ban rules.
* ``ItemRecommendationsAdminMixin``: for a host's item ``ModelAdmin``; it shows the item's
  stored neighbours on its change page and adds pin / boost / ban / clear actions.

This module knows nothing about the host's models: items are reached through content types.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import selectors, services
from .conf import app_settings
from .models import BuildRun, ItemRule, PopularItem, SimilarItem, UserRecommendation

STAGES = ("load", "fit", "score", "write", "switch")


def _stages(builds) -> list[str]:
    """Return the stage names in the builds' timings: the five main ones first, then any others."""
    names = [s for s in STAGES if any(s in b.timings for b in builds)]
    for build in builds:
        names += [k for k in build.timings if k not in names and isinstance(build.timings[k], (int, float))]
    return names
# Keys of an evaluation result that are bookkeeping, not quality metrics.
_NOT_METRICS = {"fit_seconds", "score_seconds", "n_users", "n_skipped_users", "best_score"}
CHART_COLOURS = ("#417690", "#e07b39", "#3a9a5b", "#b8455b", "#7a5fb0", "#8c8c3c", "#2e8b9a", "#c0a030")


# --- helpers ----------------------------------------------------------------------------------------


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


def _attach_items(rows, pairs: tuple[tuple[str, str, str], ...]) -> None:
    """Load the items that ``rows`` point at with one query per model and set them as attributes.

    ``pairs`` lists ``(content_type_id attribute, object_id attribute, target attribute)``.
    """
    wanted: dict[int, set[str]] = {}
    for row in rows:
        for ct_attr, id_attr, _ in pairs:
            wanted.setdefault(getattr(row, ct_attr), set()).add(getattr(row, id_attr))
    found: dict[tuple[int, str], Any] = {}
    for ct_id, ids in wanted.items():
        model = ContentType.objects.get_for_id(ct_id).model_class()
        if model is None:
            continue
        pk = model._meta.pk
        keys = []
        for object_id in ids:
            try:
                keys.append(pk.to_python(object_id))
            except ValidationError:
                continue
        for obj in model._default_manager.filter(pk__in=keys):
            found[(ct_id, str(obj.pk))] = obj
    for row in rows:
        for ct_attr, id_attr, target in pairs:
            setattr(row, target, found.get((getattr(row, ct_attr), getattr(row, id_attr))))


def _item_changelist(pairs):
    class ItemChangeList(ChangeList):
        """A changelist that loads the items its rows point at in one query per item model (no N+1)."""

        def get_results(self, request):
            super().get_results(request)
            _attach_items(self.result_list, pairs)

    return ItemChangeList


def _item_cell(obj, missing_key: str) -> str:
    if obj is None:
        return format_html('<span title="deleted or not loaded">{}</span>', missing_key)
    return item_link(obj)


def build_metrics(build: BuildRun) -> dict[str, float]:
    """Return the numeric offline metrics of ``build`` (e.g. ``{"ndcg@10": 0.21}``), flattened.

    ``manage.py recommendations evaluate`` stores ``{"results": {algorithm: {metric: value}}}``;
    the build's own algorithm is shown (else the first result). Plain ``{metric: value}`` dicts
    work too.
    """
    metrics = build.metrics or {}
    results = metrics.get("results")
    if isinstance(results, dict) and results:
        chosen = results.get(build.algorithm) or next(iter(results.values()))
        metrics = chosen if isinstance(chosen, dict) else {}
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in _NOT_METRICS
        and not key.startswith("n_")
    }


def metrics_chart(builds: list[BuildRun], *, width: int = 640, height: int = 180) -> dict[str, Any] | None:
    """Lay out an SVG line chart of the builds' metrics (oldest left); None when no build has metrics.

    Everything is computed here so the template only draws: no JavaScript, no CDN.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    builds = [b for b in builds if build_metrics(b)]
    for index, build in enumerate(builds):
        for key, value in build_metrics(build).items():
            series.setdefault(key, []).append((index, value))
    if not series:
        return None
    left, right, top, bottom = 44, 12, 12, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value = max(v for points in series.values() for _, v in points) or 1.0
    span = max(len(builds) - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        return (round(left + inner_w * index / span, 1), round(top + inner_h * (1 - value / top_value), 1))

    lines = []
    for n, (key, points) in enumerate(sorted(series.items())):
        coords = [xy(i, v) for i, v in points]
        lines.append({
            "name": key, "colour": CHART_COLOURS[n % len(CHART_COLOURS)],
            "points": " ".join(f"{x},{y}" for x, y in coords),
            "dots": [{"x": x, "y": y, "value": v} for (x, y), (_, v) in zip(coords, points)],
            "last": points[-1][1],
        })
    ticks = [{"y": round(top + inner_h * (1 - f), 1), "label": f"{top_value * f:.3g}"} for f in (0, 0.5, 1)]
    labels = [{"x": xy(i, 0)[0], "text": f"#{b.pk}"} for i, b in enumerate(builds)]
    return {"width": width, "height": height, "left": left, "right": width - right, "bottom": height - bottom,
            "lines": lines, "ticks": ticks, "labels": labels}


def durations_chart(builds: list[BuildRun], *, width: int = 640, height: int = 120) -> dict[str, Any] | None:
    """Lay out stacked bars of seconds per stage for each finished build (oldest left)."""
    builds = [b for b in builds if b.timings]
    if not builds:
        return None
    left, top, bottom = 44, 8, 24
    inner_h = height - top - bottom
    stages = _stages(builds)
    totals = [sum(float(b.timings.get(s, 0) or 0) for s in stages) for b in builds]
    top_value = max(totals) or 1.0
    slot = (width - left - 8) / len(builds)
    bar_w = max(4.0, min(36.0, slot * 0.7))
    bars = []
    for i, build in enumerate(builds):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + inner_h
        segments = []
        for n, stage in enumerate(stages):
            seconds = float(build.timings.get(stage, 0) or 0)
            h = inner_h * seconds / top_value
            y -= h
            segments.append({"y": round(y, 1), "h": round(h, 1), "stage": stage, "seconds": seconds,
                             "colour": CHART_COLOURS[n % len(CHART_COLOURS)]})
        bars.append({"x": round(x, 1), "w": round(bar_w, 1), "segments": segments, "label": f"#{build.pk}",
                     "total": round(totals[i], 2), "cx": round(x + bar_w / 2, 1)})
    legend = [{"stage": s, "colour": CHART_COLOURS[n % len(CHART_COLOURS)]} for n, s in enumerate(stages)]
    return {"width": width, "height": height, "left": left, "bottom": height - bottom, "top": top,
            "max": f"{top_value:.3g}", "bars": bars, "legend": legend}


# --- builds ----------------------------------------------------------------------------------------


@admin.register(BuildRun)
class BuildRunAdmin(admin.ModelAdmin):
    """The build dashboard."""

    change_list_template = "admin/recommendations/buildrun/change_list.html"
    list_display = ("build_label", "status", "is_active", "algorithm", "created", "duration_display",
                    "stages_display", "counts_display", "metrics_display")
    list_filter = ("status", "is_active", "triggered_by")
    date_hierarchy = "created_at"
    actions = ("make_active",)
    fields = ("status", "is_active", "algorithm", "triggered_by", "task_id", "created_at", "started_at",
              "finished_at", "activated_at", "data_until", "duration_display", "stages_table", "counts_table",
              "metrics_table", "params", "error")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # The active build is what readers see: switch to another one before deleting it.
        if obj is not None and obj.is_active:
            return False
        return super().has_delete_permission(request, obj)

    # --- columns
    @admin.display(description="build", ordering="pk")
    def build_label(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, obj):
        return f"{obj.created_at:%Y-%m-%d %H:%M}"

    @admin.display(description="duration")
    def duration_display(self, obj):
        return "—" if obj.duration is None else f"{obj.duration:.1f} s"

    def _lines(self, pairs):
        return format_html_join(mark_safe("<br>"), "{} {}", pairs) or "—"

    @admin.display(description="seconds per stage")
    def stages_display(self, obj):
        return self._lines((s, f"{obj.timings[s]:.2f}") for s in _stages([obj]))

    @admin.display(description="counts")
    def counts_display(self, obj):
        keys = ("users", "items", "interactions", "recommendations")
        return self._lines((k, f"{obj.counts[k]:,}") for k in keys if isinstance(obj.counts.get(k), int))

    @admin.display(description="offline metrics")
    def metrics_display(self, obj):
        metrics = build_metrics(obj)
        # The list shows the headline metrics; the build's page shows all of them.
        headline = [k for k in metrics if k.lower().startswith(("ndcg@", "hr@", "coverage@"))] or sorted(metrics)[:3]
        return self._lines((k, f"{metrics[k]:.4f}") for k in headline)

    def _table(self, rows):
        if not rows:
            return "—"
        return format_html('<table class="recommendations-table"><tbody>{}</tbody></table>',
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="seconds per stage")
    def stages_table(self, obj):
        return self._table([(k, v) for k, v in obj.timings.items()])

    @admin.display(description="counts")
    def counts_table(self, obj):
        return self._table([(k, f"{v:,}" if isinstance(v, int) else v) for k, v in obj.counts.items()])

    @admin.display(description="offline metrics")
    def metrics_table(self, obj):
        rows = [(k, f"{v:.4f}") for k, v in sorted(build_metrics(obj).items())]
        if obj.metrics.get("protocol"):
            rows.append(("protocol", obj.metrics["protocol"]))
        if obj.metrics.get("evaluated_at"):
            rows.append(("evaluated at", obj.metrics["evaluated_at"]))
        return self._table(rows)

    # --- actions
    # Builds are read-only rows; starting one needs the "add build run" permission and switching the
    # served build needs "change build run" (superusers have both).
    def has_build_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.add_{self.opts.model_name}")

    def has_activate_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    @admin.action(description="Make this build active", permissions=["activate"])
    def make_active(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one build to make active.", messages.ERROR)
            return
        build = queryset.get()
        try:
            services.build_activate(build_id=build.pk)
        except services.BuildError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Build #{build.pk} is now active: readers see its results.", messages.SUCCESS)

    # --- extra views
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("build-now/", self.admin_site.admin_view(self.build_now_view), name="%s_%s_build_now" % info),
            path("preview/", self.admin_site.admin_view(self.preview_view), name="%s_%s_preview" % info),
            *super().get_urls(),
        ]

    def build_now_view(self, request):
        """Queue a full build (POST only); say so, or say which build holds the lock."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_build_permission(request):
            raise PermissionDenied
        try:
            build = services.full_build_start(triggered_by="admin")
        except services.BuildAlreadyRunning as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Build #{build.pk} is queued; a worker will run it.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:recommendations_buildrun_changelist"))

    def changelist_view(self, request, extra_context=None):
        recent = list(BuildRun.objects.filter(status=BuildRun.Status.SUCCEEDED).order_by("-created_at")[:30])[::-1]
        extra_context = {
            **(extra_context or {}),
            "metrics_chart": metrics_chart(recent),
            "durations_chart": durations_chart(recent),
            "active_build": selectors.active_build(),
            "lock_holder": services.build_lock_holder(),
            "has_build_permission": self.has_build_permission(request),
            "running_builds": BuildRun.objects.filter(
                status__in=[BuildRun.Status.QUEUED, BuildRun.Status.RUNNING]).count(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def preview_view(self, request):
        """Show what one reader sees: their picks with explanations and sources, and the popular fallback."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PreviewForm(request.GET or None)
        user = picks = popular = None
        if form.is_valid():
            user = form.cleaned_data["user"]
            picks = selectors.recommended_for(user, n=20)
            popular = selectors.popular_items(n=10)
            for item in [*picks, *popular]:
                item.admin_url = item_admin_url(item)
                item.model_label = item._meta.verbose_name
        context = {
            **self.admin_site.each_context(request),
            "title": "Preview as reader",
            "opts": self.opts,
            "form": form,
            "reader": user,
            "picks": picks,
            "popular": popular,
            "active_build": selectors.active_build(),
            "has_personal": selectors.has_personal_recommendations(user) if user is not None else None,
            "stored_count": UserRecommendation.objects.filter(build__is_active=True, user=user).count()
            if user is not None else None,
        }
        return TemplateResponse(request, "admin/recommendations/preview.html", context)


class PreviewForm(forms.Form):
    """Pick a reader by username (or email, whatever ``USERNAME_FIELD`` is) or primary key."""

    user = forms.CharField(label="Reader", help_text="Username or id.", max_length=150)

    def clean_user(self):
        value = self.cleaned_data["user"].strip()
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: value}).first()
        if user is None:
            try:
                user = User._default_manager.filter(pk=User._meta.pk.to_python(value)).first()
            except (ValidationError, ValueError, TypeError):
                user = None
        if user is None:
            raise ValidationError(f"No user with the {User.USERNAME_FIELD} or id {value!r}.")
        return user


# --- stored results (read-only) ------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Computed rows: browse them; builds write them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SourceFilter(admin.SimpleListFilter):
    """The stored pick's origin, without a DISTINCT scan of a large table."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return (("build", "full build"), ("refresh", "incremental refresh"))

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(SimilarItem)
class SimilarItemAdmin(ReadOnlyAdmin):
    list_display = ("source_item", "kind", "rank", "target_item", "score", "build")
    list_filter = ("kind", "content_type", "build")
    # The order of the lookup index, so a page of a large table needs no sort.
    ordering = ("build_id", "kind", "content_type_id", "object_id", "rank")
    list_select_related = ("build",)
    search_fields = ("=object_id", "=target_object_id")
    raw_id_fields = ("build",)

    def get_changelist(self, request, **kwargs):
        return _item_changelist((("content_type_id", "object_id", "source_obj"),
                                 ("target_content_type_id", "target_object_id", "target_obj")))

    @admin.display(description="item")
    def source_item(self, obj):
        return _item_cell(getattr(obj, "source_obj", None), f"{obj.content_type_id}:{obj.object_id}")

    @admin.display(description="neighbour")
    def target_item(self, obj):
        return _item_cell(getattr(obj, "target_obj", None), f"{obj.target_content_type_id}:{obj.target_object_id}")


@admin.register(UserRecommendation)
class UserRecommendationAdmin(ReadOnlyAdmin):
    list_display = ("user", "rank", "item", "score", "source", "because", "build")
    list_filter = (SourceFilter, "content_type", "build")
    ordering = ("build_id", "user_id", "rank")
    list_select_related = ("user", "build")
    raw_id_fields = ("user", "build")

    def get_search_fields(self, request):
        return (f"=user__{get_user_model().USERNAME_FIELD}", "=object_id")

    def get_changelist(self, request, **kwargs):
        return _item_changelist((("content_type_id", "object_id", "item_obj"),))

    @admin.display(description="item")
    def item(self, obj):
        return _item_cell(getattr(obj, "item_obj", None), f"{obj.content_type_id}:{obj.object_id}")

    @admin.display(description="because")
    def because(self, obj):
        return selectors.because(obj.explanation or []) or "—"


@admin.register(PopularItem)
class PopularItemAdmin(ReadOnlyAdmin):
    list_display = ("rank", "item", "window", "score", "build")
    list_filter = ("window", "content_type", "build")
    ordering = ("build_id", "window", "content_type_id", "rank")
    list_select_related = ("build",)
    raw_id_fields = ("build",)
    search_fields = ("=object_id",)

    def get_changelist(self, request, **kwargs):
        return _item_changelist((("content_type_id", "object_id", "item_obj"),))

    @admin.display(description="item")
    def item(self, obj):
        return _item_cell(getattr(obj, "item_obj", None), f"{obj.content_type_id}:{obj.object_id}")


# --- editors' rules ---------------------------------------------------------------------------------------


def item_content_types():
    """Return the content types of ``RECOMMENDATIONS["ITEM_MODELS"]``."""
    from django.apps import apps

    models = []
    for label in app_settings.ITEM_MODELS:
        try:
            models.append(apps.get_model(label))
        except (LookupError, ValueError):
            continue
    return ContentType.objects.get_for_models(*models).values() if models else []


class ItemRuleForm(forms.ModelForm):
    class Meta:
        model = ItemRule
        fields = ("content_type", "object_id", "action", "factor", "note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ids = [ct.pk for ct in item_content_types()]
        self.fields["content_type"].queryset = ContentType.objects.filter(pk__in=ids)
        self.fields["content_type"].label = "Item type"
        self.fields["object_id"].label = "Item id"

    def clean(self):
        cleaned = super().clean()
        ct, object_id = cleaned.get("content_type"), cleaned.get("object_id")
        if ct is not None and object_id:
            model = ct.model_class()
            try:
                exists = model._default_manager.filter(pk=model._meta.pk.to_python(object_id)).exists()
            except ValidationError:
                exists = False
            if not exists:
                raise ValidationError({"object_id": f"There is no {ct.name} with the id {object_id!r}."})
        if cleaned.get("factor") is not None and cleaned["factor"] <= 0:
            raise ValidationError({"factor": "The factor must be a positive number."})
        return cleaned


@admin.register(ItemRule)
class ItemRuleAdmin(admin.ModelAdmin):
    form = ItemRuleForm
    list_display = ("item", "action", "factor", "note", "created_at")
    list_filter = ("action", "content_type")
    search_fields = ("=object_id", "note")
    date_hierarchy = "created_at"

    def get_changelist(self, request, **kwargs):
        return _item_changelist((("content_type_id", "object_id", "item_obj"),))

    @admin.display(description="item")
    def item(self, obj):
        return _item_cell(getattr(obj, "item_obj", None), f"{obj.content_type_id}:{obj.object_id}")



# --- a mixin for the host's item admins ----------------------------------------------------------------------


class ItemRecommendationsAdminMixin:
    """Add recommendation controls to a host's item ``ModelAdmin``.

    * the readonly fields ``recommendation_rule`` (the item's editor rule, with links to
      change it) and ``recommendation_neighbours`` (its stored neighbours of both kinds);
    * the actions "Pin in recommendations", "Boost in recommendations", "Ban from
      recommendations" and "Clear recommendation rule";
    * the changelist column ``recommendation_rule_display`` (the rules of a page load in one query).

    Usage::

        @admin.register(Product)
        class ProductAdmin(ItemRecommendationsAdminMixin, admin.ModelAdmin):
            list_display = ("name", "recommendation_rule_display")
            readonly_fields = ("recommendation_rule", "recommendation_neighbours")
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
            services.item_rule_set(obj=obj, action=action, factor=factor, note=f"admin: {request.user}")
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
            services.item_rule_clear(obj=obj)
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
