"""Provides the admin of the recommendations app: a build dashboard, read-only results, editor rules and a reader preview.

* ``BuildRun``: status, duration per stage, counts, offline metrics and tuning of every build, a
  server-side SVG chart of the metrics over builds, a "Build now" button that queues
  ``services.full_build_start`` and a "Make this build active" action (``services.build_activate``).
* "Preview as reader" (``<admin>/recommendations/buildrun/preview/``): pick a user and see
  exactly what ``selectors.recommended_for`` serves them, with explanations and sources.
* ``SimilarItem``, ``UserRecommendation``, ``PopularItem``: read-only browsing of stored rows.
* ``ItemRule``: the editors' pin / boost / ban rules.
* ``ItemRecommendationsAdminMixin``: for a host's item ``ModelAdmin``; it shows the item's
  stored neighbours on its change page and adds pin / boost / ban / clear actions.

This module knows nothing about the host's models: items are reached through content types. The
dashboard's charts are in ``admin_charts``, the item helpers and the mixin in ``admin_items``.
"""
from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import payloads, selectors, services
from .admin_charts import build_metrics, durations_chart, metrics_chart, stage_names, tuning_rows
from .build.tuning import tuning_summary
from .admin_items import ItemRecommendationsAdminMixin, item_admin_url, item_link
from .conf import app_settings
from .experiments import admin as experiments_admin  # noqa: F401  (registers the experiments' admin)
from .impressions import admin as impressions_admin  # noqa: F401 -- registers the online metrics' admin
from .items import items_by_key
from .models import BuildRun, ItemRule, PopularItem, SimilarItem, UserRecommendation

__all__ = ["ItemRecommendationsAdminMixin", "item_admin_url", "item_link", "metrics_chart"]


# --- helpers ----------------------------------------------------------------------------------------


def _attach_items(rows, pairs: tuple[tuple[str, str, str], ...]) -> None:
    """Load the items that ``rows`` point at with one query per model and set them as attributes.

    ``pairs`` lists ``(content_type_id attribute, object_id attribute, target attribute)``.
    """
    found = items_by_key((getattr(row, ct_attr), getattr(row, id_attr)) for row in rows for ct_attr, id_attr, _ in pairs)
    for row in rows:
        for ct_attr, id_attr, target in pairs:
            setattr(row, target, found.get((getattr(row, ct_attr), str(getattr(row, id_attr)))))


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


# --- builds ----------------------------------------------------------------------------------------


@admin.register(BuildRun)
class BuildRunAdmin(admin.ModelAdmin):
    """The build dashboard."""

    change_list_template = "admin/recommendations/buildrun/change_list.html"
    list_display = ("build_label", "status", "is_active", "algorithm", "created", "duration_display",
                    "stages_display", "counts_display", "metrics_display", "tuning_display")
    list_filter = ("status", "is_active", "triggered_by")
    date_hierarchy = "created_at"
    actions = ("make_active",)
    fields = ("status", "is_active", "algorithm", "triggered_by", "task_id", "created_at", "started_at",
              "finished_at", "activated_at", "data_until", "duration_display", "stages_table", "counts_table",
              "metrics_table", "tuning_table", "params", "error")
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
        return self._lines((s, f"{obj.timings[s]:.2f}") for s in stage_names([obj]))

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

    @admin.display(description="tuning")
    def tuning_display(self, obj):
        return tuning_summary(obj.tuning) or "—"

    @admin.display(description="tuning")
    def tuning_table(self, obj):
        return self._table(tuning_rows(obj.tuning))

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
            if build.status == BuildRun.Status.FAILED:
                self.message_user(request, f"Build #{build.pk}: {build.error}", messages.ERROR)
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
    """Computed rows: browse them; builds write them.

    Deleting follows the model's delete permission (a superuser has it): the admin asks for it
    on every row a delete cascades to, so denying it would forbid deleting a user who has picks.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        payloads.user_payloads_invalidate()  # stored response bodies may hold the deleted row

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        payloads.user_payloads_invalidate()


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
        return selectors.explanation_text(obj.explanation or []) or "—"


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
