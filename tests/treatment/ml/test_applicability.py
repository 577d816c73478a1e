"""The multivariate 'unlike the patients in this trial' check, on the real GBSG2 trial."""

from __future__ import annotations

import pytest

from treatment.ml.applicability import fit_trial_distance, trial_distance
from treatment.ml.trials import load_trial, to_plain

# Every value inside GBSG2's per-covariate ranges, but a combination no trial patient had:
# a 21-year-old postmenopausal woman, grade I, with a 120 mm tumour and 51 positive nodes.
ATYPICAL = {
    "age": 21,
    "menostat": "Post",
    "tsize": 120,
    "tgrade": "I",
    "pnodes": 51,
    "progrec": 2380,
    "estrec": 0,
}


@pytest.fixture(scope="module")
def gbsg2():
    data = load_trial("gbsg2")
    return data, fit_trial_distance(data.definition, data.X.to_numpy(dtype=float))


def test_threshold_flags_about_one_percent_of_the_trial_itself(gbsg2):
    _, fitted = gbsg2
    assert fitted["percentile"] == 99.0
    assert 0.005 <= fitted["flag_rate_out_of_fold"] <= 0.02
    assert fitted["flag_rate_training"] <= 0.02


def test_typical_patient_is_like_the_trial_and_atypical_one_is_not(gbsg2):
    data, fitted = gbsg2
    typical = to_plain(data.raw.iloc[0].to_dict())
    like = trial_distance("gbsg2", fitted, typical)
    assert like["status"] == "like" and like["distance"] < like["threshold"]
    unlike = trial_distance("gbsg2", fitted, {**typical, **ATYPICAL})
    assert unlike["status"] == "unlike" and unlike["distance"] > unlike["threshold"]
    assert unlike["message"].startswith("Unlike the patients in this trial")


def test_model_without_the_fit_says_unknown(gbsg2):
    data, _ = gbsg2
    result = trial_distance("gbsg2", None, to_plain(data.raw.iloc[0].to_dict()))
    assert result["status"] == "unknown" and "unknown" in result["message"]
