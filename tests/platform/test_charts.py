"""The shared chart primitives: the card keys partials/chart.html reads, and figures that
the apps' charts build on."""

from __future__ import annotations

from medai_site.core.charts import (
    NO_DATA,
    chart_card,
    chart_cards,
    chart_layout,
    confusion_heatmap,
    curves_figure,
    line_trace,
)


def test_chart_cards_keep_the_template_keys_and_leave_out_missing_figures():
    figure = {"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {}}
    empty_traces = {"data": [{"type": "bar", "x": [], "y": []}], "layout": {}}
    found = [("a", "A chart", figure), ("b", "No data", None), ("c", "Empty", empty_traces)]
    assert chart_cards(found) == [
        {"id": "a", "label": "A chart", "figure": figure, "empty": NO_DATA}
    ]


def test_a_chart_with_nothing_to_draw_says_so_instead_of_drawing_empty_axes():
    from django.template.loader import render_to_string

    for figure in (None, {"data": [], "layout": {}}, {"data": [{"x": [], "y": []}]}):
        card = chart_card("c", "Curves", figure, empty="Training has not started yet.")
        assert card["figure"] is None
        html = render_to_string("partials/chart.html", {"chart": card})
        assert "Training has not started yet." in html
        assert 'type="application/json"' not in html  # no figure for charts.js to draw
        assert 'data-figure="c"' in html and "hidden" in html  # a live update can fill it
    drawn = chart_card("c", "Curves", {"data": [{"x": [1], "y": [0.5]}], "layout": {}})
    html = render_to_string("partials/chart.html", {"chart": drawn})
    assert 'id="c" type="application/json"' in html and "chart-empty" not in html


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


def test_training_and_design_curves_are_none_before_the_first_epoch():
    from diagnosis.charts import training_curves_figure
    from drugs.charts import losses_figure, quality_figure
    from remote_care.risk.charts import risk_training_figure

    assert training_curves_figure([]) is None
    assert losses_figure([]) is None and quality_figure([]) is None
    assert risk_training_figure({}) is None
    assert risk_training_figure({"member": [], "val_auroc": []}) is None
    one = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_auc": 0.8}]
    assert training_curves_figure(one)["data"][2]["y"] == [0.8]


def test_class_probability_labels_get_the_room_they_need():
    from types import SimpleNamespace

    from diagnosis.charts import probabilities_figure

    prediction = SimpleNamespace(
        class_names=["normal", "pneumonia"],
        probabilities={"normal": 0.2, "pneumonia": 0.8},
        predicted_index=1,
    )
    layout = probabilities_figure(prediction)["layout"]
    assert layout["yaxis"]["automargin"] is True
