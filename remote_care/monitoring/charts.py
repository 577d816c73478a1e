"""Charts for remote monitoring (pure functions): the vitals page's Plotly figure, the
board's server-side SVG sparkline and the patient page's risk history. Nothing here touches
the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from medai_site.core.charts import described, format_value
from remote_care.physiology.downsample import Downsampled

# RCP NEWS2 (2017) Chart 2 aggregate thresholds: 0-4 low, 5-6 medium (urgent), >=7 high.
NEWS2_BANDS: tuple[tuple[float, float, str], ...] = (
    (-0.5, 4.5, "rgba(46, 125, 50, 0.12)"),
    (4.5, 6.5, "rgba(237, 137, 0, 0.18)"),
    (6.5, 20.5, "rgba(179, 38, 30, 0.15)"),
)
ALERT_COLOURS = {
    "EMERGENCY": "#b3261e",
    "URGENT": "#ed8900",
    "RED_SCORE": "#c2185b",
    "TREND": "#5c6bc0",
}
# Panels top to bottom: (title, unit, series keys drawn in it, colours).
PANELS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Heart rate", "/min", ("heart_rate",), ("#b3261e",)),
    ("SpO2", "%", ("spo2",), ("#1565c0",)),
    ("Resp. rate", "/min", ("respiratory_rate",), ("#2e7d32",)),
    ("Temp.", "°C", ("temperature",), ("#ef6c00",)),
    ("BP", "mmHg", ("systolic_bp", "diastolic_bp"), ("#6a1b9a", "#ab47bc")),
    ("NEWS2", "", ("news2",), ("#263238",)),
)
SERIES_NAMES = {
    "heart_rate": "Heart rate",
    "spo2": "SpO2",
    "respiratory_rate": "Respiration rate",
    "temperature": "Temperature",
    "systolic_bp": "Systolic BP",
    "diastolic_bp": "Diastolic BP",
    "news2": "NEWS2",
}


def _wall(value: datetime) -> str:
    """Wall-clock ISO string in the site's zone without offset, as the series are (Plotly
    draws date strings as given)."""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(tzinfo=None).isoformat()


def _minute(value: datetime) -> str:
    return _wall(value)[:16].replace("T", " ")


def _axis(i: int) -> str:
    return "y" if i == 0 else f"y{i + 1}"


def vitals_figure(
    series: Mapping[str, Downsampled],
    alerts: Sequence[Any],
    *,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Stacked panels sharing one time axis (zooming one zooms all): HR, SpO2, RR, temperature,
    BP, NEWS2 with its colour bands and one marker per alert; x range fixed to [start, end]."""
    n = len(PANELS)
    gap = 0.02
    height = (1 - gap * (n - 1)) / n
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": 150 * n + 60,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 40},
        "showlegend": False,
        "hovermode": "x unified",
        "xaxis": {
            "type": "date",
            "range": [_wall(start), _wall(end)],
        },
        "shapes": [],
    }
    for i, (title, unit, keys, colours) in enumerate(PANELS):
        top = 1 - i * (height + gap)
        axis_name = "yaxis" if i == 0 else f"yaxis{i + 1}"
        layout[axis_name] = {
            "domain": [max(top - height, 0), top],
            "title": {"text": f"{title} {unit}".strip(), "font": {"size": 11}},
            "fixedrange": True,
        }
        for key, colour in zip(keys, colours):
            s = series.get(key)
            points = s.to_dict() if s is not None else {"x": [], "y": []}
            data.append(
                {
                    "type": "scattergl" if len(points["x"]) > 2000 else "scatter",
                    "mode": "lines",
                    "name": SERIES_NAMES[key],
                    "x": points["x"],
                    "y": points["y"],
                    "xaxis": "x",
                    "yaxis": _axis(i),
                    "line": {
                        "color": colour,
                        "width": 1.2,
                        "shape": "hv" if key == "news2" else "linear",
                    },
                    "connectgaps": False,
                }
            )
    news2_axis = _axis(n - 1)
    layout["xaxis"]["anchor"] = news2_axis
    layout[f"yaxis{n}"]["range"] = [-0.5, 20.5]
    for lo, hi, colour in NEWS2_BANDS:
        layout["shapes"].append(
            {
                "type": "rect",
                "xref": "paper",
                "yref": news2_axis,
                "x0": 0,
                "x1": 1,
                "y0": lo,
                "y1": hi,
                "fillcolor": colour,
                "line": {"width": 0},
                "layer": "below",
            }
        )
    for level, colour in ALERT_COLOURS.items():
        chosen = [a for a in alerts if a.level == level]
        if not chosen:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"Alert: {chosen[0].get_level_display()}",
                "x": [_wall(a.raised_at) for a in chosen],
                "y": [a.news2_total for a in chosen],
                "text": [a.reason for a in chosen],
                "hovertemplate": "%{text}<extra>" + level.replace("_", " ").lower() + "</extra>",
                "xaxis": "x",
                "yaxis": news2_axis,
                "marker": {"color": colour, "size": 9, "symbol": "triangle-up"},
            }
        )
    return {"data": data, "layout": layout, "config": {"displaylogo": False}}


