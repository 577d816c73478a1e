"""Plotly figure dicts for model versions (pure functions; templates embed them as JSON)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medai_site.registry.models import ModelVersion

_LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320}


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
