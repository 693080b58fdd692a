"""Provides the admin of online metrics: the daily rows with server-side SVG charts over days, and the raw impressions."""
from __future__ import annotations

from typing import Any

from django.contrib import admin

from ..admin_charts import line_chart
from .models import DailyMetric, Impression

CHARTED = (("ctr", "CTR"), ("read_through_rate", "Read-through rate"),
           ("positive_feedback_rate", "Positive-feedback rate (Gorse)"), ("not_interested_rate", '"Not interested" rate'),
           ("coverage", "Coverage"))


def daily_chart(rows: list[DailyMetric], field: str, *, width: int = 640, height: int = 160) -> dict[str, Any] | None:
    """Lay out an SVG line chart of ``field`` per day (oldest left), one line per surface and arm; None without rows."""
    days = sorted({row.day for row in rows})
    series: dict[str, list[tuple[int, float]]] = {}
    for row in sorted(rows, key=lambda r: r.day):
        name = row.surface + (f" {row.experiment}/{row.arm}" if row.experiment else "")
        series.setdefault(name, []).append((days.index(row.day), float(getattr(row, field))))
    return line_chart(series, [f"{d:%m-%d}" for d in days], width=width, height=height, max_labels=8)


@admin.register(DailyMetric)
class DailyMetricAdmin(admin.ModelAdmin):
    """Read-only: rows are rolled up nightly by the ``impressions_daily_run`` task."""

    change_list_template = "admin/recommendations/dailymetric/change_list.html"
    list_display = ["day", "surface", "experiment", "arm", "impressions", "ctr", "read_through_rate", "rating_rate",
                    "not_interested_rate", "coverage", "positive_feedback_rate"]
    list_filter = ["surface", "experiment", "day"]
    date_hierarchy = "day"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        rows = list(DailyMetric.objects.order_by("-day")[:60 * 8])
        charts = [{"title": title, "chart": daily_chart(rows, field)} for field, title in CHARTED]
        return super().changelist_view(request, {**(extra_context or {}), "impression_charts": charts})


@admin.register(Impression)
class ImpressionAdmin(admin.ModelAdmin):
    """Read-only: the raw record of served lists, kept ``IMPRESSION_RETENTION_DAYS`` days."""

    list_display = ["recommendation_id", "surface", "algorithm", "build_id", "experiment", "arm", "user", "created_at"]
    list_filter = ["surface", "experiment"]
    search_fields = ["=recommendation_id"]
    raw_id_fields = ["user"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
