"""Chart primitives that every app's ``charts.py`` builds its figures from.

Pure functions returning Plotly figure dicts (and parts of them), plus the chart cards that
``templates/partials/chart.html`` takes ({"id", "label", "figure"}); ``static/js/charts.js``
draws them. Nothing here reads the database or knows a clinical domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Figure = dict[str, Any]
# Plot margins in pixels: (left, right, top, bottom).
Margin = tuple[int, int, int, int]

REFERENCE_GREY = "#999"


def chart_layout(*, height: int, margin: Margin, **extra: Any) -> dict[str, Any]:
    """A figure layout ``height`` pixels tall with ``margin``, then ``extra`` layout keys."""
    left, right, top, bottom = margin
    return {"margin": {"l": left, "r": right, "t": top, "b": bottom}, "height": height, **extra}


def line_trace(name: str, x: Sequence[Any], y: Sequence[Any], **extra: Any) -> dict[str, Any]:
    """One series drawn as lines and markers (``extra``: yaxis, line, text, hovertemplate)."""
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": y, **extra}


def curves_figure(
    traces: list[dict[str, Any]],
    *,
    layout: dict[str, Any],
    x_axis: dict[str, Any],
    y_axis: dict[str, Any],
    title: str | None = None,
    loss_axis: bool = False,
    **extra: Any,
) -> Figure:
    """Curves over epochs (training, validation, sample quality) with a horizontal legend;
    ``loss_axis`` adds the right-hand "loss" axis that traces with ``yaxis="y2"`` are on."""
    out = {**layout}
    if loss_axis:
        out["margin"] = {**layout["margin"], "r": 60}
    if title is not None:
        out["title"] = {"text": title}
    out["xaxis"], out["yaxis"] = x_axis, y_axis
    if loss_axis:
        out["yaxis2"] = {"title": {"text": "loss"}, "overlaying": "y", "side": "right"}
    out["legend"] = {"orientation": "h"}
    return {"data": traces, "layout": {**out, **extra}}


def confusion_heatmap(
    matrix: Sequence[Sequence[int]],
    *,
    names: Sequence[str],
    layout: dict[str, Any],
    title: str,
    x_title: str,
    y_title: str,
) -> Figure:
    """A confusion matrix as a heat-map with each cell's count written in it: true classes
    down the rows (first at the top), predicted classes along the columns."""
    return {
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
            **layout,
            "title": {"text": title},
            "xaxis": {"title": {"text": x_title}},
            "yaxis": {"title": {"text": y_title}, "autorange": "reversed"},
        },
    }


def diagonal_trace(name: str, *, colour: str = REFERENCE_GREY) -> dict[str, Any]:
    """The dotted y = x line of a calibration plot (perfect) or ROC curve (chance)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [0, 1],
        "y": [0, 1],
        "line": {"dash": "dot", "color": colour},
    }


def unit_square_figure(
    traces: list[dict[str, Any]], *, layout: dict[str, Any], x_title: str, y_title: str
) -> Figure:
    """Curves on probability axes, both from 0 to 1 (calibration, ROC)."""
    return {
        "data": traces,
        "layout": {
            **layout,
            "xaxis": {"title": {"text": x_title}, "range": [0, 1]},
            "yaxis": {"title": {"text": y_title}, "range": [0, 1]},
        },
    }


#: What a chart with nothing to draw says instead of showing empty axes.
NO_DATA = "No data to chart yet."
TRAINING_NOT_STARTED = (
    "Training has not started yet: the curves appear here when the first epoch finishes."
)


_DATA_KEYS = ("x", "y", "z", "values")


def figure_has_data(figure: Figure | None) -> bool:
    """Whether any trace of ``figure`` has a point to draw (Plotly draws a figure whose
    traces are all empty as bare axes from -1 to 6)."""
    if not figure:
        return False
    for trace in figure.get("data") or []:
        if any(trace.get(key) is not None and len(trace[key]) > 0 for key in _DATA_KEYS):
            return True
    return False


def chart_card(
    key: str, label: str, figure: Figure | None, *, empty: str = NO_DATA, **extra: Any
) -> dict[str, Any]:
    """What ``partials/chart.html`` draws: the figure, its element id and its accessible label
    (``extra``: template flags such as ``wide``). A figure with no point to draw (``None``,
    or only empty traces) becomes the sentence ``empty`` instead of empty axes, with a
    hidden chart element that a live update can draw into."""
    shown = figure if figure_has_data(figure) else None
    return {"id": key, "label": label, "figure": shown, "empty": empty, **extra}


def chart_cards(found: Iterable[tuple[str, str, Figure | None]]) -> list[dict[str, Any]]:
    """A chart card per (id, label, figure), leaving out those with no figure to draw."""
    return [
        chart_card(key, label, figure) for key, label, figure in found if figure_has_data(figure)
    ]
