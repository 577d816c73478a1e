from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sksurv.metrics import concordance_index_censored

from treatment.ml.models import (
    ModelConfig,
    TreatmentModel,
    bootstrap_indices,
    fit_treatment_model,
)
from treatment.ml.trials import load_trial


def test_bundle_round_trips_through_bytes_with_sha256(gbsg2, gbsg2_cox):
    data = gbsg2_cox.to_bytes()
    assert gbsg2_cox.sha256 == hashlib.sha256(data).hexdigest()
    loaded = TreatmentModel.from_bytes(data, expected_sha256=gbsg2_cox.sha256)
    X = gbsg2.X.to_numpy()[:50]
    np.testing.assert_array_equal(
        loaded.value_by_arm(X, members="all"), gbsg2_cox.value_by_arm(X, members="all")
    )
    assert loaded.feature_names == gbsg2_cox.feature_names
    assert loaded.arm_labels == ("No hormonal therapy", "Tamoxifen")
    assert loaded.trial_key == "gbsg2" and len(loaded.bootstraps) == 30
    assert loaded.design.scaler.mean_.tolist() == gbsg2_cox.design.scaler.mean_.tolist()


def test_bundle_refuses_tampered_or_foreign_bytes(gbsg2_cox):
    data = gbsg2_cox.to_bytes()
    with pytest.raises(ValueError, match="sha256"):
        TreatmentModel.from_bytes(data, expected_sha256="0" * 64)
    import io

    import joblib

    buf = io.BytesIO()
    joblib.dump({"format": "something else"}, buf)
    with pytest.raises(ValueError, match="not a MedAI"):
        TreatmentModel.from_bytes(buf.getvalue())


def test_fast_cox_survival_matches_scikit_survival(gbsg2, gbsg2_cox):
    X, arm = gbsg2.X.to_numpy()[:20], gbsg2.arm[:20]
    times = np.array([30.0, 365.0, 1000.0, 2000.0])
    ours = gbsg2_cox.main.survival(X, arm, times)
    Z = gbsg2_cox.design.transform(X, arm)
    ref = np.array(
        [[f(t) for t in times] for f in gbsg2_cox.main.estimator.predict_survival_function(Z)]
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_design_has_arm_indicator_and_interactions_for_cox_only(gbsg2_cox):
    cols = gbsg2_cox.design.column_names()
    assert "arm=Tamoxifen" in cols and "arm=Tamoxifen:age" in cols
    assert len(cols) == 8 + 1 + 8
    rsf = fit_treatment_model(
        load_trial("gbsg2"), ModelConfig(kind="rsf", rsf_trees=10, n_bootstrap=0)
    )
    assert rsf.design.column_names() == [*gbsg2_cox.feature_names, "arm=Tamoxifen"]


def test_fits_are_deterministic_for_a_seed(gbsg2):
    config = ModelConfig(kind="rsf", rsf_trees=15, rsf_bootstrap_trees=5, n_bootstrap=2, seed=7)
    a = fit_treatment_model(gbsg2, config)
    b = fit_treatment_model(gbsg2, config)
    X = gbsg2.X.to_numpy()[:30]
    np.testing.assert_array_equal(
        a.value_by_arm(X, members="all"), b.value_by_arm(X, members="all")
    )
    c = fit_treatment_model(
        gbsg2, ModelConfig(kind="rsf", rsf_trees=15, rsf_bootstrap_trees=5, n_bootstrap=2, seed=8)
    )
    assert not np.array_equal(a.value_by_arm(X), c.value_by_arm(X))


def test_bootstrap_keeps_arm_sizes():
    arm = np.array([0] * 7 + [1] * 3 + [2] * 5)
    rows = bootstrap_indices(arm, np.random.default_rng(0))
    assert np.bincount(arm[rows]).tolist() == [7, 3, 5]


@pytest.mark.parametrize("kind", ["cox", "rsf", "svm"])
def test_every_survival_model_gives_curves_and_ranks(gbsg2, kind):
    model = fit_treatment_model(gbsg2, ModelConfig(kind=kind, rsf_trees=30, n_bootstrap=0))
    X = gbsg2.X.to_numpy()
    curves = model.survival_by_arm(X[:40], np.linspace(0, 2500, 30))
    assert curves.shape == (40, 2, 30)
    assert ((curves >= 0) & (curves <= 1)).all()
    assert (np.diff(curves, axis=2) <= 1e-12).all()  # survival never rises
    np.testing.assert_allclose(curves[:, :, 0], 1.0)
    # In-sample ranking must beat chance clearly (a sign-flipped risk would give < 0.5).
    c = concordance_index_censored(gbsg2.event, gbsg2.time, model.risk(X, gbsg2.arm))[0]
    assert c > 0.65


def test_horizon_outside_follow_up_is_refused(gbsg2_cox, gbsg2):
    with pytest.raises(ValueError, match="horizon must be between 0 and 2659"):
        gbsg2_cox.value_by_arm(gbsg2.X.to_numpy()[:2], horizon=5000)


@pytest.mark.parametrize("kind", ["svm", "rf"])
def test_actg_cd4_outcome_models(kind):
    data = load_trial("actg175")
    config = ModelConfig(kind=kind, rf_trees=60, n_bootstrap=0)
    binary = fit_treatment_model(data, config, outcome="cd4_kept")
    p = binary.value_by_arm(data.X.to_numpy()[:100])
    assert p.shape == (100, 4) and ((p >= 0) & (p <= 1)).all()
    cont = fit_treatment_model(data, config, outcome="cd4_change")
    change = cont.value_by_arm(data.X.to_numpy()[:100])
    # Predicted CD4 changes are on the cells/mm3 scale, not the standardised one.
    assert np.abs(change).max() > 5 and np.abs(change).max() < 500
    with pytest.raises(ValueError, match="no outcome"):
        fit_treatment_model(data, config, outcome="viral_load")
