from __future__ import annotations

import json

import numpy as np
import pytest
from sksurv.nonparametric import kaplan_meier_estimator

from treatment.ml.evaluate import (
    evaluate_model,
    evaluate_trial,
    ipcw_outcome,
    policy_value,
    qini_curve,
    split_trial,
)
from treatment.ml.models import ModelConfig, fit_treatment_model
from treatment.ml.trials import load_trial


def test_policy_value_by_hand():
    # Six randomised patients, arms 0/1/2 with probabilities 1/2, 1/3, 1/6; outcome 1 = good.
    arm = np.array([0, 0, 0, 1, 1, 2])
    y = np.array([1, 0, 0, 1, 1, 1])
    p = np.array([1 / 2, 1 / 3, 1 / 6])
    # Always arm 1: matched rows 3, 4 -> (1/(1/3) + 1/(1/3)) / 6 = 6 / 6 = 1.
    assert policy_value(arm, y, 1, p).value == pytest.approx(1.0)
    # Always arm 0: row 0 only -> 2 / 6.
    assert policy_value(arm, y, 0, p).value == pytest.approx(1 / 3)
    # Always arm 2: row 5 -> 6 / 6.
    assert policy_value(arm, y, 2, p).value == pytest.approx(1.0)
    # A personalised policy matching rows 0 (arm 0) and 5 (arm 2) only: (2 + 6) / 6.
    policy = np.array([0, 1, 2, 0, 0, 2])
    pv = policy_value(arm, y, policy, p)
    assert pv.value == pytest.approx(8 / 6)
    terms = np.array([2, 0, 0, 0, 0, 6])
    assert pv.se == pytest.approx(terms.std(ddof=1) / np.sqrt(6))
    # Censoring weights multiply each term.
    w = np.array([2, 1, 1, 1, 1, 0.5])
    assert policy_value(arm, y, policy, p, w).value == pytest.approx((4 + 3) / 6)


def test_ipcw_outcome_reproduces_kaplan_meier_per_arm():
    data = load_trial("gbsg2")
    h = 1500.0
    y, w = ipcw_outcome(data.time, data.event, h, data.arm)
    for a in (0, 1):
        rows = data.arm == a
        x, s = kaplan_meier_estimator(data.event[rows], data.time[rows])
        km = s[np.searchsorted(x, h, side="right") - 1]
        assert (w * y)[rows].mean() == pytest.approx(km, abs=1e-9)
    # Censored before the horizon: unknown status, weight 0.
    assert (w[(~data.event) & (data.time < h)] == 0).all()
    # No censoring at all: weights are 1 and y is the plain indicator.
    y2, w2 = ipcw_outcome(np.array([1.0, 2, 3, 4]), np.ones(4, bool), 2.5)
    assert y2.tolist() == [0, 0, 1, 1] and w2.tolist() == [1, 1, 1, 1]


def test_qini_rewards_good_ranking():
    treated = np.array([1, 0] * 50, dtype=float)
    # The first 20 patients benefit from treatment, the rest not at all.
    benefit = np.r_[np.ones(20), np.zeros(80)]
    y = np.where(treated == 1, benefit, 0.0)
    good = qini_curve(benefit + np.linspace(0, 0.01, 100), treated, y)
    bad = qini_curve(-benefit + np.linspace(0, 0.01, 100), treated, y)
    assert good["qini_coefficient"] > 0 > bad["qini_coefficient"]
    assert good["points"][-1]["fraction"] == 1.0
    assert good["points"][-1]["qini"] == pytest.approx(10.0)  # 10 treated successes overall


def test_split_is_stratified_and_seeded():
    data = load_trial("colon")
    a_train, a_test = split_trial(data, 0.3, seed=3)
    b_train, b_test = split_trial(data, 0.3, seed=3)
    assert a_test.tolist() == b_test.tolist()
    assert not set(a_train) & set(a_test) and len(a_train) + len(a_test) == len(data)
    for a in range(3):
        share = (data.arm[a_test] == a).mean()
        assert share == pytest.approx((data.arm == a).mean(), abs=0.01)


@pytest.mark.parametrize("kind", ["cox", "rsf", "svm"])
def test_gbsg2_held_out_metrics_in_a_sane_band(kind):
    # Published (scikit-survival user guide): RSF C .692, Cox C .688, Cox IBS .189.
    ev, _ = evaluate_trial("gbsg2", ModelConfig(kind=kind, n_bootstrap=0))
    m = ev.metrics
    assert 0.62 <= m["c_index_harrell"] <= 0.76
    assert 0.60 <= m["c_index_uno"] <= 0.78
    assert 0.10 < m["integrated_brier_score"] < 0.25
    assert m["calibration_error_at_horizon"] < 0.2
    assert len(ev.calibration) == 10 and ev.n_test == 206
    policy = ev.policy
    singles = [policy["always No hormonal therapy"]["value"], policy["always Tamoxifen"]["value"]]
    assert policy["random arm"]["value"] == pytest.approx(np.mean(singles))
    assert policy["best single arm"]["value"] in singles
    assert 0 <= policy["model"]["value"] <= 1.2
    json.dumps(ev.to_dict())


def test_band_catches_a_broken_pipeline():
    # Train on outcomes detached from the patients: discrimination must fall to chance.
    data = load_trial("gbsg2")
    train_idx, test_idx = split_trial(data)
    train, test = data.subset(train_idx), data.subset(test_idx)
    perm = np.random.default_rng(0).permutation(len(train))
    train.time, train.event = train.time[perm], train.event[perm]
    model = fit_treatment_model(train, ModelConfig(kind="cox", n_bootstrap=0))
    ev = evaluate_model(model, train, test)
    assert not 0.62 <= ev.metrics["c_index_harrell"] <= 0.76


@pytest.mark.parametrize("trial", ["actg175", "colon"])
def test_other_trials_evaluate_with_heterogeneity_and_qini(trial):
    ev, model = evaluate_trial(trial, ModelConfig(kind="cox", n_bootstrap=0))
    assert ev.metrics["c_index_harrell"] > 0.58
    assert len(ev.qini) == model.n_arms - 1
    het = ev.heterogeneity
    assert het["covariate"] == "age" and sum(b["n"] for b in het["bins"]) == ev.n_test
    assert len(het["points"]["x"]) == ev.n_test
    assert model.metrics["held_out"] == ev.metrics
    json.dumps(ev.to_dict())


def test_binary_outcome_evaluation():
    ev, _ = evaluate_trial(
        "actg175",
        ModelConfig(kind="rf", rf_trees=100, n_bootstrap=0),
        outcome="cd4_kept",
        heterogeneity_covariate="cd40",
    )
    assert 0.58 < ev.metrics["auc"] < 0.85
    assert ev.heterogeneity["covariate"] == "cd40"
    assert ev.policy["always ZDV"]["value"] == pytest.approx(ev.policy["always ZDV"]["value"])
