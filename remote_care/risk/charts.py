"""Charts of the deterioration model's page (pure functions returning Plotly figure dicts):
training curves and reliability of the compared models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MEMBER_COLOURS = ("#00695c", "#1565c0", "#6a1b9a", "#ef6c00", "#b3261e")


def risk_training_figure(curves: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """Validation AUROC per epoch, one line per ensemble member (drawn live during training)."""
    members = sorted(set(curves.get("member", [])))
    data = []
    for m in members:
        idx = [i for i, v in enumerate(curves["member"]) if v == m]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"member {m}",
                "x": list(range(1, len(idx) + 1)),
                "y": [curves["val_auroc"][i] for i in idx],
                "line": {"color": MEMBER_COLOURS[(m - 1) % len(MEMBER_COLOURS)]},
            }
        )
    return {
        "data": data,
        "layout": {
            "height": 300,
            "margin": {"l": 56, "r": 16, "t": 16, "b": 44},
            "xaxis": {"title": {"text": "epoch"}},
            "yaxis": {"title": {"text": "validation AUROC"}},
            "legend": {"orientation": "h"},
        },
    }


def reliability_figure(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Observed death rate against predicted risk per bin, for every probability score."""
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "perfect calibration",
            "x": [0, 1],
            "y": [0, 1],
            "line": {"color": "#90a4ae", "dash": "dot"},
        }
    ]
    for i, report in enumerate(r for r in reports if r.get("reliability")):
        bins = [b for b in report["reliability"] if b.get("count")]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": report["name"],
                "x": [b["mean_predicted"] for b in bins],
                "y": [b["observed_rate"] for b in bins],
                "text": [f"{b['count']} stays" for b in bins],
                "line": {"color": MEMBER_COLOURS[i % len(MEMBER_COLOURS)]},
            }
        )
    if len(data) == 1:
        return None
    return {
        "data": data,
        "layout": {
            "height": 340,
            "margin": {"l": 56, "r": 16, "t": 16, "b": 44},
            "xaxis": {"title": {"text": "predicted risk"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "observed in-hospital death rate"}, "range": [0, 1]},
            "legend": {"orientation": "h"},
        },
    }
