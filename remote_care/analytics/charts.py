"""Charts of the population dashboard (pure functions: aggregate rows in, Plotly dicts out).
Callers pass only rows that passed small-cell suppression (Dashboard.chart_*)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medai_site.core.charts import chart_layout, described, format_value
from remote_care.analytics.filters import ALERT_LEVELS, SMALL_CELL, RiskMeasure
from remote_care.analytics.selectors import BandRow, CohortRow, HistogramRow, PeriodRow
from remote_care.monitoring.charts import ALERT_COLOURS

BAND_COLOURS = {
    "low": "#2e7d32",
    "low-medium": "#f9a825",
    "medium": "#ed8900",
    "high": "#b3261e",
}
LEVEL_NAMES = {
    "EMERGENCY": "Emergency (NEWS2 7+)",
    "URGENT": "Urgent (NEWS2 5-6)",
    "RED_SCORE": "Single red score",
    "TREND": "Sustained rise",
}


def _layout(**extra: Any) -> dict[str, Any]:
    base = chart_layout(height=320, margin=(60, 60, 20, 50), legend={"orientation": "h", "y": -0.2})
    return {**base, **extra}


def risk_over_time_figure(periods: Sequence[PeriodRow], measure: RiskMeasure) -> dict[str, Any]:
    """Mean, median and interquartile band of ``measure`` per period, with the share of
    high-risk sets on a second axis; None when no period may be shown."""
    if not periods:
        return {}
    x = [p.period.isoformat() for p in periods]
    p25 = [p.percentiles.get("p25") for p in periods]
    p75 = [p.percentiles.get("p75") for p in periods]
    figure = {
        "data": [
            {
                "x": x,
                "y": p25,
                "type": "scatter",
                "mode": "lines",
                "line": {"width": 0},
                "name": "25th percentile",
                "showlegend": False,
                "hoverinfo": "skip",
            },
            {
                "x": x,
                "y": p75,
                "type": "scatter",
                "mode": "lines",
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": "rgba(38, 50, 56, 0.15)",
                "name": "Interquartile range",
            },
            {
                "x": x,
                "y": [p.percentiles.get("p50") for p in periods],
                "type": "scatter",
                "mode": "lines",
                "line": {"color": "#263238"},
                "name": f"Median {measure.label}",
            },
            {
                "x": x,
                "y": [None if p.mean is None else round(p.mean, 2) for p in periods],
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"color": "#1565c0", "dash": "dot"},
                "name": f"Mean {measure.label}",
            },
            {
                "x": x,
                # A share of fewer than SMALL_CELL sets would reveal the count: left out.
                "y": [
                    None
                    if p.share_high is None or 0 < p.high < SMALL_CELL
                    else round(100 * p.share_high, 2)
                    for p in periods
                ],
                "type": "scatter",
                "mode": "lines",
                "line": {"color": "#b3261e"},
                "yaxis": "y2",
                "name": measure.high_label,
            },
        ],
        "layout": _layout(
            xaxis={"type": "date"},
            yaxis={"title": {"text": measure.label}, "rangemode": "tozero"},
            yaxis2={
                "title": {"text": "High risk (%)"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
        ),
    }
    return described(figure, _risk_summary(periods, measure))


def _risk_summary(periods: Sequence[PeriodRow], measure: RiskMeasure) -> str:
    summary = f"{measure.label} per period from {periods[0].period} to {periods[-1].period}"
    medians = [(p.period, p.percentiles.get("p50")) for p in periods]
    shown = [(d, v) for d, v in medians if v is not None]
    if shown:
        (d0, v0), (d1, v1) = shown[0], shown[-1]
        top = max(shown, key=lambda m: m[1])
        summary += (
            f": the median went from {format_value(v0)} ({d0}) to {format_value(v1)} ({d1}), "
            f"highest {format_value(top[1])} ({top[0]})"
        )
    # As drawn: a share of fewer than SMALL_CELL sets is left out.
    shares = [
        (p.period, p.share_high)
        for p in periods
        if p.share_high is not None and not 0 < p.high < SMALL_CELL
    ]
    if shares:
        when, share = shares[-1]
        summary += (
            f"; {measure.high_label.lower()}: {format_value(round(100 * share, 1))}% ({when})"
        )
    return summary + "."


def alert_rate_figure(periods: Sequence[PeriodRow]) -> dict[str, Any]:
    """Alerts per 100 patient-days per period, stacked by level; a level's bar is left out
    for a period where its count is below the small-cell threshold."""
    if not periods:
        return {}
    x = [p.period.isoformat() for p in periods]
    data = []
    for level in reversed(ALERT_LEVELS):
        y = []
        for p in periods:
            n = p.alerts.get(level, 0)
            y.append(None if 0 < n < SMALL_CELL else round(p.alert_rate(level) or 0, 3))
        data.append(
            {
                "x": x,
                "y": y,
                "type": "bar",
                "name": LEVEL_NAMES.get(level, level),
                "marker": {"color": ALERT_COLOURS.get(level, "#607d8b")},
            }
        )
    figure = {
        "data": data,
        "layout": _layout(
            barmode="stack",
            xaxis={"type": "date"},
            yaxis={"title": {"text": "Alerts per 100 patient-days"}, "rangemode": "tozero"},
        ),
    }
    return described(figure, _alert_rate_summary(x, data))


def _alert_rate_summary(x: list[str], data: list[dict[str, Any]]) -> str:
    # From the bars as drawn: a level left out of a period (small cell) counts for nothing,
    # so the sentence reveals no more than the chart.
    shown = [sum(trace["y"][i] or 0 for trace in data) for i in range(len(x))]
    top = max(range(len(x)), key=lambda i: shown[i])
    return (
        f"Alerts per 100 patient-days from {x[0]} to {x[-1]}: "
        f"{format_value(round(sum(shown) / len(shown), 2))} per period on average, highest "
        f"{format_value(round(shown[top], 2))} ({x[top]}); a level with fewer than "
        f"{SMALL_CELL} alerts in a period is left out."
    )


def _band_of(total: int) -> str:
    # Chart 2 aggregate bands; the red-score (low-medium) band is not a function of the total.
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low"


def news2_histogram_figure(rows: Sequence[HistogramRow]) -> dict[str, Any]:
    """Observation sets per NEWS2 total, coloured by aggregate clinical-risk band."""
    if not rows:
        return {}
    return {
        "data": [
            {
                "x": [r.value for r in rows],
                "y": [r.sets for r in rows],
                "type": "bar",
                "marker": {"color": [BAND_COLOURS[_band_of(r.value)] for r in rows]},
                "name": "Observation sets",
                "hovertemplate": "NEWS2 %{x}: %{y} sets<extra></extra>",
            }
        ],
        "layout": _layout(
            xaxis={"title": {"text": "NEWS2 total"}, "dtick": 1},
            yaxis={"title": {"text": "Observation sets"}},
            showlegend=False,
        ),
    }


def bands_figure(rows: Sequence[BandRow]) -> dict[str, Any]:
    """Share of scored sets in each clinical-risk band (horizontal bars)."""
    if not rows:
        return {}
    return {
        "data": [
            {
                "y": [r.band for r in rows],
                "x": [None if r.share is None else round(100 * r.share, 2) for r in rows],
                "type": "bar",
                "orientation": "h",
                "marker": {"color": [BAND_COLOURS.get(r.band, "#607d8b") for r in rows]},
                "hovertemplate": "%{y}: %{x}% of sets<extra></extra>",
            }
        ],
        "layout": _layout(
            height=220,
            xaxis={"title": {"text": "Share of scored sets (%)"}, "rangemode": "tozero"},
            yaxis={"autorange": "reversed"},
            showlegend=False,
        ),
    }


def cohort_figure(rows: Sequence[CohortRow]) -> dict[str, Any]:
    """Alert rate and share of high-risk sets per cohort (pass Dashboard.chart_cohorts)."""
    shown = [r for r in rows if r.patients]
    if not shown:
        return {}
    labels = [r.label for r in shown]
    return {
        "data": [
            {
                "x": labels,
                "y": [
                    None
                    if 0 < r.alerts < SMALL_CELL or r.alert_rate is None
                    else round(r.alert_rate, 2)
                    for r in shown
                ],
                "type": "bar",
                "name": "Alerts per 100 patient-days",
                "marker": {"color": "#5c6bc0"},
                "offsetgroup": 1,
            },
            {
                "x": labels,
                "y": [
                    None
                    if 0 < r.high < SMALL_CELL or r.share_high is None
                    else round(100 * r.share_high, 2)
                    for r in shown
                ],
                "type": "bar",
                "name": "High-risk sets (%)",
                "marker": {"color": "#b3261e"},
                "yaxis": "y2",
                "offsetgroup": 2,
            },
        ],
        "layout": _layout(
            barmode="group",
            yaxis={"title": {"text": "Alerts per 100 patient-days"}, "rangemode": "tozero"},
            yaxis2={
                "title": {"text": "High risk (%)"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
        ),
    }
