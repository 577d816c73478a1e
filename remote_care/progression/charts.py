"""Charts of disease-progression analyses (pure functions returning Plotly figure dicts): one
patient's trajectory with its forecast band, and predicted against observed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
