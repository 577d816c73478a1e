"""Held-out metrics and the bootstrap comparison of two versions (pure numpy, no database)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored

from medai_ml import comparison
from medai_ml.comparison import METRICS, estimate, not_worse, paired_difference

rng = np.random.default_rng(0)
LABELS = rng.integers(0, 2, 300)
GOOD = LABELS * 1.5 + rng.normal(size=300)
WEAK = LABELS * 0.2 + rng.normal(size=300)


def test_auroc_matches_sklearn_binary_and_macro():
    targets = {"labels": LABELS}
    assert comparison.auroc(targets, GOOD) == pytest.approx(roc_auc_score(LABELS, GOOD))
    labels3 = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200)
    expected = roc_auc_score(labels3, probs, multi_class="ovr", average="macro")
    assert comparison.auroc({"labels": labels3}, probs) == pytest.approx(expected)


def test_c_index_matches_scikit_survival_with_ties_and_censoring():
    time = rng.integers(1, 50, 150).astype(float)  # many tied times
    event = rng.random(150) < 0.6
    risk = np.round(-time / 10 + rng.normal(size=150), 1)  # tied risks too
    expected = concordance_index_censored(event, time, risk)[0]
    ours = comparison.c_index({"time": time, "event": event}, risk)
    assert ours == pytest.approx(expected, abs=1e-9)


def test_identical_versions_differ_by_exactly_zero():
    d = paired_difference(METRICS["auroc"], {"labels": LABELS}, GOOD, GOOD.copy(), n_boot=200)
    assert (d.value, d.low, d.high, d.paired) == (0.0, 0.0, 0.0, True)
    assert not_worse(d, higher_is_better=True)


def test_a_clearly_worse_version_is_significantly_worse_and_the_interval_covers():
    targets = {"labels": LABELS}
    d = paired_difference(METRICS["auroc"], targets, WEAK, GOOD, n_boot=300)
    assert d.low <= d.value <= d.high < 0
    assert not not_worse(d, higher_is_better=True)
    e = estimate(METRICS["auroc"], targets, GOOD, n_boot=300)
    assert e.low < e.value < e.high and e.n == 300
    # Lower-is-better metrics: a smaller RMSE is the better one.
    y = rng.normal(size=100)
    close, far = y + 0.1 * rng.normal(size=100), y + rng.normal(size=100)
    r = paired_difference(METRICS["rmse"], {"y": y}, far, close, n_boot=200)
    assert r.low > 0 and not not_worse(r, higher_is_better=False)


def test_paired_comparison_refuses_outputs_for_different_items():
    with pytest.raises(ValueError, match="same items"):
        paired_difference(METRICS["auroc"], {"labels": LABELS}, GOOD, GOOD[:-1])


def test_unpaired_difference_resamples_each_side():
    # Its own generator: the module's is shared, and its state depends on which tests ran
    # before this one in the same process.
    local = np.random.default_rng(18)
    a, b = (local.random(400) < 0.9).astype(int), (local.random(300) < 0.5).astype(int)
    d = comparison.unpaired_difference(METRICS["validity"], ({}, a), ({}, b), n_boot=300)
    # The true difference is 0.4; each side's standard error makes the interval ~0.13 wide.
    assert not d.paired and 0.25 < d.low <= d.value <= d.high < 0.55
