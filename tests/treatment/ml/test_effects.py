from __future__ import annotations

import json

import numpy as np
import pytest

from treatment.ml.effects import batch_effects, effects_from_encoded, patient_effect
from treatment.ml.models import ModelConfig, TreatmentModel, fit_treatment_model
from treatment.ml.trials import PatientValidationError, load_trial


def test_same_bundle_scores_a_patient_identically(gbsg2_cox, gbsg2_patient):
    first = patient_effect(gbsg2_cox, gbsg2_patient).to_dict()
    second = patient_effect(gbsg2_cox, gbsg2_patient).to_dict()
    assert first == second
    json.dumps(first)  # JSON-ready


def test_saved_and_loaded_bundle_gives_identical_effects(gbsg2_cox, gbsg2_patient):
    data = gbsg2_cox.to_bytes()
    loaded = TreatmentModel.from_bytes(data, gbsg2_cox.sha256)
    a = patient_effect(gbsg2_cox, gbsg2_patient).to_dict()
    b = patient_effect(loaded, gbsg2_patient).to_dict()
    assert a == b
    assert b["model_sha256"] == gbsg2_cox.sha256


def test_effect_has_every_arm_curve_and_difference(gbsg2_cox, gbsg2_patient):
    eff = patient_effect(gbsg2_cox, gbsg2_patient, horizon=3 * 365.25)
    assert [a.label for a in eff.arms] == ["No hormonal therapy", "Tamoxifen"]
    for arm in eff.arms:
        assert arm.event_probability == pytest.approx(1 - arm.value)
        assert len(arm.curve) == len(eff.curve_times) and arm.curve[0] == 1.0
    (diff,) = eff.differences
    assert diff.difference == pytest.approx(eff.arms[1].value - eff.arms[0].value)
    rec = eff.recommendation
    assert rec.arm == int(np.argmax([a.value for a in eff.arms]))
    assert rec.benefit >= 0
    assert eff.horizon == pytest.approx(3 * 365.25) and eff.n_bootstrap == 30


def test_intervals_contain_point_estimates_for_every_trial_patient(gbsg2, gbsg2_cox):
    eff = effects_from_encoded(gbsg2_cox, gbsg2.X.to_numpy())
    assert np.isfinite(eff.low[:, 1]).all()
    assert (eff.low[:, 1] <= eff.difference[:, 1]).all()
    assert (eff.difference[:, 1] <= eff.high[:, 1]).all()
    assert (eff.benefit_low <= eff.benefit).all() and (eff.benefit <= eff.benefit_high).all()
    assert (eff.high[:, 1] - eff.low[:, 1] > 0).all()


def test_shuffled_treatment_labels_give_intervals_that_include_zero(gbsg2, gbsg2_cox, shuffled_cox):
    X = gbsg2.X.to_numpy()
    shuffled = effects_from_encoded(shuffled_cox, X).includes_no_difference.mean()
    real = effects_from_encoded(gbsg2_cox, X).includes_no_difference.mean()
    # No true effect: a 95% interval should cover zero for nearly everyone ...
    assert shuffled >= 0.85
    # ... while with the real labels it does not: the intervals are not vacuously wide.
    assert real < 0.85


def test_statement_says_so_when_interval_includes_no_difference(gbsg2, shuffled_cox):
    eff = effects_from_encoded(shuffled_cox, gbsg2.X.to_numpy())
    i = int(np.flatnonzero(eff.includes_no_difference)[0])
    effect = patient_effect(shuffled_cox, gbsg2.raw.iloc[i].to_dict())
    rec = effect.recommendation
    assert rec.includes_no_difference
    assert rec.statement.startswith("The interval includes no difference: the data do not show")
    assert rec.low <= 0 <= rec.high


def test_statement_for_a_clear_benefit(gbsg2, gbsg2_cox):
    eff = effects_from_encoded(gbsg2_cox, gbsg2.X.to_numpy())
    i = int(np.flatnonzero(~eff.includes_no_difference & (eff.recommended == 1))[0])
    rec = patient_effect(gbsg2_cox, gbsg2.raw.iloc[i].to_dict()).recommendation
    assert rec.label == "Tamoxifen" and rec.low > 0
    assert rec.statement.startswith("Tamoxifen is predicted to help this patient")
    assert "95% interval" in rec.statement


def test_invalid_patient_raises_value_error_naming_the_field(gbsg2_cox, gbsg2_patient):
    with pytest.raises(ValueError) as info:
        patient_effect(gbsg2_cox, {**gbsg2_patient, "age": 95})
    assert info.value.errors == {"age": "Age must be between 21 and 80 years"}
    bad = [gbsg2_patient, {**gbsg2_patient, "tgrade": "V"}]
    with pytest.raises(PatientValidationError) as info:
        batch_effects(gbsg2_cox, bad)
    assert list(info.value.errors) == ["1.tgrade"]


def test_batch_matches_single_patient_scoring(gbsg2, gbsg2_cox):
    # Its speed is measured by bench/treatment.py, not asserted here.
    patients = gbsg2.raw.sample(1000, replace=True, random_state=0)
    batch = batch_effects(gbsg2_cox, patients)
    frame = batch.to_frame()
    assert len(frame) == 1000
    json.dumps(batch.to_dict())
    for i in (0, 17, 999):
        single = patient_effect(gbsg2_cox, patients.iloc[i].to_dict())
        assert single.arms[1].value == pytest.approx(batch.value[i, 1], abs=1e-12)
        assert single.recommendation.low == pytest.approx(batch.benefit_low[i], abs=1e-12)


def test_multi_arm_trial_compares_every_arm_with_the_reference():
    data = load_trial("actg175")
    model = fit_treatment_model(data, ModelConfig(kind="cox", n_bootstrap=10))
    eff = patient_effect(model, data.raw.iloc[5].to_dict(), horizon=800)
    assert [d.label for d in eff.differences] == ["ZDV + ddI", "ZDV + ddC", "ddI"]
    assert all(d.versus_label == "ZDV" for d in eff.differences)
    values = [a.value for a in eff.arms]
    rec = eff.recommendation
    assert rec.arm == int(np.argmax(values))
    expected_comparator = 0 if rec.arm != 0 else int(np.argsort(values)[-2])
    assert rec.comparator == expected_comparator
    assert rec.benefit == pytest.approx(values[rec.arm] - values[rec.comparator])


def test_shuffled_labels_forest_intervals_include_zero(gbsg2):
    shuffled = load_trial("gbsg2")
    shuffled.arm = np.random.default_rng(54321).permutation(shuffled.arm)
    config = ModelConfig(kind="rsf", rsf_trees=50, rsf_bootstrap_trees=25, n_bootstrap=10)
    model = fit_treatment_model(shuffled, config)
    assert effects_from_encoded(model, gbsg2.X.to_numpy()).includes_no_difference.mean() >= 0.85
