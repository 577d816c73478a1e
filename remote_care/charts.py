"""Charts for remote monitoring (pure functions): the vitals page's Plotly figure and the
board's server-side SVG sparkline. Nothing here touches the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from medai_site.core.charts import (
    chart_layout,
    curves_figure,
    diagonal_trace,
    line_trace,
    unit_square_figure,
)
from remote_care.downsample import Downsampled

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


# --- Deterioration model ------------------------------------------------------------------------

MEMBER_COLOURS = ("#00695c", "#1565c0", "#6a1b9a", "#ef6c00", "#b3261e")


def risk_training_figure(curves: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Validation AUROC per epoch, one line per ensemble member (drawn live during training)."""
    members = sorted(set(curves.get("member", [])))
    data = []
    for m in members:
        idx = [i for i, v in enumerate(curves["member"]) if v == m]
        data.append(
            line_trace(
                f"member {m}",
                list(range(1, len(idx) + 1)),
                [curves["val_auroc"][i] for i in idx],
                line={"color": MEMBER_COLOURS[(m - 1) % len(MEMBER_COLOURS)]},
            )
        )
    return curves_figure(
        data,
        layout=chart_layout(height=300, margin=(56, 16, 16, 44)),
        x_axis={"title": {"text": "epoch"}},
        y_axis={"title": {"text": "validation AUROC"}},
    )


def reliability_figure(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Observed death rate against predicted risk per bin, for every probability score."""
    data = [diagonal_trace("perfect calibration", colour="#90a4ae")]
    for i, report in enumerate(r for r in reports if r.get("reliability")):
        bins = [b for b in report["reliability"] if b.get("count")]
        data.append(
            line_trace(
                report["name"],
                [b["mean_predicted"] for b in bins],
                [b["observed_rate"] for b in bins],
                text=[f"{b['count']} stays" for b in bins],
                line={"color": MEMBER_COLOURS[i % len(MEMBER_COLOURS)]},
            )
        )
    if len(data) == 1:
        return None
    return unit_square_figure(
        data,
        layout=chart_layout(height=340, margin=(56, 16, 16, 44), legend={"orientation": "h"}),
        x_title="predicted risk",
        y_title="observed in-hospital death rate",
    )


def risk_history_figure(
    points: Sequence[tuple[datetime, float]], news2: Sequence[tuple[datetime, int]]
) -> dict[str, Any] | None:
    """The patient's model risk over time beside their NEWS2 (second axis)."""
    if not points:
        return None
    return {
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


def progression_figure(trajectory: Mapping[str, Any], *, target: str) -> dict[str, Any]:
    """One pbcseq patient: observed bilirubin by visit, each one-visit-ahead forecast with its
    prediction interval, and the forecast for the next six months."""
    years = [d / 365.25 for d in trajectory["days"]]
    f_years = [d / 365.25 for d in trajectory["forecast_days"]]
    nxt = trajectory.get("next")
    if nxt:
        f_years = [*f_years, nxt["day"] / 365.25]
    point = [*trajectory["point"], *([nxt["point"]] if nxt else [])]
    lower = [*trajectory["lower"], *([nxt["lower"]] if nxt else [])]
    upper = [*trajectory["upper"], *([nxt["upper"]] if nxt else [])]
    level = int(round(100 * trajectory.get("level", 0.9)))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": [*f_years, *reversed(f_years)],
                "y": [*upper, *reversed(lower)],
                "fill": "toself",
                "fillcolor": "rgba(106, 27, 154, 0.15)",
                "line": {"width": 0},
                "name": f"{level} % prediction interval",
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": f_years,
                "y": point,
                "name": "forecast (from earlier visits)",
                "line": {"color": "#6a1b9a", "dash": "dash"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": years,
                "y": list(trajectory["observed"]),
                "name": "observed",
                "line": {"color": "#263238"},
            },
        ],
        "layout": {
            "height": 360,
            "margin": {"l": 60, "r": 16, "t": 16, "b": 44},
            "xaxis": {"title": {"text": "years since enrolment"}},
            "yaxis": {"title": {"text": "serum bilirubin (mg/dL)"}, "type": "log"},
            "legend": {"orientation": "h"},
        },
    }


def progression_scatter_figure(
    patients: Mapping[str, Mapping[str, Any]], selected: str | None
) -> dict[str, Any]:
    """Diabetes: predicted against observed progression with intervals; one patient marked."""
    keys = list(patients)
    obs = [patients[k]["observed"] for k in keys]
    pred = [patients[k]["point"] for k in keys]
    low = [patients[k]["point"] - patients[k]["lower"] for k in keys]
    high = [patients[k]["upper"] - patients[k]["point"] for k in keys]
    lo, hi = min(obs + pred), max(obs + pred)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": obs,
            "y": pred,
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": high,
                "arrayminus": low,
                "color": "rgba(106,27,154,0.25)",
                "thickness": 1,
            },
            "marker": {"color": "#6a1b9a", "size": 5},
            "name": "patients (prediction and interval)",
            "text": [f"patient {k}" for k in keys],
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [lo, hi],
            "y": [lo, hi],
            "line": {"color": "#90a4ae", "dash": "dot"},
            "name": "perfect",
        },
    ]
    if selected in patients:
        p = patients[selected]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [p["observed"]],
                "y": [p["point"]],
                "marker": {"color": "#b3261e", "size": 12, "symbol": "diamond"},
                "name": f"patient {selected}",
            }
        )
    return {
        "data": data,
        "layout": {
            "height": 380,
            "margin": {"l": 60, "r": 16, "t": 16, "b": 44},
            "xaxis": {"title": {"text": "observed progression at one year"}},
            "yaxis": {"title": {"text": "predicted"}},
            "legend": {"orientation": "h"},
        },
    }
