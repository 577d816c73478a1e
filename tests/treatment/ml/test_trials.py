from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from treatment.ml.trials import (
    COLON,
    GBSG2,
    TRIALS,
    PatientValidationError,
    load_raw,
    load_trial,
    validate_patient,
)


@pytest.mark.parametrize(
    ("key", "rows", "arm_counts", "events"),
    [
        ("gbsg2", 686, [440, 246], 299),
        ("actg175", 2139, [532, 522, 524, 561], 521),
        ("colon", 929, [315, 310, 304], 468),
    ],
)
def test_trials_load_with_published_sizes_and_arms(key, rows, arm_counts, events):
    data = load_trial(key)
    defn = TRIALS[key]
    assert len(data) == rows
    assert np.bincount(data.arm).tolist() == arm_counts
    assert int(data.event.sum()) == events
    assert list(data.X.columns) == list(defn.feature_names)
    assert not data.X.isna().any().any()
    assert (data.time > 0).all()
    assert len(defn.arm_labels) == len(arm_counts)


def test_gbsg2_encoding_one_hot_with_reference_level_dropped():
    data = load_trial("gbsg2")
    raw = load_raw("gbsg2")
    assert "tgrade=I" not in data.X.columns  # reference level
    np.testing.assert_array_equal(data.X["tgrade=III"], (raw["tgrade"] == "III").astype(float))
    np.testing.assert_array_equal(data.arm, (raw["horTh"] == "yes").astype(int))
    np.testing.assert_array_equal(data.event, raw["cens"] == 1)


def test_actg175_outcomes_are_derived_from_cd4_columns():
    data = load_trial("actg175")
    raw = load_raw("actg175")
    np.testing.assert_array_equal(data.outcomes["cd4_kept"], (raw.cd420 >= raw.cd40).astype(float))
    np.testing.assert_array_equal(data.outcomes["cd4_change"], raw.cd420 - raw.cd40)
    np.testing.assert_array_equal(data.arm, raw.arms)
    # Post-randomisation measurements must never be covariates.
    assert not {"cd420", "cd496", "cd820", "offtrt", "r"} & set(data.X.columns)


def test_colon_uses_recurrence_rows_and_fills_declared_blanks():
    raw = load_raw("colon")
    assert (raw.etype == 1).all() and raw.id.is_unique
    data = load_trial("colon")
    assert data.raw["nodes"].notna().all() and data.raw["differ"].notna().all()
    assert data.raw["nodes"][raw["nodes"].isna()].eq(raw["nodes"].median()).all()


def test_a_new_trial_is_a_definition_not_code():
    # A trimmed copy of the colon definition loads through the same generic loader.
    small = dataclasses.replace(COLON, key="colon_small", covariates=COLON.covariates[:3])
    data = load_trial(small)
    assert list(data.X.columns) == ["age", "sex", "obstruct"]
    assert len(data) == 929


def test_loader_refuses_unknown_arm_values_and_wrong_sizes():
    with pytest.raises(ValueError, match="unknown values in horTh"):
        load_trial(dataclasses.replace(GBSG2, arm_values=("no", "maybe")))
    with pytest.raises(ValueError, match="expected 10 rows"):
        load_trial(dataclasses.replace(GBSG2, expected_rows=10))
    # Blanks in a covariate not declared imputable are an error, not silently filled.
    nodes = dataclasses.replace(COLON.covariate("nodes"), impute=False)
    covs = tuple(nodes if c.name == "nodes" else c for c in COLON.covariates)
    with pytest.raises(ValueError, match="blanks in nodes"):
        load_trial(dataclasses.replace(COLON, covariates=covs))


GOOD = {
    "age": 55,
    "menostat": "Post",
    "tsize": 25,
    "tgrade": "II",
    "pnodes": 3,
    "progrec": 30,
    "estrec": 40,
}


def test_valid_patient_is_cleaned():
    clean = validate_patient("gbsg2", {**GOOD, "age": "55", "tgrade": "III"})
    assert clean["age"] == 55.0 and clean["tgrade"] == "III"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"age": 90}, "age", "Age must be between 21 and 80 years"),
        ({"age": 20.9}, "age", "Age must be between 21 and 80 years"),
        ({"tsize": "big"}, "tsize", "Tumour size must be a number"),
        ({"tgrade": "IV"}, "tgrade", "Tumour grade must be one of I, II, III"),
        ({"pnodes": None}, "pnodes", "Positive lymph nodes is required"),
        ({"estrec": float("inf")}, "estrec", "Oestrogen receptor must be a finite number"),
        ({"shoe_size": 40}, "shoe_size", "shoe_size is not a covariate of gbsg2"),
    ],
)
def test_invalid_patient_raises_value_error_naming_the_field(change, field, message):
    with pytest.raises(ValueError) as info:
        validate_patient("gbsg2", {**GOOD, **change})
    assert isinstance(info.value, PatientValidationError)
    assert info.value.errors == {field: message}
    assert field in str(info.value)


def test_binary_covariates_must_be_zero_or_one():
    patient = load_trial("actg175").raw.iloc[0].to_dict()
    with pytest.raises(PatientValidationError) as info:
        validate_patient("actg175", {**patient, "gender": 2, "age": 5})
    assert set(info.value.errors) == {"gender", "age"}
    assert info.value.errors["gender"] == "Sex must be 0 (female) or 1 (male)"


def test_definitions_are_json_ready():
    for defn in TRIALS.values():
        text = json.dumps(defn.to_dict())
        assert defn.key in text
