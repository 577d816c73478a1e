"""Plotly figure dicts for the fleet page (pure functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medai_site.core.charts import chart_card, chart_layout

_QUEUE_COLOURS = {"default": "#5b7d87", "ml": "#1f5f8b", "gpu": "#b35c00"}


def throughput_figure(per_queue: dict[str, list[tuple[datetime, int]]]) -> dict[str, Any]:
    """Jobs finished per hour, bars grouped by queue (hours in ISO form, UTC); grouped bars,
    not lines, so queues with the same count in an hour do not hide each other."""
    traces = [
        {
            "type": "bar",
            "name": queue,
            "x": [hour.isoformat() for hour, _ in points],
            "y": [count for _, count in points],
            "marker": {"color": _QUEUE_COLOURS.get(queue, "#444")},
            "hovertemplate": "%{y} finished<extra>" + queue + "</extra>",
        }
        for queue, points in per_queue.items()
    ]
    return {
        "data": traces,
        "layout": {
            **chart_layout(height=280, margin=(50, 20, 30, 40)),
            "xaxis": {"type": "date", "title": {"text": "hour (UTC)"}},
            "yaxis": {"title": {"text": "jobs finished"}, "rangemode": "tozero"},
            "legend": {"orientation": "h"},
            "barmode": "group",
        },
    }


def throughput_card(per_queue: dict[str, list[tuple[datetime, int]]]) -> dict[str, Any]:
    """The chart card (id, label, figure) that templates/partials/chart.html draws."""
    return chart_card(
        "fleet-throughput",
        "Jobs finished per hour by queue",
        throughput_figure(per_queue),
        empty="No job has finished in this range.",
    )
