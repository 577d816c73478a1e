"""The shared chart primitives: the card keys partials/chart.html reads, and figures that
the apps' charts build on."""

from __future__ import annotations

from medai_site.core.charts import (
    chart_cards,
    chart_layout,
    confusion_heatmap,
    curves_figure,
    line_trace,
)


def test_chart_cards_keep_the_template_keys_and_leave_out_missing_figures():
    figure = {"data": [], "layout": {}}
    assert chart_cards([("a", "A chart", figure), ("b", "No data", None)]) == [
        {"id": "a", "label": "A chart", "figure": figure}
    ]


def test_confusion_heatmap_writes_counts_with_true_classes_down_from_the_top():
    figure = confusion_heatmap(
        [[5, 1], [2, 7]],
        names=["normal", "pneumonia"],
        layout=chart_layout(height=300, margin=(50, 20, 40, 40)),
        title="t",
        x_title="predicted",
        y_title="true",
    )
    (trace,) = figure["data"]
    assert trace["type"] == "heatmap" and trace["text"] == [["5", "1"], ["2", "7"]]
    assert figure["layout"]["yaxis"] == {"title": {"text": "true"}, "autorange": "reversed"}
    assert figure["layout"]["margin"] == {"l": 50, "r": 20, "t": 40, "b": 40}


def test_curves_figure_puts_loss_on_a_right_hand_axis_with_room_for_it():
    layout = chart_layout(height=300, margin=(50, 20, 40, 40))
    figure = curves_figure(
        [line_trace("loss", [1, 2], [0.9, 0.5], yaxis="y2")],
        layout=layout,
        x_axis={"title": {"text": "epoch"}},
        y_axis={"title": {"text": "AUC"}},
        loss_axis=True,
    )
    assert figure["layout"]["margin"]["r"] == 60 and layout["margin"]["r"] == 20
    assert figure["layout"]["yaxis2"]["side"] == "right"
    assert figure["data"][0]["mode"] == "lines+markers"
