"""Plotly figure dicts for diagnosis pages (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from diagnosis.selectors import Agreement

_LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300}


def probabilities_figure(prediction: Any) -> dict[str, Any]:
    """Horizontal bars of the calibrated class probabilities."""
    names = list(prediction.class_names)
    values = [float(prediction.probabilities.get(n, 0.0)) for n in names]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": names,
                "x": values,
                "text": [f"{v:.1%}" for v in values],
                "textposition": "auto",
                "marker": {
                    "color": [
                        "#b3261e" if i == prediction.predicted_index else "#8aa4ad"
                        for i in range(len(names))
                    ]
                },
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": 60 + 40 * len(names),
            "xaxis": {"range": [0, 1], "tickformat": ".0%"},
            "title": {"text": "Class probabilities (calibrated)"},
        },
    }


def training_curves_figure(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Loss and validation AUC per epoch (drawn live from a training job's reports)."""
    epochs = [h["epoch"] for h in history]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "train loss",
                "x": epochs,
                "y": [h.get("train_loss") for h in history],
                "yaxis": "y2",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "val loss",
                "x": epochs,
                "y": [h.get("val_loss") for h in history],
                "yaxis": "y2",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "val AUC",
                "x": epochs,
                "y": [h.get("val_auc") for h in history],
            },
        ],
        "layout": {
            **_LAYOUT,
            "margin": {**_LAYOUT["margin"], "r": 60},
            "title": {"text": "Training curves"},
            "xaxis": {"title": {"text": "epoch"}, "tickformat": "d"},
            "yaxis": {"title": {"text": "val AUC"}},
            "yaxis2": {"title": {"text": "loss"}, "overlaying": "y", "side": "right"},
            "legend": {"orientation": "h"},
        },
    }


def confusion_figure(agreement: Agreement) -> dict[str, Any]:
    """Clinicians' labels (rows) against the model's predictions (columns)."""
    names = agreement.class_names
    return {
        "data": [
            {
                "type": "heatmap",
                "z": agreement.confusion,
                "x": names,
                "y": names,
                "colorscale": "Blues",
                "showscale": False,
                "text": [[str(v) for v in row] for row in agreement.confusion],
                "texttemplate": "%{text}",
            }
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": f"{agreement.version}: model vs clinician"},
            "xaxis": {"title": {"text": "model said"}},
            "yaxis": {"title": {"text": "clinician said"}, "autorange": "reversed"},
        },
    }


OVERRIDDEN = "scored outside the model's scope"


def _risk_series(p: Any) -> str:
    # Scores given anyway outside the model's scope are drawn apart, never mixed in.
    return f"{p.model_version} ({OVERRIDDEN})" if p.overridden else str(p.model_version)


def risk_over_time_figure(predictions: Iterable[Any]) -> dict[str, Any] | None:
    """Predicted risk of every scored prediction over time, one series per model version
    (and one per version for scans scored outside its scope at a clinician's request)."""
    series: dict[str, dict[str, list[Any]]] = {}
    for p in predictions:
        if p.risk is None:
            continue
        entry = series.setdefault(_risk_series(p), {"x": [], "y": []})
        entry["x"].append(p.created_at.isoformat())
        entry["y"].append(round(p.risk, 4))
    if not series:
        return None
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": s["x"],
                "y": s["y"],
                "marker": {
                    "size": 6,
                    "opacity": 0.7,
                    "symbol": "x" if name.endswith(f"({OVERRIDDEN})") else "circle",
                },
            }
            for name, s in series.items()
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": "Predicted risk over time"},
            "yaxis": {"range": [0, 1], "title": {"text": "risk (1 - P(first class))"}},
        },
    }


def risk_histogram_figure(predictions: Iterable[Any]) -> dict[str, Any] | None:
    """Distribution of predicted risk per model version (scans scored outside its scope at a
    clinician's request as their own series)."""
    series: dict[str, list[float]] = {}
    for p in predictions:
        if p.risk is None:
            continue
        series.setdefault(_risk_series(p), []).append(round(p.risk, 4))
    if not series:
        return None
    return {
        "data": [
            {
                "type": "histogram",
                "name": name,
                "x": values,
                "opacity": 0.7,
                "xbins": {"start": 0, "end": 1, "size": 0.05},
            }
            for name, values in series.items()
        ],
        "layout": {
            **_LAYOUT,
            "barmode": "overlay",
            "title": {"text": "Distribution of predicted risk"},
            "xaxis": {"range": [0, 1]},
        },
    }


def out_of_scope_share_figure(predictions: Iterable[Any]) -> dict[str, Any] | None:
    """Per model version and day, the share of answers outside the model's scope (a drift
    signal: what is uploaded moves away from what the model was trained on)."""
    counts: dict[str, dict[str, list[int]]] = {}
    for p in predictions:
        day = p.created_at.date().isoformat()
        per_day = counts.setdefault(str(p.model_version), {})
        total_out = per_day.setdefault(day, [0, 0])
        total_out[0] += 1
        total_out[1] += p.scope == "out_of_scope"
    if not counts:
        return None
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": list(days),
                "y": [round(out / total, 4) for total, out in days.values()],
                "text": [f"{out} of {total}" for total, out in days.values()],
                "hovertemplate": "%{x}: %{y:.0%} (%{text})<extra>%{fullData.name}</extra>",
            }
            for name, days in counts.items()
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": "Share of scans outside the model's scope, per day"},
            "yaxis": {"range": [0, 1], "tickformat": ".0%"},
        },
    }
