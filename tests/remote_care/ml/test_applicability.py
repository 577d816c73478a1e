"""The deterioration model's input contract: minimum data and training ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from remote_care.ml.applicability import (
    FALLBACK_CONTRACT,
    check_inputs,
    check_inputs_batch,
    fit_input_contract,
)
from remote_care.ml.physionet import stay_from_vitals

START = datetime(2026, 1, 1, 8, tzinfo=UTC)


def _readings(hours: list[float], **values: float | None) -> list[dict]:
    base = {
        "heart_rate": 80.0,
        "spo2": 97.0,
        "respiratory_rate": 15.0,
        "temperature": 36.9,
        "systolic_bp": 125.0,
        "diastolic_bp": 80.0,
    }
    return [{"taken_at": START + timedelta(hours=h), **base, **values} for h in hours]


def test_ordinary_home_vitals_over_hours_are_sufficient_and_say_what_they_had() -> None:
    result = check_inputs(stay_from_vitals(_readings([0, 2, 5.5])), None)
    assert result["sufficient"] and result["reason"] == ""
    assert result["hours_covered"] == 5.5 and result["hours_with_data"] == 3
    assert result["channels"] == [
        "heart rate",
        "SpO2",
        "respiratory rate",
        "temperature",
        "systolic BP",
        "diastolic BP",
    ]
    assert result["contract"] == "fallback"


def test_one_snapshot_or_two_vital_signs_is_insufficient_data() -> None:
    single = check_inputs(stay_from_vitals(_readings([0])), FALLBACK_CONTRACT)
    assert not single["sufficient"]
    assert single["reason"] == "readings in 1 hour of the 48-h window; the model needs at least 2"
    sparse = _readings(
        [0, 3], respiratory_rate=None, temperature=None, systolic_bp=None, diastolic_bp=None
    )
    two = check_inputs(stay_from_vitals(sparse), FALLBACK_CONTRACT)
    assert not two["sufficient"] and "2 of 6 vital signs present" in two["reason"]


def test_a_value_outside_the_training_range_is_insufficient_data() -> None:
    readings = _readings([0, 1, 2])
    readings[1]["heart_rate"] = 230.0  # plausible for a human, beyond what the model saw
    result = check_inputs(stay_from_vitals(readings), FALLBACK_CONTRACT)
    assert not result["sufficient"]
    assert result["reason"] == "heart rate 230 /min is outside the training range 41–162 /min"


def test_contract_recorded_at_training_takes_the_training_values() -> None:
    rng = np.random.default_rng(0)
    stays = [
        stay_from_vitals(_readings([0, 1, 2], heart_rate=float(hr)))
        for hr in rng.uniform(60, 100, 200)
    ]
    contract = fit_input_contract(stays, "synthetic")
    lo, hi = contract["ranges"]["HR"]
    assert 59.9 <= lo < 61 and 99 < hi <= 100.1
    assert contract["source"] == "synthetic (n = 200)"
    # A heart rate of 120 is normal for the fallback but outside this model's training.
    result = check_inputs(stay_from_vitals(_readings([0, 1], heart_rate=120.0)), contract)
    assert not result["sufficient"] and "heart rate 120 /min" in result["reason"]
    assert result["contract"] == "recorded with the model"


def test_the_batched_check_says_what_the_check_says_for_every_window(stays_700) -> None:
    # Real ICU stays (some with values outside the ranges, some with too few hours or vital
    # signs once cut short) and home windows, in one batch, under both kinds of contract.
    cut = [
        type(s)(s.record_id, s.static, s.times[:k], s.var[:k], s.values[:k])
        for s, k in zip(stays_700[:200], np.arange(200) % 40, strict=True)
    ]
    home = [
        stay_from_vitals(_readings([0]), age=70, sex="female"),
        stay_from_vitals(_readings([0, 2, 5.5])),
        stay_from_vitals(_readings([0, 1], heart_rate=120.0)),
    ]
    windows = [*stays_700[:300], *cut, *home, stay_from_vitals([])]
    for contract in (None, fit_input_contract(stays_700[:100], "first 100 stays")):
        batched = check_inputs_batch(windows, contract)
        assert batched == [check_inputs(w, contract) for w in windows]
        assert 0 < sum(r["sufficient"] for r in batched) < len(windows)
    assert check_inputs_batch([], None) == []
