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
    key: str,
    label: str,
    figure: Figure | None,
    *,
    empty: str = NO_DATA,
    summary: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What ``partials/chart.html`` draws: the figure, its element id, its accessible label
    and its text alternative (a summary sentence, ``summary`` when given, and the data table)
    (``extra``: template flags such as ``wide``). A figure with no point to draw (``None``,
    or only empty traces) becomes the sentence ``empty`` instead of empty axes, with a
    hidden chart element that a live update can draw into."""
    shown = described(figure, summary) if figure and figure_has_data(figure) else None
    alternative = chart_alternative(shown, label=label) or {"summary": "", "table": None}
    return {"id": key, "label": label, "figure": shown, "empty": empty, **alternative, **extra}


def chart_cards(found: Iterable[tuple[str, str, Figure | None]]) -> list[dict[str, Any]]:
    """A chart card per (id, label, figure), leaving out those with no figure to draw."""
    return [
        chart_card(key, label, figure) for key, label, figure in found if figure_has_data(figure)
    ]


# --- Text alternatives -------------------------------------------------------------------
# Every chart also reads as a sentence and a table (WCAG 1.1.1): the sentence says what the
# chart shows, the table holds the numbers it draws. Both are derived from the figure's own
# traces, so every chart has them; a chart function that knows its clinical meaning puts a
# better sentence on the figure with ``described`` (a top-level "summary" key, which Plotly
# ignores and which a live update carries to the page with the figure).

#: Rows a data table shows at most; a longer series is sampled evenly (the caption says so).
TABLE_MAX_ROWS = 200
_STATS_TYPES = ("histogram", "histogram2d", "box", "violin")


def described(figure: Figure, summary: str | None) -> Figure:
    """``figure`` with ``summary`` as its text alternative's sentence (None: unchanged)."""
    return {**figure, "summary": summary} if summary else figure


