"""Provides the build dashboard's figures: a build's quality metrics and the server-side SVG charts over builds."""
from __future__ import annotations

from typing import Any

from .build.tuning import tuning_summary
from .models import BuildRun

STAGES = ("load", "fit", "score", "write", "switch")


def stage_names(builds) -> list[str]:
    """Return the stage names in the builds' timings: the five main ones first, then any others."""
    names = [s for s in STAGES if any(s in b.timings for b in builds)]
    for build in builds:
        names += [k for k in build.timings if k not in names and isinstance(build.timings[k], (int, float))]
    return names
# Keys of an evaluation result that are bookkeeping, not quality metrics.
NOT_METRICS = {"fit_seconds", "score_seconds", "n_users", "n_skipped_users", "best_score"}
CHART_COLOURS = ("#417690", "#e07b39", "#3a9a5b", "#b8455b", "#7a5fb0", "#8c8c3c", "#2e8b9a", "#c0a030")


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
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in NOT_METRICS
        and not key.startswith("n_")
    }


def _number(value: Any, fmt: str = ".4f") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def tuning_rows(tuning: dict[str, Any]) -> list[tuple[str, str]]:
    """The build page's table of ``BuildRun.tuning``: decision, validation scores, chosen configuration, time."""
    if not tuning:
        return []
    rows = [("decision", tuning_summary(tuning))]
    if tuning.get("retune_reason"):
        rows.append(("why it tuned", tuning["retune_reason"]))
    if tuning.get("tuned_build") is not None:
        rows.append(("tuned by", f"build #{tuning['tuned_build']} at {tuning.get('tuned_at', '?')} on "
                                 f"{tuning.get('tuned_interactions', '?'):,} interactions"))
    if tuning.get("validation"):
        items = f", over {tuning['items']:,} items with interactions" if tuning.get("items") else ""
        rows.append(("validation", f"{tuning['validation']}, {tuning.get('metric', '')}{items}"))
    if "blend" in tuning:
        rows.append(("blend score", _number(tuning["blend"])))
    candidates = tuning.get("candidates") or {}
    for name, score in (tuning.get("member_scores") or {}).items():
        tried = f" ({candidates[name]} candidates)" if name in candidates else ""
        rows.append((f"{name} score", _number(score) + tried))
    params = tuning.get("params") or {}
    if params.get("weights"):
        rows.append(("weights", ", ".join(f"{n} {_number(w, '.3g')}" for n, w in params["weights"].items())))
    for name, value in params.items():
        if name != "weights" and isinstance(value, dict):
            rows.append((f"{name} parameters", ", ".join(f"{k}={v}" for k, v in sorted(value.items()))))
    if "seconds" in tuning:
        budget = tuning.get("budget_seconds")
        rows.append(("tuning seconds", _number(tuning["seconds"], ".2f")
                     + (f" (budget {_number(budget, 'g')})" if budget is not None else "")))
    return rows


def line_chart(series: dict[str, list[tuple[int, float]]], labels: list[str], *, width: int = 640,
               height: int = 180, max_labels: int | None = None) -> dict[str, Any] | None:
    """Lay out an SVG line chart: one line per named series of ``(x index, value)`` points over ``labels``.

    Everything is computed here so the template (``includes/line_chart.html``) only draws: no
    JavaScript, no CDN. ``max_labels`` thins the x-axis labels; None without points.
    """
    if not any(series.values()):
        return None
    left, right, top, bottom = 44, 12, 12, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value = max(v for points in series.values() for _, v in points) or 1.0
    span = max(len(labels) - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        return (round(left + inner_w * index / span, 1), round(top + inner_h * (1 - value / top_value), 1))

    lines = []
    for n, (name, points) in enumerate(sorted((k, v) for k, v in series.items() if v)):
        coords = [xy(i, v) for i, v in points]
        lines.append({
            "name": name, "colour": CHART_COLOURS[n % len(CHART_COLOURS)],
            "points": " ".join(f"{x},{y}" for x, y in coords),
            "dots": [{"x": x, "y": y, "value": v} for (x, y), (_, v) in zip(coords, points)],
            "last": points[-1][1],
        })
    ticks = [{"y": round(top + inner_h * (1 - f), 1), "label": f"{top_value * f:.3g}"} for f in (0, 0.5, 1)]
    step = max(1, len(labels) // max_labels) if max_labels else 1
    x_labels = [{"x": xy(i, 0)[0], "text": text} for i, text in enumerate(labels) if i % step == 0]
    return {"width": width, "height": height, "left": left, "right": width - right, "bottom": height - bottom,
            "lines": lines, "ticks": ticks, "labels": x_labels}


def metrics_chart(builds: list[BuildRun], *, width: int = 640, height: int = 180) -> dict[str, Any] | None:
    """Lay out an SVG line chart of the builds' metrics (oldest left); None when no build has metrics."""
    series: dict[str, list[tuple[int, float]]] = {}
    builds = [b for b in builds if build_metrics(b)]
    for index, build in enumerate(builds):
        for key, value in build_metrics(build).items():
            series.setdefault(key, []).append((index, value))
    return line_chart(series, [f"#{b.pk}" for b in builds], width=width, height=height)


def durations_chart(builds: list[BuildRun], *, width: int = 640, height: int = 120) -> dict[str, Any] | None:
    """Lay out stacked bars of seconds per stage for each finished build (oldest left)."""
    builds = [b for b in builds if b.timings]
    if not builds:
        return None
    left, top, bottom = 44, 8, 24
    inner_h = height - top - bottom
    stages = stage_names(builds)
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
