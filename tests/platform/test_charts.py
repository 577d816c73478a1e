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
    (card,) = chart_cards(found)
    assert {k: card[k] for k in ("id", "label", "figure", "empty")} == {
        "id": "a",
        "label": "A chart",
        "figure": figure,
        "empty": NO_DATA,
    }
    assert card["summary"] == "A chart: a 1." and card["table"]["rows"] == [["a", "1"]]


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


# --- Text alternatives: every chart reads as a sentence and a data table -----------------


def test_curves_sharing_an_axis_become_one_table_with_a_column_per_series():
    from medai_site.core.charts import figure_table

    figure = curves_figure(
        [
            line_trace("train loss", [1, 2, 3], [0.9, 0.6, 0.5], yaxis="y2"),
            line_trace("val AUC", [1, 2, 3], [0.7, 0.81, None]),
        ],
        layout=chart_layout(height=300, margin=(50, 20, 40, 40)),
        x_axis={"title": {"text": "epoch"}},
        y_axis={"title": {"text": "AUC"}},
        title="Training curves",
        loss_axis=True,
    )
    table = figure_table(figure)
    assert table["caption"] == "Training curves"
    assert table["columns"] == ["epoch", "train loss", "val AUC"]
    assert table["rows"] == [["1", "0.9", "0.7"], ["2", "0.6", "0.81"], ["3", "0.5", "—"]]


def test_error_bars_bands_and_bar_bases_read_as_the_chart_shows_them():
    from medai_site.core.charts import figure_table

    figure = {
        "data": [
            # An interval band is a closed outline, not a series: left out.
            {"type": "scatter", "x": [0, 1, 1, 0], "y": [1, 1, 0, 0], "fill": "toself"},
            {
                "type": "scatter",
                "orientation": "h",
                "y": ["A vs B", "C vs B"],
                "x": [0.1, -0.02],
                "error_x": {"array": [0.05, 0.04], "arrayminus": [0.03, 0.01], "symmetric": False},
                "name": "Difference",
            },
        ],
        "layout": {"title": {"text": "Differences"}},
    }
    table = figure_table(figure)
    assert table["columns"] == ["category", "Difference", "Difference: low", "Difference: high"]
    assert table["rows"] == [
        ["A vs B", "0.1", "0.07", "0.15"],
        ["C vs B", "-0.02", "-0.03", "0.02"],
    ]
    hazard = {"data": [{"type": "bar", "orientation": "h", "y": ["age"], "x": [0.4], "base": 1}]}
    assert figure_table(hazard)["rows"] == [["age", "1.4"]]


def test_series_on_their_own_points_become_a_row_per_point_and_long_ones_are_sampled():
    from medai_site.core.charts import figure_table

    figure = {
        "data": [
            {
                "name": "heart rate",
                "x": [f"2026-01-01T0{h}:00" for h in range(3)],
                "y": [70, 90, 88],
            },
            {"name": "SpO2", "x": ["2026-01-01T01:30"], "y": [95], "yaxis": "y2"},
        ],
        "layout": {"yaxis": {"title": {"text": "/min"}}, "yaxis2": {"title": {"text": "%"}}},
    }
    table = figure_table(figure)
    # Two axes: one value column, not headed by either unit.
    assert table["columns"] == ["Series", "x", "value"]
    assert table["rows"][-1] == ["SpO2", "2026-01-01 01:30", "95"]
    long = {"data": [{"x": list(range(1000)), "y": [i / 7 for i in range(1000)]}]}
    sampled = figure_table(long, caption="Long", max_rows=50)
    assert len(sampled["rows"]) == 50 and sampled["total_rows"] == 1000
    assert sampled["rows"][0][0] == "0" and sampled["rows"][-1][0] == "999"
    assert sampled["caption"] == "Long (50 of 1,000 rows, evenly spaced)"


def test_heatmaps_and_histograms_get_tables_of_what_they_show():
    from medai_site.core.charts import figure_summary, figure_table

    heat = confusion_heatmap(
        [[5, 1], [2, 7]],
        names=["normal", "pneumonia"],
        layout={},
        title="Model vs clinician",
        x_title="model said",
        y_title="clinician said",
    )
    table = figure_table(heat)
    assert table["columns"] == [
        "clinician said (rows) / model said (columns)",
        "normal",
        "pneumonia",
    ]
    assert table["rows"] == [["normal", "5", "1"], ["pneumonia", "2", "7"]]
    assert "largest cell is 7 (clinician said pneumonia, model said pneumonia)" in (
        figure_summary(heat)
    )
    hist = {"data": [{"type": "histogram", "name": "QED", "x": [0.2, 0.4, 0.9]}], "layout": {}}
    assert figure_table(hist)["rows"] == [["QED", "3", "0.2", "0.4", "0.9"]]
    assert figure_summary(hist, label="QED") == "QED: QED: 3 values, median 0.4 (from 0.2 to 0.9)."


def test_a_generic_summary_follows_the_data_and_a_chart_may_say_it_better():
    from medai_site.core.charts import described, figure_summary

    curve = {"data": [line_trace("val AUC", [1, 2, 3], [0.7, 0.9, 0.85])], "layout": {}}
    assert figure_summary(curve, label="Curves") == (
        "Curves: val AUC: 3 points from 0.7 at 1 to 0.85 at 3 (range 0.7 to 0.9)."
    )
    bars = {"data": [{"type": "bar", "x": list("abcdef"), "y": [3, 9, 1, 4, 4, 2]}]}
    assert "highest 9 (b), lowest 1 (c)" in figure_summary(bars)
    assert figure_summary(described(curve, "Better.")) == "Better."
    assert chart_card("c", "Curves", curve, summary="Best.")["summary"] == "Best."


def test_the_chart_partial_names_a_figure_not_an_image_and_holds_the_data_table():
    from django.template.loader import render_to_string

    figure = {"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}], "layout": {}}
    html = render_to_string("partials/chart.html", {"chart": chart_card("c", "Counts", figure)})
    # Plotly's mode bar is focusable: its element must not sit inside role="img".
    assert 'role="img"' not in html
    assert '<figure class="chart-figure"' in html and 'aria-labelledby="c-label"' in html
    assert 'id="c-summary" data-chart-summary>Counts: a 1, b 2.</span>' in html
    assert "<summary>Data table</summary>" in html and "<caption>Counts</caption>" in html
    assert (
        '<th scope="col">x</th>' in html and '<th scope="row">b</th><td class="num">2</td>' in html
    )


def test_a_live_figure_carries_its_sentence_and_table_for_the_page_to_show():
    from diagnosis.charts import training_curves_figure
    from medai_site.core.charts import live_figure

    assert live_figure(None) is None
    history = [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_auc": 0.8},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.55, "val_auc": 0.78},
    ]
    live = live_figure(training_curves_figure(history), label="Training curves")
    assert live["alt"]["summary"] == (
        "Training curves after epoch 2: train loss 0.5, val loss 0.55, val AUC 0.78 "
        "(best val AUC 0.8 at epoch 1)."
    )
    assert live["alt"]["table"]["rows"][1] == ["2", "0.5", "0.55", "0.78"]
