"""Plotly figure dicts for the drug-design pages (pure functions)."""

from __future__ import annotations

from typing import Any

from medai_site.core.charts import chart_layout, curves_figure, described, format_value, line_trace

_LAYOUT = chart_layout(height=300, margin=(55, 20, 40, 45))
# Pre-training and adversarial epochs on one axis, in the order they ran.
_EPOCH_AXIS = {
    "title": {"text": "epoch (pre-training, then adversarial)"},
    "tickformat": "d",
    "dtick": 1,
}
GENERATED = "#b3261e"
TRAINING = "#5b7f8a"

# (key, axis label) of the property distributions page.
PROPERTIES = (
    ("mw", "Molecular weight (Da)"),
    ("logp", "logP (Crippen)"),
    ("tpsa", "TPSA (Å²)"),
    ("qed", "QED"),
    ("sa_score", "SA score (1 easy … 10 hard)"),
)


def _epoch_axis(history: list[dict[str, Any]]) -> list[int]:
    return list(range(1, len(history) + 1))


def _phase_text(history: list[dict[str, Any]]) -> list[str]:
    return [f"{h.get('phase', '')} epoch {h.get('epoch', '')}" for h in history]


def losses_figure(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Generator and discriminator loss per epoch; None before the first epoch."""
    if not history:
        return None
    x = _epoch_axis(history)
    text = _phase_text(history)
    traces = [
        line_trace(
            name,
            x,
            [h.get(key) for h in history],
            text=text,
            hovertemplate="%{text}<br>%{y:.4f}<extra>" + name + "</extra>",
        )
        for key, name in (("g_loss", "generator loss"), ("d_loss", "discriminator loss"))
    ]
    last = history[-1]
    summary = (
        f"Losses after {len(history)} epochs (latest: {text[-1].strip()}): generator loss "
        f"{format_value(last.get('g_loss'))}, discriminator loss "
        f"{format_value(last.get('d_loss'))}."
    )
    figure = curves_figure(
        traces,
        layout=_LAYOUT,
        title="Losses per epoch",
        x_axis=_EPOCH_AXIS,
        y_axis={"title": {"text": "loss"}},
        shapes=_phase_boundary(history),
    )
    return described(figure, summary)


def _phase_boundary(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, h in enumerate(history[1:], start=1):
        if h.get("phase") != history[i - 1].get("phase"):
            return [
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": i + 0.5,
                    "x1": i + 0.5,
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dot", "color": "#888"},
                }
            ]
    return []


def quality_figure(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Validity, uniqueness, novelty and mean reward of each epoch's sample; None before the
    first epoch."""
    if not history:
        return None
    x = _epoch_axis(history)
    text = _phase_text(history)
    series = (
        ("validity", "validity"),
        ("uniqueness", "uniqueness"),
        ("novelty", "novelty"),
        ("mean_reward", "mean reward"),
    )
    last = history[-1]
    summary = (
        f"Sample quality after {len(history)} epochs (latest: {text[-1].strip()}): "
        + ", ".join(f"{name} {format_value(last.get(key))}" for key, name in series)
        + "."
    )
    figure = curves_figure(
        [
            line_trace(
                name,
                x,
                [h.get(key) for h in history],
                text=text,
                hovertemplate="%{text}<br>%{y:.3f}<extra>" + name + "</extra>",
            )
            for key, name in series
        ],
        layout=_LAYOUT,
        title="Sample quality per epoch",
        x_axis=_EPOCH_AXIS,
        y_axis={"range": [0, 1.05], "title": {"text": "share / reward"}},
        shapes=_phase_boundary(history),
    )
    return described(figure, summary)


def distribution_figure(
    key: str, label: str, generated: list[float], training: list[float]
) -> dict[str, Any] | None:
    """Overlaid normalised histograms of one property: generated vs training set."""
    if not generated and not training:
        return None
    trace = {"type": "histogram", "histnorm": "probability density", "opacity": 0.6, "nbinsx": 40}
    return {
        "data": [
            {**trace, "name": "training set", "x": training, "marker": {"color": TRAINING}},
            {**trace, "name": "generated", "x": generated, "marker": {"color": GENERATED}},
        ],
        "layout": {
            **_LAYOUT,
            "barmode": "overlay",
            "title": {"text": label},
            "xaxis": {"title": {"text": label}},
            "yaxis": {"title": {"text": "density"}},
            "legend": {"orientation": "h"},
        },
    }


def chemical_space_figure(
    train_xy: list[list[float]],
    generated: list[tuple[float, float, str, int]],
    method: str,
    explained: list[float] | None = None,
) -> dict[str, Any] | None:
    """Training and generated molecules on one 2D projection of their Morgan fingerprints;
    generated points carry their SMILES and molecule id (a click opens the molecule). SVG
    scatter, not WebGL: hospital desktops and headless browsers often have no WebGL."""
    if not train_xy and not generated:
        return None
    axis = [
        f"component {i + 1}" + (f" ({100 * explained[i]:.1f}% of variance)" if explained else "")
        for i in range(2)
    ]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "training set",
                "x": [p[0] for p in train_xy],
                "y": [p[1] for p in train_xy],
                "marker": {"size": 4, "color": TRAINING, "opacity": 0.35},
                "hoverinfo": "skip",
            },
            {
                "type": "scatter",
                "mode": "markers",
                "name": "generated",
                "x": [g[0] for g in generated],
                "y": [g[1] for g in generated],
                "text": [g[2] for g in generated],
                "customdata": [g[3] for g in generated],
                "marker": {"size": 5, "color": GENERATED, "opacity": 0.7},
                "hovertemplate": "%{text}<extra>generated</extra>",
            },
        ],
        "layout": {
            **_LAYOUT,
            "height": 480,
            "title": {"text": "Chemical space", "subtitle": {"text": method}},
            "xaxis": {"showticklabels": False, "zeroline": False, "title": {"text": axis[0]}},
            "yaxis": {"showticklabels": False, "zeroline": False, "title": {"text": axis[1]}},
            "legend": {"orientation": "h"},
        },
    }


