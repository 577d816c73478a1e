"""Charts of the deterioration model's page (pure functions returning Plotly figure dicts):
training curves and reliability of the compared models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medai_site.core.charts import (
    chart_layout,
    curves_figure,
    described,
    diagonal_trace,
    format_value,
    line_trace,
    unit_square_figure,
)

MEMBER_COLOURS = ("#00695c", "#1565c0", "#6a1b9a", "#ef6c00", "#b3261e")


def risk_training_figure(curves: Mapping[str, Sequence[Any]]) -> dict[str, Any] | None:
    """Validation AUROC per epoch, one line per ensemble member (drawn live during training);
    None before any member has finished an epoch."""
    members = sorted(set(curves.get("member", [])))
    if not members:
        return None
    data = []
    best: list[str] = []
    for m in members:
        idx = [i for i, v in enumerate(curves["member"]) if v == m]
        scores = [(curves["val_auroc"][i], n) for n, i in enumerate(idx, start=1)]
        top, at = max(scores)
        best.append(f"member {m} {format_value(top)} at epoch {at} of {len(idx)}")
        data.append(
            line_trace(
                f"member {m}",
                list(range(1, len(idx) + 1)),
                [curves["val_auroc"][i] for i in idx],
                line={"color": MEMBER_COLOURS[(m - 1) % len(MEMBER_COLOURS)]},
            )
        )
    figure = curves_figure(
        data,
        layout=chart_layout(height=300, margin=(56, 16, 16, 44)),
        x_axis={"title": {"text": "epoch"}},
        y_axis={"title": {"text": "validation AUROC"}},
    )
    return described(figure, "Best validation AUROC per ensemble member: " + "; ".join(best) + ".")


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
