"""Plotly figure dicts for model versions (pure functions; templates embed them as JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medai_site.registry.models import ModelVersion

_LAYOUT: dict[str, Any] = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320}


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in (metrics or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def training_history_figure(version: ModelVersion) -> dict[str, Any] | None:
    """Per-epoch curves from ``metrics["history"]`` (a list of dicts with an ``epoch`` key)."""
    history = (version.metrics or {}).get("history")
    if not isinstance(history, list) or not history:
        return None
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    series = sorted({key for row in history for key in row if key != "epoch"})
    traces = []
    for key in series:
        values = [row.get(key) for row in history]
        if not any(isinstance(v, (int, float)) for v in values):
            continue
        is_loss = "loss" in key
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": key,
                "x": epochs,
                "y": values,
                "yaxis": "y2" if is_loss else "y",
            }
        )
    return {
        "data": traces,
        "layout": {
            **_LAYOUT,
            "margin": {**_LAYOUT["margin"], "r": 60},
            "title": {"text": f"{version}: training history"},
            "xaxis": {"title": {"text": "epoch"}},
            "yaxis": {"title": {"text": "metric"}},
            "yaxis2": {"title": {"text": "loss"}, "overlaying": "y", "side": "right"},
            "legend": {"orientation": "h"},
        },
    }


def metrics_bar_figure(version: ModelVersion) -> dict[str, Any] | None:
    """The version's scalar metrics as bars."""
    scalars = _scalars(version.metrics)
    if not scalars:
        return None
    return {
        "data": [
            {
                "type": "bar",
                "x": list(scalars),
                "y": list(scalars.values()),
                "text": [f"{v:.3f}" for v in scalars.values()],
                "textposition": "auto",
            }
        ],
        "layout": {**_LAYOUT, "title": {"text": f"{version}: evaluation metrics"}},
    }


def version_comparison_figure(versions: Iterable[ModelVersion]) -> dict[str, Any] | None:
    """Scalar metrics shared by the task's versions, grouped by metric, one bar per version."""
    versions = list(versions)
    if len(versions) < 2:
        return None
    shared = set.intersection(*(set(_scalars(v.metrics)) for v in versions))
    if not shared:
        return None
    names = sorted(shared)
    return {
        "data": [
            {
                "type": "bar",
                "name": f"v{v.version} ({v.get_status_display()})",
                "x": names,
                "y": [_scalars(v.metrics)[n] for n in names],
            }
            for v in versions
        ],
        "layout": {**_LAYOUT, "barmode": "group", "title": {"text": "All versions of this task"}},
    }


def evaluation_figures(version: ModelVersion) -> list[dict[str, Any]]:
    """ROC curve, confusion matrix and reliability diagram when the version's metrics carry a
    classification evaluation under ``metrics["test"]`` (keys ``roc``, ``confusion_matrix``,
    ``class_names``, ``reliability_before``/``reliability_after``)."""
    test = (version.metrics or {}).get("test")
    if not isinstance(test, dict):
        return []
    figures: list[dict[str, Any]] = []
    roc = test.get("roc") or {}
    if roc:
        traces = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} (AUC {test.get('auc', 0):.3f})" if len(roc) == 1 else name,
                "x": curve.get("fpr"),
                "y": curve.get("tpr"),
            }
            for name, curve in roc.items()
        ]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "chance",
                "x": [0, 1],
                "y": [0, 1],
                "line": {"dash": "dot", "color": "#999"},
            }
        )
        figures.append(
            {
                "data": traces,
                "layout": {
                    **_LAYOUT,
                    "title": {"text": "ROC curve (test split)"},
                    "xaxis": {"title": {"text": "1 - specificity"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "sensitivity"}, "range": [0, 1]},
                },
            }
        )
    matrix, names = test.get("confusion_matrix"), test.get("class_names")
    if matrix and names:
        figures.append(
            {
                "data": [
                    {
                        "type": "heatmap",
                        "z": matrix,
                        "x": names,
                        "y": names,
                        "colorscale": "Blues",
                        "showscale": False,
                        "text": [[str(v) for v in row] for row in matrix],
                        "texttemplate": "%{text}",
                    }
                ],
                "layout": {
                    **_LAYOUT,
                    "title": {"text": "Confusion matrix (test split)"},
                    "xaxis": {"title": {"text": "predicted"}},
                    "yaxis": {"title": {"text": "true"}, "autorange": "reversed"},
                },
            }
        )
    traces = []
    for key, label in (("reliability_before", "before"), ("reliability_after", "after")):
        curve = test.get(key)
        if isinstance(curve, dict) and curve.get("confidence"):
            points = [
                (c, a)
                for c, a in zip(curve["confidence"], curve["accuracy"])
                if c is not None and a is not None
            ]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label} temperature scaling (ECE {curve.get('ece', 0):.3f})",
                    "x": [p[0] for p in points],
                    "y": [p[1] for p in points],
                }
            )
    if traces:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "perfect",
                "x": [0, 1],
                "y": [0, 1],
                "line": {"dash": "dot", "color": "#999"},
            }
        )
        figures.append(
            {
                "data": traces,
                "layout": {
                    **_LAYOUT,
                    "title": {"text": "Calibration (test split)"},
                    "xaxis": {"title": {"text": "predicted probability"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "observed frequency"}, "range": [0, 1]},
                },
            }
        )
    return figures