# The goal-directed comparison's rows, in the order the table and chart show them.
GOAL_ROWS = ("run", "train", "prior")
_GOAL_STATS = (
    ("top_k_mean", "top-100 mean"),
    ("top_10_mean", "top-10 mean"),
    ("top_1", "top-1"),
)
_GOAL_COLOURS = ("#b3261e", "#5b7f8a", "#c9a227")


def goal_figure(rows: list[dict[str, Any]], k: int) -> dict[str, Any] | None:
    """The objective's top-k mean, top-10 mean and top-1 of each row (this run and its
    baselines, each row a dict with ``label`` and those keys) as grouped bars; None without
    rows."""
    if not rows:
        return None
    labels = [row["label"] for row in rows]
    data = [
        {
            "type": "bar",
            "name": name.replace("100", str(k)),
            "x": labels,
            "y": [row.get(key) for row in rows],
            "marker": {"color": colour},
            "hovertemplate": "%{x}<br>%{y:.3f}<extra>" + name.replace("100", str(k)) + "</extra>",
        }
        for (key, name), colour in zip(_GOAL_STATS, _GOAL_COLOURS)
    ]
    ours = rows[0]
    others = "; ".join(f"{row['label']} {format_value(row.get('top_k_mean'))}" for row in rows[1:])
    summary = (
        f"Top-{k} mean objective score: {ours['label']} {format_value(ours.get('top_k_mean'))}"
        + (f" against {others}" if others else "")
        + " (scores from 0 to 1, higher is better)."
    )
    figure = {
        "data": data,
        "layout": {
            **_LAYOUT,
            "barmode": "group",
            "title": {"text": "Objective score of the best molecules"},
            "xaxis": {"automargin": True},
            "yaxis": {"range": [0, 1.05], "title": {"text": "objective score (0–1)"}},
            "legend": {"orientation": "h"},
        },
    }
    return described(figure, summary)
