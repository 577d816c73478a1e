"""Plotly figure dicts for model versions (pure functions; templates embed them as JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from medai_site.core.charts import (
    REFERENCE_GREY,
    chart_layout,
    confusion_heatmap,
    curves_figure,
    diagonal_trace,
    line_trace,
    unit_square_figure,
)
from medai_site.registry.models import ModelVersion

_LAYOUT = chart_layout(height=320, margin=(50, 20, 40, 40))


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
        traces.append(line_trace(key, epochs, values, yaxis="y2" if "loss" in key else "y"))
    return curves_figure(
        traces,
        layout=_LAYOUT,
        title=f"{version}: training history",
        x_axis={"title": {"text": "epoch"}},
        y_axis={"title": {"text": "metric"}},
        loss_axis=True,
    )


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
        traces.append(diagonal_trace("chance"))
        figures.append(
            unit_square_figure(
                traces,
                layout={**_LAYOUT, "title": {"text": "ROC curve (test split)"}},
                x_title="1 - specificity",
                y_title="sensitivity",
            )
        )
    matrix, names = test.get("confusion_matrix"), test.get("class_names")
    if matrix and names:
        figures.append(
            confusion_heatmap(
                matrix,
                names=names,
                layout=_LAYOUT,
                title="Confusion matrix (test split)",
                x_title="predicted",
                y_title="true",
            )
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
                line_trace(
                    f"{label} temperature scaling (ECE {curve.get('ece', 0):.3f})",
                    [p[0] for p in points],
                    [p[1] for p in points],
                )
            )
    if traces:
        traces.append(diagonal_trace("perfect"))
        figures.append(
            unit_square_figure(
                traces,
                layout={**_LAYOUT, "title": {"text": "Calibration (test split)"}},
                x_title="predicted probability",
                y_title="observed frequency",
            )
        )
    return figures


def validation_comparison_figure(validation: Any) -> dict[str, Any] | None:
    """A validation's held-out metric as a point with its 95 % interval, and, when it was
    compared with the version in service, the difference (candidate - in service) with its
    bootstrap interval against a zero line. None before there is a value to draw."""
    if validation is None or validation.value is None:
        return None
    label = (validation.details or {}).get("metric_label") or validation.metric
    name = f"v{validation.version.version}"
    points = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"{name} {label}",
            "x": [validation.value],
            "y": [f"{name} (candidate)"],
            "error_x": {
                "type": "data",
                "symmetric": False,
                "array": [max((validation.ci_high or validation.value) - validation.value, 0)],
                "arrayminus": [max(validation.value - (validation.ci_low or validation.value), 0)],
            },
            "marker": {"size": 11},
            "xaxis": "x",
            "yaxis": "y",
        }
    ]
    if validation.compared_value is not None and validation.compared_to is not None:
        points.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"v{validation.compared_to.version} (in service)",
                "x": [validation.compared_value],
                "y": [f"v{validation.compared_to.version} (in service)"],
                "marker": {"size": 11, "symbol": "diamond"},
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    layout: dict[str, Any] = chart_layout(
        height=300,
        margin=(150, 20, 50, 50),
        title={"text": f"{name}: {label} on the locked held-out set"},
        showlegend=False,
        xaxis={"title": {"text": label}, "domain": [0, 1], "anchor": "y"},
        yaxis={"domain": [0.55, 1], "anchor": "x"},
    )
    if validation.diff is not None:
        how = "paired" if validation.paired else "unpaired"
        points.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "difference",
                "x": [validation.diff],
                "y": [f"difference ({how})"],
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [max((validation.diff_high or 0) - validation.diff, 0)],
                    "arrayminus": [max(validation.diff - (validation.diff_low or 0), 0)],
                },
                "marker": {"size": 11, "color": "#2a6f97" if validation.passed else "#b5382f"},
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
        better = "higher" if validation.higher_is_better else "lower"
        layout["xaxis2"] = {
            "title": {"text": f"candidate - in service ({better} is better)"},
            "anchor": "y2",
            "zeroline": True,
            "zerolinecolor": REFERENCE_GREY,
            "zerolinewidth": 2,
        }
        layout["yaxis2"] = {"domain": [0, 0.3], "anchor": "x2"}
        layout["height"] = 380
        layout["margin"]["b"] = 60
    return {"data": points, "layout": layout}


def shadow_agreement_over_time_figure(days: Sequence[Any]) -> dict[str, Any] | None:
    """A shadow version's daily agreement with the active version (line, left axis, 0-1) over
    the live items it scored each day (bars, right axis); None before it scored anything.
    ``days``: objects with ``day``, ``scored``, ``agreed`` and ``agreement``."""
    if not days:
        return None
    x = [d.day.isoformat() for d in days]
    agreement = line_trace(
        "agreement with the active version",
        x,
        [d.agreement for d in days],
        hovertemplate="%{x}: %{y:.1%}<extra></extra>",
    )
    scored = {
        "type": "bar",
        "name": "items scored",
        "x": x,
        "y": [d.scored for d in days],
        "yaxis": "y2",
        "opacity": 0.35,
        "hovertemplate": "%{x}: %{y} scored<extra></extra>",
    }
    return curves_figure(
        [scored, agreement],
        # Room on the right for the item-count axis.
        layout={**_LAYOUT, "margin": {**_LAYOUT["margin"], "r": 60}},
        title="Agreement with the active version by day",
        x_axis={"title": {"text": "day"}, "type": "category"},
        y_axis={"title": {"text": "agreement"}, "range": [0, 1.02], "tickformat": ".0%"},
        yaxis2={
            "title": {"text": "items"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
    )


def shadow_confusion_figure(
    labels: Sequence[str], rows: Sequence[Any], *, shadow: str, active: str
) -> dict[str, Any] | None:
    """The shadow's answers (columns) against the active version's (rows) as a heat-map;
    ``rows``: objects with ``label`` and ``counts`` in ``labels`` order."""
    if not rows:
        return None
    by_label = {row.label: list(row.counts) for row in rows}
    matrix = [by_label.get(label, [0] * len(labels)) for label in labels]
    return confusion_heatmap(
        matrix,
        names=list(labels),
        # Room on the left for class names ("pneumonia", "insufficient data").
        layout={**_LAYOUT, "margin": {**_LAYOUT["margin"], "l": 120}},
        title=f"{shadow} (columns) against {active} (rows)",
        x_title=f"shadow: {shadow}",
        y_title=f"active: {active}",
    )
