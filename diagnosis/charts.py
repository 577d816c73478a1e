"""Plotly figure dicts for diagnosis pages (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from diagnosis.selectors import Agreement, ScopeTrend
from medai_site.core.charts import (
    chart_layout,
    confusion_heatmap,
    curves_figure,
    described,
    format_value,
    line_trace,
)

_LAYOUT = chart_layout(height=300, margin=(50, 20, 40, 40))


def probabilities_figure(prediction: Any) -> dict[str, Any]:
    """Horizontal bars of the calibrated class probabilities."""
    names = list(prediction.class_names)
    values = [float(prediction.probabilities.get(n, 0.0)) for n in names]
    figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "probability",
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
            # Room for the longest class name ("pneumonia" was cut to "eumonia" in 50 px).
            "yaxis": {"automargin": True, "ticksuffix": " "},
            "title": {"text": "Class probabilities (calibrated)"},
        },
    }
    ranked = sorted(zip(values, names, strict=True), reverse=True)
    summary = (
        "Calibrated class probabilities: "
        + ", ".join(f"{name} {value:.1%}" for value, name in ranked)
        + f"; the model predicts {names[prediction.predicted_index]}."
    )
    return described(figure, summary)


def training_curves_figure(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Loss and validation AUC per epoch (drawn live from a training job's reports); None
    before the first epoch has finished (nothing to draw)."""
    if not history:
        return None
    epochs = [h["epoch"] for h in history]
    figure = curves_figure(
        [
            line_trace("train loss", epochs, [h.get("train_loss") for h in history], yaxis="y2"),
            line_trace("val loss", epochs, [h.get("val_loss") for h in history], yaxis="y2"),
            line_trace("val AUC", epochs, [h.get("val_auc") for h in history]),
        ],
        layout=_LAYOUT,
        title="Training curves",
        x_axis={"title": {"text": "epoch"}, "tickformat": "d"},
        y_axis={"title": {"text": "val AUC"}},
        loss_axis=True,
    )
    return described(figure, _training_summary(history))


def _training_summary(history: list[dict[str, Any]]) -> str:
    last = history[-1]
    aucs = [(h["val_auc"], h["epoch"]) for h in history if h.get("val_auc") is not None]
    text = (
        f"Training curves after epoch {last['epoch']}: train loss "
        f"{format_value(last.get('train_loss'))}, val loss {format_value(last.get('val_loss'))}, "
        f"val AUC {format_value(last.get('val_auc'))}"
    )
    if aucs:
        best, at = max(aucs)
        text += f" (best val AUC {format_value(best)} at epoch {at})"
    return text + "."


def confusion_figure(agreement: Agreement) -> dict[str, Any]:
    """Clinicians' labels (rows) against the model's predictions (columns)."""
    return confusion_heatmap(
        agreement.confusion,
        names=agreement.class_names,
        layout=_LAYOUT,
        title=f"{agreement.version}: model vs clinician",
        x_title="model said",
        y_title="clinician said",
    )


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


def scope_over_time_figure(trends: list[ScopeTrend], *, period: str) -> dict[str, Any] | None:
    """Per model version, the share of its checked answers flagged outside its scope per
    day or week (solid) and the share a clinician had scored anyway (dotted); counts in the
    hover text. None when no version's answers were checked."""
    data: list[dict[str, Any]] = []
    for trend in trends:
        checked = [p for p in trend.periods if p.checked]
        if not checked:
            continue
        x = [p.start.isoformat() for p in checked]
        counts = [[p.checked, p.flagged, p.overridden] for p in checked]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{trend.version}: out of scope",
                "x": x,
                "y": [round(p.flagged_share, 4) for p in checked],
                "customdata": counts,
                "hovertemplate": "%{y:.1%} flagged (%{customdata[1]} of %{customdata[0]} "
                "checked)<extra>%{fullData.name}</extra>",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{trend.version}: scored anyway (overrides)",
                "x": x,
                "y": [round(p.overridden_share, 4) for p in checked],
                "customdata": counts,
                "line": {"dash": "dot"},
                "hovertemplate": "%{y:.1%} overridden (%{customdata[2]} of %{customdata[0]} "
                "checked)<extra>%{fullData.name}</extra>",
            }
        )
    if not data:
        return None
    return {
        "data": data,
        "layout": {
            **_LAYOUT,
            "title": {"text": f"Share of scans outside the model's scope, per {period}"},
            "yaxis": {"rangemode": "tozero", "tickformat": ".0%", "title": {"text": "share"}},
            "xaxis": {"type": "date"},
            "legend": {"orientation": "h"},
        },
    }
