"""Plotly figure dicts for treatment pages (pure functions of stored assessment JSON)."""

from __future__ import annotations

from typing import Any

from medai_site.core.charts import chart_layout, described, format_value

_LAYOUT = chart_layout(height=340, margin=(60, 20, 40, 50))
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
    return described({"data": data, "layout": layout}, _survival_summary(result, lows, highs))


def _survival_summary(result: dict[str, Any], lows: list[Any], highs: list[Any]) -> str:
    # The curves are steps (shape "hv"): the value at a time is the last step at or before it.
    times = result["curve_times"]
    at = result.get("horizon") or times[-1]
    index = max([i for i, t in enumerate(times) if t <= at] or [0])
    parts = []
    for arm in result["arms"]:
        text = f"{arm['label']} {arm['curve'][index]:.2f}"
        if arm["arm"] < len(lows):
            text += f" ({lows[arm['arm']][index]:.2f}–{highs[arm['arm']][index]:.2f})"
        parts.append(text)
    when = f"{at:g} {result.get('time_unit', '')}".strip()
    return f"Predicted probability event-free at {when}: " + ", ".join(parts) + "."


def benefit_figure(result: dict[str, Any]) -> dict[str, Any]:
    """Each arm minus the reference arm at the horizon, with its interval; a line at zero."""
    diffs = result.get("differences", [])
    labels = [f"{d['label']} vs {d['versus_label']}" for d in diffs]
    values = [d["difference"] for d in diffs]
    plus = [(d["high"] - d["difference"]) if d["high"] is not None else 0 for d in diffs]
    minus = [(d["difference"] - d["low"]) if d["low"] is not None else 0 for d in diffs]
    colours = ["#8aa4ad" if d.get("includes_no_difference") else "#0072B2" for d in diffs]
    figure = {
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
    parts = []
    for d, label in zip(diffs, labels, strict=True):
        text = f"{label} {d['difference']:+.1%}"
        if d["low"] is not None and d["high"] is not None:
            text += f" ({d['low']:+.1%} to {d['high']:+.1%}"
            text += ", includes no difference)" if d.get("includes_no_difference") else ")"
        parts.append(text)
    name = result.get("value_name", "outcome")
    return described(figure, f"Difference in {name}: " + "; ".join(parts) + ".")


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
    figure = {
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
    strongest = ", ".join(f"{label} {v:+.1%}" for label, v in list(zip(labels, values))[::-1][:3])
    summary = (
        f"Largest contributions to the predicted benefit of {explanation['arm_label']} over "
        f"{explanation['versus_label']}: {strongest}."
    )
    return described(figure, summary)


def cohort_benefit_figure(result: dict[str, Any], contrast: dict[str, Any]) -> dict[str, Any]:
    """Each trial patient's predicted benefit of one arm vs the reference against the chosen
    covariate, coloured by the arm the model recommends, with intervals and a zero line."""
    x, rec, labels = result["x"], result["recommended"], result["arm_labels"]
    data: list[dict[str, Any]] = []
    for arm in sorted(set(rec)):
        rows = [i for i, r in enumerate(rec) if r == arm]
        ys = [contrast["difference"][i] for i in rows]
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "markers",
            "x": [x[i] for i in rows],
            "y": ys,
            "name": f"Recommended: {labels[arm]}",
            "marker": {"color": _COLOURS[arm % len(_COLOURS)], "size": 6, "opacity": 0.7},
        }
        if contrast.get("has_interval"):
            trace["error_y"] = {
                "type": "data",
                "symmetric": False,
                "array": [contrast["high"][i] - contrast["difference"][i] for i in rows],
                "arrayminus": [contrast["difference"][i] - contrast["low"][i] for i in rows],
                "thickness": 0.6,
                "width": 0,
                "color": _rgba(_COLOURS[arm % len(_COLOURS)], 0.25),
            }
        data.append(trace)
    unit = f" ({result['covariate_unit']})" if result.get("covariate_unit") else ""
    return {
        "data": data,
        "layout": {
            **_LAYOUT,
            "height": 420,
            "title": {
                "text": f"Predicted benefit of {contrast['label']} over {contrast['versus']}"
            },
            "xaxis": {"title": {"text": f"{result['covariate_label']}{unit}"}},
            "yaxis": {
                "title": {"text": "Predicted difference"},
                "zeroline": True,
                "zerolinewidth": 2,
                "zerolinecolor": "#333",
                "tickformat": "+.0%" if result.get("outcome") == "survival" else "+.2g",
            },
            "legend": {"orientation": "h", "y": -0.2},
        },
    }


def qini_figure(qini: dict[str, Any]) -> dict[str, Any]:
    """Qini curve (treating the top fraction by predicted benefit) against random targeting."""
    points = [{"fraction": 0.0, "qini": 0.0, "random": 0.0}, *qini["points"]]
    xs = [p["fraction"] for p in points]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": xs,
                "y": [p["qini"] for p in points],
                "name": "Model ranking",
                "line": {"color": _COLOURS[0], "width": 2},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": [p["random"] for p in points],
                "name": "Random targeting",
                "line": {"color": "#777", "dash": "dash"},
            },
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": f"Qini curve: {qini['arm']} vs {qini['versus']} (held-out)"},
            "xaxis": {
                "title": {"text": "Fraction treated, highest predicted benefit first"},
                "tickformat": ".0%",
            },
            "yaxis": {"title": {"text": "Cumulative incremental outcomes"}, "zeroline": True},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def genomics_comparison_figure(comparison: dict[str, Any]) -> dict[str, Any]:
    """Cross-validated C-index of clinical-only vs clinical + genes, mean with SD error bars."""
    return {
        "data": [
            {
                "type": "bar",
                "x": ["Clinical only", "Clinical + genes"],
                "y": [comparison["c_clinical_mean"], comparison["c_clinical_genes_mean"]],
                "error_y": {
                    "type": "data",
                    "array": [comparison["c_clinical_sd"], comparison["c_clinical_genes_sd"]],
                    "color": "#333",
                },
                "marker": {"color": [_COLOURS[0], _COLOURS[2]]},
            }
        ],
        "layout": {
            **_LAYOUT,
            "title": {"text": f"Harrell's C over {comparison['n_folds']} held-out folds"},
            "yaxis": {"title": {"text": "C-index (0.5 = chance)"}, "range": [0.4, 1.0]},
            "shapes": [
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": 0.5,
                    "y1": 0.5,
                    "line": {"dash": "dot", "color": "#555"},
                }
            ],
            "showlegend": False,
        },
    }