def format_value(value: Any) -> str:
    """A cell of a chart's data table: three significant figures, "—" for a gap."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN: Plotly draws a gap
            return "—"
        if value == int(value) and abs(value) < 1e6:
            return f"{int(value):,}"
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if _looks_like_time(value) and len(value) > 10 and value[10] == "T":
        return value[:16].replace("T", " ")  # to the minute, as a person reads a time
    return str(value)


def _text(value: Any) -> str:
    # Plotly titles are a string or {"text": ...}.
    if isinstance(value, dict):
        value = value.get("text")
    return str(value) if value else ""


def _axis_title(figure: Figure, axis: str) -> str:
    # axis: "x", "y", "y2" (a trace's xaxis/yaxis names its axis so; the layout key is
    # "yaxis2").
    key = axis[0] + "axis" + axis[1:]
    return _text((figure.get("layout") or {}).get(key, {}).get("title"))


def _title(figure: Figure) -> str:
    return _text((figure.get("layout") or {}).get("title"))


def _series(trace: dict[str, Any], index: int) -> str:
    return _text(trace.get("name")) or f"series {index + 1}"


def _is_band(trace: dict[str, Any]) -> bool:
    # A filled outline (an interval band drawn as one closed shape) is not a series of points.
    return trace.get("fill") == "toself"


def _points(
    trace: dict[str, Any],
) -> tuple[list[Any], list[Any], list[Any] | None, list[Any] | None]:
    """(categories, values, lows, highs) of a bar/scatter trace, in the orientation the reader
    sees: horizontal bars are categories down the y axis with values along x."""
    horizontal = trace.get("orientation") == "h"
    cat_key, val_key = ("y", "x") if horizontal else ("x", "y")
    values = list(trace.get(val_key) or [])
    base = trace.get("base")
    if isinstance(base, int | float) and not isinstance(base, bool):
        # Bars drawn from ``base`` (e.g. hazard ratios from 1): the value read is the bar's end.
        values = [v + base if isinstance(v, int | float) else v for v in values]
    cats = list(trace.get(cat_key) or range(1, len(values) + 1))
    lows = highs = None
    error = trace.get("error_x" if horizontal else "error_y") or {}
    if error.get("visible", True) and error.get("array") is not None:
        plus = list(error["array"])
        minus = plus if error.get("symmetric", True) else list(error.get("arrayminus") or plus)
        lows, highs = [], []
        for i, v in enumerate(values):
            ok = isinstance(v, int | float) and i < len(plus) and i < len(minus)
            lows.append(v - minus[i] if ok and minus[i] is not None else None)
            highs.append(v + plus[i] if ok and plus[i] is not None else None)
    return cats, values, lows, highs


def _sample(rows: list[list[Any]], max_rows: int) -> tuple[list[list[Any]], str]:
    if len(rows) <= max_rows:
        return rows, ""
    step = (len(rows) - 1) / (max_rows - 1)
    kept = [rows[round(i * step)] for i in range(max_rows)]
    return kept, f" ({max_rows} of {len(rows):,} rows, evenly spaced)"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def figure_table(
    figure: Figure | None, *, caption: str = "", max_rows: int = TABLE_MAX_ROWS
) -> dict[str, Any] | None:
    """The numbers ``figure`` draws as a table {"caption", "columns", "rows"} (cells are
    formatted strings; the first column heads each row), or None when it draws none.

    Traces sharing one category axis become one column each (a wide table); other point
    traces a row per point with their series name; a heat-map a row per y label; histograms
    and box plots a row of summary statistics per series; error bars a low and high column.
    """
    if not figure_has_data(figure):
        return None
    assert figure is not None
    traces = [t for t in figure.get("data") or [] if not _is_band(t)]
    caption = caption or _title(figure) or "Chart data"
    heatmaps = [t for t in traces if t.get("type") == "heatmap" and t.get("z")]
    if heatmaps:
        heat = heatmaps[0]
        z = heat["z"]
        xs = list(heat.get("x") or range(1, len(z[0]) + 1))
        ys = list(heat.get("y") or range(1, len(z) + 1))
        y_title, x_title = _axis_title(figure, "y"), _axis_title(figure, "x")
        corner = f"{y_title} (rows) / {x_title} (columns)" if y_title and x_title else y_title
        rows = [
            [format_value(y), *(format_value(v) for v in row)]
            for y, row in zip(ys, z, strict=False)
        ]
        return _table(caption, [corner or "row", *(format_value(x) for x in xs)], rows, max_rows)
    stats = [t for t in traces if t.get("type") in _STATS_TYPES]
    if stats:
        rows = []
        for i, t in enumerate(stats):
            values = [v for v in (t.get("x") or t.get("y") or []) if isinstance(v, int | float)]
            cells: list[Any] = [0, None, None, None]
            if values:
                cells = [len(values), min(values), _median(values), max(values)]
            rows.append([_series(t, i), *(format_value(v) for v in cells)])
        return _table(caption, ["Series", "values", "lowest", "median", "highest"], rows, max_rows)
    pies = [t for t in traces if t.get("type") == "pie"]
    if pies:
        pie = pies[0]
        rows = [
            [format_value(label), format_value(v)]
            for label, v in zip(pie.get("labels") or [], pie.get("values") or [], strict=False)
        ]
        return _table(caption, ["label", _series(pie, 0)], rows, max_rows)
    points = [(i, t, *_points(t)) for i, t in enumerate(traces) if t.get("x") or t.get("y")]
    if not points:
        return None
    first = points[0][1]
    horizontal = first.get("orientation") == "h"
    cat_axis = (first.get("yaxis") or "y") if horizontal else (first.get("xaxis") or "x")
    val_axis = (first.get("xaxis") or "x") if horizontal else (first.get("yaxis") or "y")
    cat_title = _axis_title(figure, cat_axis) or ("category" if horizontal else "x")
    shared = all(p[2] == points[0][2] for p in points)
    if shared:
        columns = [cat_title]
        for i, t, _, _, lows, _ in points:
            name = (
                _series(t, i)
                if len(points) > 1
                else (_axis_title(figure, val_axis) or _text(t.get("name")) or "value")
            )
            columns.append(name)
            if lows is not None:
                columns += [f"{name}: low", f"{name}: high"]
        rows = []
        for row_index, cat in enumerate(points[0][2]):
            row = [format_value(cat)]
            for _, _, _, values, lows, highs in points:
                row.append(format_value(values[row_index] if row_index < len(values) else None))
                if lows is not None and highs is not None:
                    row += [format_value(lows[row_index]), format_value(highs[row_index])]
            rows.append(row)
        return _table(caption, columns, rows, max_rows)
    has_interval = any(p[4] is not None for p in points)
    # One value column for every series: it is headed by their axis when they share one.
    value_axes = {
        (t.get("xaxis") or "x") if horizontal else (t.get("yaxis") or "y") for _, t, *_ in points
    }
    value_title = _axis_title(figure, val_axis) if len(value_axes) == 1 else ""
    columns = ["Series", cat_title, value_title or "value"]
    if has_interval:
        columns += ["low", "high"]
    rows = []
    for i, t, cats, values, lows, highs in points:
        for j, cat in enumerate(cats):
            row = [
                _series(t, i),
                format_value(cat),
                format_value(values[j] if j < len(values) else None),
            ]
            if has_interval:
                row += [
                    format_value(lows[j] if lows else None),
                    format_value(highs[j] if highs else None),
                ]
            rows.append(row)
    return _table(caption, columns, rows, max_rows)


def _table(
    caption: str, columns: list[str], rows: list[list[str]], max_rows: int
) -> dict[str, Any]:
    kept, note = _sample(rows, max_rows)
    return {"caption": caption + note, "columns": columns, "rows": kept, "total_rows": len(rows)}


def figure_summary(figure: Figure | None, *, label: str = "") -> str:
    """One or two sentences saying what ``figure`` shows: its own "summary" when a chart
    function gave one (``described``), else derived from its traces (per series: where it
    starts and ends and its range; for bars, the highest and lowest; for a heat-map, its
    largest cell; for a histogram, the median and range)."""
    if not figure_has_data(figure):
        return ""
    assert figure is not None
    if figure.get("summary"):
        return str(figure["summary"])
    what = label or _title(figure) or "Chart"
    traces = [t for t in figure.get("data") or [] if not _is_band(t)]
    parts: list[str] = []
    for i, t in enumerate(traces[:6]):
        kind = t.get("type") or "scatter"
        name = _series(t, i)
        if kind == "heatmap" and t.get("z"):
            cells = [
                (v, r, c)
                for r, row in enumerate(t["z"])
                for c, v in enumerate(row)
                if isinstance(v, int | float)
            ]
            if cells:
                v, r, c = max(cells)
                ys, xs = t.get("y") or [], t.get("x") or []
                where = ", ".join(
                    f"{_axis_title(figure, axis)} {format_value(s[k])}".strip()
                    for axis, s, k in (("y", ys, r), ("x", xs, c))
                    if k < len(s)
                )
                parts.append(
                    f"a {len(t['z'])} by {len(t['z'][0])} grid whose largest cell is "
                    f"{format_value(v)}" + (f" ({where})" if where else "")
                )
            continue
        if kind in _STATS_TYPES:
            values = [v for v in (t.get("x") or t.get("y") or []) if isinstance(v, int | float)]
            if values:
                parts.append(
                    f"{name}: {len(values):,} values, median {format_value(_median(values))} "
                    f"(from {format_value(min(values))} to {format_value(max(values))})"
                )
            continue
        if kind == "pie":
            pairs = list(zip(t.get("labels") or [], t.get("values") or [], strict=False))
            parts.append(", ".join(f"{format_value(a)} {format_value(b)}" for a, b in pairs[:8]))
            continue
        cats, values, _, _ = _points(t)
        numbered = [
            (c, v) for c, v in zip(cats, values, strict=False) if isinstance(v, int | float)
        ]
        if not numbered:
            continue
        if kind == "bar" or not all(
            isinstance(c, int | float) or _looks_like_time(c) for c, _ in numbered
        ):
            if len(numbered) <= 4:
                parts.append(
                    (f"{name}: " if len(traces) > 1 else "")
                    + ", ".join(f"{format_value(c)} {format_value(v)}" for c, v in numbered)
                )
            else:
                high = max(numbered, key=lambda p: p[1])
                low = min(numbered, key=lambda p: p[1])
                parts.append(
                    f"{name}: highest {format_value(high[1])} ({format_value(high[0])}), "
                    f"lowest {format_value(low[1])} ({format_value(low[0])})"
                )
            continue
        (c0, v0), (c1, v1) = numbered[0], numbered[-1]
        if len(numbered) == 1:
            parts.append(f"{name}: {format_value(v0)} at {format_value(c0)}")
            continue
        lowest = min(v for _, v in numbered)
        highest = max(v for _, v in numbered)
        parts.append(
            f"{name}: {len(numbered):,} points from {format_value(v0)} at {format_value(c0)} "
            f"to {format_value(v1)} at {format_value(c1)} (range {format_value(lowest)} to "
            f"{format_value(highest)})"
        )
    if len(traces) > 6:
        parts.append(f"and {len(traces) - 6} more series")
    return f"{what}: " + "; ".join(parts) + "." if parts else f"{what}."


def _looks_like_time(value: Any) -> bool:
    # Dates and times arrive as ISO strings ("2026-01-31" or "2026-01-31 08:00").
    return isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-"


def chart_alternative(figure: Figure | None, *, label: str = "") -> dict[str, Any] | None:
    """The text alternative of ``figure``: {"summary", "table"} (None when it draws nothing);
    what partials/chart.html shows under a chart and what a live update sends beside it."""
    if not figure_has_data(figure):
        return None
    return {
        "summary": figure_summary(figure, label=label),
        "table": figure_table(figure, caption=label),
    }


def live_figure(figure: Figure | None, *, label: str = "") -> Figure | None:
    """``figure`` as a live update sends it: with its text alternative ("alt"), so charts.js
    keeps the sentence and the data table under the chart in step with what it draws."""
    alternative = chart_alternative(figure, label=label)
    if figure is None or alternative is None:
        return figure
    return {**figure, "alt": alternative}
