"""Plotly figure dicts for treatment pages (pure functions of stored assessment JSON)."""

from __future__ import annotations

from typing import Any

_LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "height": 340}
# Colour-blind-safe (Okabe-Ito) so arms stay distinguishable for every reader.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def survival_curves_figure(
    result: dict[str, Any], bands: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Predicted survival over time under each arm, with pointwise bands when given; None for
    outcome models (no curves)."""
    times = result.get("curve_times")
    if not times:
        return None
    data: list[dict[str, Any]] = []
    lows, highs = (bands or {}).get("low") or [], (bands or {}).get("high") or []
    for arm in result["arms"]:
        colour = _COLOURS[arm["arm"] % len(_COLOURS)]
        if arm["arm"] < len(lows):
            band_x = list(times) + list(reversed(times))
            band_y = list(highs[arm["arm"]]) + list(reversed(lows[arm["arm"]]))
            data.append(
                {
                    "type": "scatter",
                    "x": band_x,
                    "y": band_y,
                    "fill": "toself",
                    "fillcolor": _rgba(colour, 0.15),
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "name": f"{arm['label']} interval",
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": times,
                "y": arm["curve"],
                "name": arm["label"],
                "line": {"color": colour, "shape": "hv", "width": 2},
            }
        )
    layout: dict[str, Any] = {
        **_LAYOUT,
        "title": {"text": "Predicted survival under each treatment"},
        "xaxis": {"title": {"text": f"Time ({result.get('time_unit', '')})"}},
        "yaxis": {"title": {"text": "Probability event-free"}, "range": [0, 1.02]},
        "legend": {"orientation": "h", "y": -0.25},
    }
    if result.get("horizon"):
        layout["shapes"] = [
            {
                "type": "line",
                "x0": result["horizon"],
                "x1": result["horizon"],
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dot", "color": "#555"},
            }
        ]
    return {"data": data, "layout": layout}


def benefit_figure(result: dict[str, Any]) -> dict[str, Any]:
    """Each arm minus the reference arm at the horizon, with its interval; a line at zero."""
    diffs = result.get("differences", [])
    labels = [f"{d['label']} vs {d['versus_label']}" for d in diffs]
    values = [d["difference"] for d in diffs]
    plus = [(d["high"] - d["difference"]) if d["high"] is not None else 0 for d in diffs]
    minus = [(d["difference"] - d["low"]) if d["low"] is not None else 0 for d in diffs]
    colours = ["#8aa4ad" if d.get("includes_no_difference") else "#0072B2" for d in diffs]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "orientation": "h",
                "y": labels,
                "x": values,
                "marker": {"size": 12, "color": colours},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "color": "#333",
                },
                "name": "Difference",
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": 120 + 50 * len(diffs),
            "title": {"text": f"Difference in {result.get('value_name', 'outcome')}"},
            "xaxis": {"zeroline": True, "zerolinewidth": 2, "tickformat": "+.0%"},
            "yaxis": {"automargin": True},
            "showlegend": False,
        },
    }


def contributions_figure(explanation: dict[str, Any], top: int = 10) -> dict[str, Any] | None:
    """The covariates that push the predicted benefit most (Shapley values), largest first."""
    items = (explanation or {}).get("contributions") or []
    if not items:
        return None
    items = list(reversed(items[:top]))  # Plotly draws bottom-up: largest on top
    labels = [
        f"{c['label']} = {c['value']}{(' ' + c['unit']) if c.get('unit') else ''}" for c in items
    ]
    values = [c["contribution"] for c in items]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": labels,
                "x": values,
                "marker": {"color": ["#0072B2" if v >= 0 else "#D55E00" for v in values]},
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": 80 + 32 * len(items),
            "title": {
                "text": f"What drives the benefit of {explanation['arm_label']} "
                f"over {explanation['versus_label']}"
            },
            "xaxis": {"tickformat": "+.1%", "zeroline": True},
            "yaxis": {"automargin": True},
            "showlegend": False,
        },
    }