def news2_sparkline(
    points: Sequence[tuple[datetime, int]],
    *,
    start: datetime,
    end: datetime,
    width: int = 120,
    height: int = 28,
    max_score: int = 20,
) -> dict[str, Any]:
    """SVG geometry for a NEWS2 sparkline over [start, end]: polyline ``points`` string, the
    amber/red threshold y positions, and the last score's colour band; empty points -> ''."""
    span = (end - start).total_seconds() or 1.0
    top = max(max_score, max((v for _, v in points), default=0))

    def y_of(score: float) -> float:
        return round(height - 2 - (height - 4) * score / top, 1)

    coords = " ".join(
        f"{round(width * (t - start).total_seconds() / span, 1)},{y_of(v)}" for t, v in points
    )
    last = points[-1][1] if points else None
    band = "" if last is None else "high" if last >= 7 else "medium" if last >= 5 else "low"
    return {
        "points": coords,
        "width": width,
        "height": height,
        "amber_y": y_of(5),
        "red_y": y_of(7),
        "band": band,
        "worst": max((v for _, v in points), default=None),
    }


def risk_history_figure(
    points: Sequence[tuple[datetime, float]], news2: Sequence[tuple[datetime, int]]
) -> dict[str, Any] | None:
    """The patient's model risk over time beside their NEWS2 (second axis)."""
    if not points:
        return None
    figure = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "model risk",
                "x": [_wall(t) for t, _ in points],
                "y": [round(100 * r, 1) for _, r in points],
                "line": {"color": "#6a1b9a"},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "NEWS2",
                "x": [_wall(t) for t, _ in news2],
                "y": [v for _, v in news2],
                "yaxis": "y2",
                "line": {"color": "#263238", "width": 1, "shape": "hv"},
            },
        ],
        "layout": {
            "height": 280,
            "margin": {"l": 56, "r": 56, "t": 16, "b": 40},
            "yaxis": {"title": {"text": "risk (%)"}, "rangemode": "tozero"},
            "yaxis2": {
                "title": {"text": "NEWS2"},
                "overlaying": "y",
                "side": "right",
                "range": [0, 20],
                "tick0": 0,
                "dtick": 5,
                "showgrid": False,
            },
            "legend": {"orientation": "h"},
        },
    }
    risks = [round(100 * r, 1) for _, r in points]
    summary = (
        f"Model risk over {len(points)} scores from {_minute(points[0][0])} to "
        f"{_minute(points[-1][0])}: latest {format_value(risks[-1])}% (range "
        f"{format_value(min(risks))}% to {format_value(max(risks))}%)"
    )
    if news2:
        summary += f"; latest NEWS2 {news2[-1][1]} ({_minute(news2[-1][0])})"
    return described(figure, summary + ".")
