from __future__ import annotations

import numpy as np
import pytest

from remote_care.ml.evaluate import (
    alerts_at_rate,
    auprc,
    auroc,
    brier,
    expected_calibration_error,
    operating_point,
    reliability_bins,
    score_report,
)


def test_discrimination_on_hand_made_inputs():
    y = [0, 0, 1, 1]
    assert auroc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc(y, [1, 2, 3, 4]) == 1.0
    # AP: ranks 0.8 (pos, P=1), 0.4 (neg), 0.35 (pos, P=2/3) -> (1 + 2/3) / 2
    assert auprc(y, [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    assert brier(y, [0, 0, 1, 0.5]) == pytest.approx(0.0625)


def test_calibration_bins_and_ece():
    y = [0, 1, 0, 1, 1, 1]
    p = [0.05, 0.05, 0.95, 0.95, 0.95, 0.95]
    bins = reliability_bins(y, p)
    assert [(b.count, b.observed_rate) for b in bins] == [(2, 0.5), (4, 0.75)]
    assert expected_calibration_error(y, p) == pytest.approx((2 * 0.45 + 4 * 0.2) / 6)


def test_matched_alert_rate():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.array([9, 8, 7, 1, 1, 1, 1, 1, 1, 1.0])
    a = alerts_at_rate(s, 0.2)
    assert a.sum() == 2 and a[0] and a[1]
    op = operating_point(y, a)
    assert op.sensitivity == pytest.approx(1 / 3)
    assert op.specificity == pytest.approx(6 / 7)
    assert op.ppv == 0.5 and op.alert_rate == 0.2
    # Coarse ties at the cut are broken at random, never by position in the list.
    ties = alerts_at_rate(np.ones(1000), 0.3)
    assert ties.sum() == 300 and 0.2 < ties[:500].mean() < 0.4


def test_score_report_and_input_checks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 * y + rng.random(400) * 0.5, 0, 1)
    r = score_report("x", y, p, is_probability=True, alert_rates={"top 20%": 0.2}, n_boot=200)
    assert r.auroc_ci[0] <= r.auroc <= r.auroc_ci[1]
    assert r.at_rate["top 20%"].n_alerts == 80 and r.ece is not None
    with pytest.raises(ValueError):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        brier([0, 1], [0.1])
