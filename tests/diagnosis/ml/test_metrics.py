"""Metrics on cases small enough to check by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from diagnosis.ml.metrics import (
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    macro_auc,
    reliability_curve,
    roc_auc,
    roc_curve,
    softmax,
    youden_threshold,
)


def test_auc_perfect_inverted_and_tied() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.full(4, 0.5)) == 0.5


def test_auc_hand_computed_with_a_tie() -> None:
    # Pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3 of 4; the tie adds a half.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.3, 0.3, 0.1, 0.9])) == 0.875


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_macro_auc_multiclass() -> None:
    y = np.array([0, 1, 2, 2])
    perfect = np.eye(3)[y] * 0.8 + 0.2 / 3
    assert macro_auc(y, perfect) == pytest.approx(1.0)
    # Class 0: its one positive outranks all 3 negatives (1). Class 1: its positive (0.1) beats
    # 1 of 3 negatives (0.05, 0.8, 0.8) -> 1/3. Class 2: positives (0.1, 0.1) each beat 1 of 2
    # negatives (0.05, 0.8) -> 1/2. Macro mean: (1 + 1/3 + 1/2) / 3.
    swapped = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    assert macro_auc(y, swapped) == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)


def test_roc_curve_points() -> None:
    fpr, tpr, thr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]


def test_confusion_matrix_counts() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_ece_of_calibrated_and_overconfident_toys() -> None:
    # 100 predictions at confidence 0.75 of which exactly 75 are right: perfectly calibrated.
    probs = np.tile([0.25, 0.75], (100, 1))
    y = np.r_[np.ones(75, dtype=int), np.zeros(25, dtype=int)]
    assert expected_calibration_error(probs, y) == pytest.approx(0.0, abs=1e-12)
    # Always 100 % sure, right half the time: ECE 0.5.
    sure = np.tile([0.0, 1.0], (10, 1))
    assert expected_calibration_error(sure, np.r_[np.ones(5), np.zeros(5)].astype(int)) == 0.5
    curve = reliability_curve(probs, y, n_bins=10)
    assert sum(curve.count) == 100 and curve.count[7] == 100
    assert curve.accuracy[7] == pytest.approx(0.75)


def test_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(int)
    logits = np.c_[np.zeros_like(z), z]
    # Calibrated logits multiplied by 3 are over-confident by exactly T = 3.
    assert fit_temperature(3 * logits, y) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(logits, y) == pytest.approx(1.0, rel=0.05)


def test_youden_threshold_separates_separable_scores() -> None:
    y = np.array([0, 0, 0, 1, 1])
    t = youden_threshold(y, np.array([0.1, 0.2, 0.6, 0.7, 0.9]))
    assert 0.6 < t < 0.7


def test_evaluate_binary_is_json_ready() -> None:
    y = np.array([0, 0, 1, 1, 1])
    logits = np.array([[2.0, -2], [1, 0], [0, 1], [-1, 2], [1.5, 1.0]])
    ev = evaluate(logits, y, class_names=["normal", "pneumonia"], temperature=2.0, threshold=0.5)
    # p1 = [.02, .27, .73, .95, .44]: two normals right, two of three pneumonias right.
    assert ev.confusion_matrix == [[2, 0], [1, 2]]
    assert ev.sensitivity == pytest.approx(2 / 3) and ev.specificity == 1.0
    assert ev.accuracy == pytest.approx(0.8)
    assert ev.auc == pytest.approx(roc_auc(y, softmax(logits)[:, 1]))
    text = json.dumps(ev.to_dict(), allow_nan=False)
    assert json.loads(text)["roc"]["pneumonia"]["thresholds"][0] is None  # +inf


def test_evaluate_multiclass_reports_per_class_recall() -> None:
    y = np.array([0, 1, 2, 2])
    logits = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]]))
    ev = evaluate(logits, y, class_names=["a", "b", "c"])
    assert ev.per_class_recall == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert ev.sensitivity is None and ev.threshold is None
    json.dumps(ev.to_dict(), allow_nan=False)


def test_matches_scikit_learn_on_random_data() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500) + 0.3 * y, 2)  # rounding creates ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))
    y3 = rng.integers(0, 3, 300)
    p3 = softmax(rng.normal(size=(300, 3)) + np.eye(3)[y3])
    assert macro_auc(y3, p3) == pytest.approx(sk.roc_auc_score(y3, p3, multi_class="ovr"))