def genomics_drivers_figure(drivers: list[dict[str, Any]], top: int = 15) -> dict[str, Any] | None:
    """Hazard ratio per SD of the strongest drivers (log axis), clinical and genes coloured."""
    items = list(reversed(drivers[:top]))
    if not items:
        return None
    figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [d["feature"] for d in items],
                "x": [d["hazard_ratio_per_sd"] - 1 for d in items],
                "base": 1,
                "customdata": [[d["type"], d["hazard_ratio_per_sd"]] for d in items],
                "hovertemplate": "%{y} (%{customdata[0]}): HR %{customdata[1]:.2f} per SD"
                "<extra></extra>",
                "marker": {
                    "color": [
                        _COLOURS[1] if d["type"] == "clinical" else _COLOURS[0] for d in items
                    ]
                },
            }
        ],
        "layout": {
            **_LAYOUT,
            "height": 100 + 26 * len(items),
            "title": {"text": "Drivers of risk: hazard ratio per SD (orange clinical, blue gene)"},
            "xaxis": {"title": {"text": "Hazard ratio per SD (1 = no effect)"}},
            "yaxis": {"automargin": True},
            "showlegend": False,
        },
    }
    strongest = ", ".join(
        f"{d['feature']} ({d['type']}) {format_value(d['hazard_ratio_per_sd'])}"
        for d in drivers[:3]
    )
    return described(figure, f"Strongest drivers of risk (hazard ratio per SD): {strongest}.")
