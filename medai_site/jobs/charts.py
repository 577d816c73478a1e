"""Plotly figure dicts for the fleet page (pure functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medai_site.core.charts import chart_card, chart_layout, line_trace

_QUEUE_COLOURS = {"default": "#5b7d87", "ml": "#1f5f8b", "gpu": "#b35c00"}


def throughput_figure(per_queue: dict[str, list[tuple[datetime, int]]]) -> dict[str, Any]:
    """Jobs finished per hour, one line per queue (hours in ISO form, UTC)."""
    traces = [
        line_trace(
            queue,
            [hour.isoformat() for hour, _ in points],
            [count for _, count in points],
            line={"color": _QUEUE_COLOURS.get(queue, "#444"), "shape": "hv"},
            hovertemplate="%{y} finished<extra>" + queue + "</extra>",
        )
        for queue, points in per_queue.items()
    ]
    return {
        "data": traces,
        "layout": {
            **chart_layout(height=280, margin=(50, 20, 30, 40)),
            "xaxis": {"type": "date", "title": {"text": "hour (UTC)"}},
            "yaxis": {"title": {"text": "jobs finished"}, "rangemode": "tozero"},
            "legend": {"orientation": "h"},
        },
    }


def throughput_card(per_queue: dict[str, list[tuple[datetime, int]]]) -> dict[str, Any]:
    """The chart card (id, label, figure) that templates/partials/chart.html draws."""
    return chart_card(
        "fleet-throughput", "Jobs finished per hour by queue", throughput_figure(per_queue)
    )
