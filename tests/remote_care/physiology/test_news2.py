"""NEWS2 scoring against the RCP 2017 chart, boundary by boundary (hand-checked expectations)."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import numpy as np
import pytest

from remote_care.physiology.news2 import (
    ACVPU,
    BAND_TABLES,
    RISK_RESPONSE,
    ClinicalRisk,
    Observation,
    Parameter,
    risk_for,
    score_news2,
)

# A set that scores 0 everywhere: each test changes one parameter.
NORMAL = {
    "respiration_rate": 16,
    "spo2": 97,
    "on_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "A",
    "temperature": 37.0,
}


def one(param: Parameter, **change) -> int | None:
    return score_news2(Observation(**{**NORMAL, **change})).score_of(param)


# Every boundary of Chart 1: the last value of one band and the first of the next.
RR = [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)]
SPO2_SCALE_1 = [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SBP = [(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)]
PULSE = [
    (20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
    (131, 3), (200, 3),
]  # fmt: skip
TEMPERATURE = [
    (30.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
    (39.1, 2), (42.0, 2),
]  # fmt: skip
# Values between the chart's 0.1 °C steps are charted rounded half-up (module docstring).
TEMPERATURE_BETWEEN_STEPS = [
    (35.04, 3), (35.05, 1), (35.049999, 3), (36.04, 1), (36.05, 0), (38.04, 0), (38.05, 1),
    (39.04, 1), (39.05, 2),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), RR)
def test_respiration_rate_bands(value, expected):
    assert one(Parameter.RESPIRATION_RATE, respiration_rate=value) == expected


@pytest.mark.parametrize(("value", "expected"), SPO2_SCALE_1)
@pytest.mark.parametrize("on_oxygen", [False, True])
def test_spo2_scale_1_bands_ignore_oxygen(value, expected, on_oxygen):
    assert one(Parameter.SPO2, spo2=value, on_oxygen=on_oxygen) == expected


@pytest.mark.parametrize(
    ("value", "on_air", "on_oxygen"),
    [
        (70, 3, 3), (83, 3, 3), (84, 2, 2), (85, 2, 2), (86, 1, 1), (87, 1, 1), (88, 0, 0),
        (92, 0, 0), (93, 0, 1), (94, 0, 1), (95, 0, 2), (96, 0, 2), (97, 0, 3), (100, 0, 3),
    ],
)  # fmt: skip
def test_spo2_scale_2_bands_on_air_and_on_oxygen(value, on_air, on_oxygen):
    assert one(Parameter.SPO2, spo2=value, spo2_scale=2, on_oxygen=False) == on_air
    assert one(Parameter.SPO2, spo2=value, spo2_scale=2, on_oxygen=True) == on_oxygen


@pytest.mark.parametrize(("value", "expected"), SBP)
def test_systolic_bp_bands(value, expected):
    assert one(Parameter.SYSTOLIC_BP, systolic_bp=value) == expected


@pytest.mark.parametrize(("value", "expected"), PULSE)
def test_pulse_bands(value, expected):
    assert one(Parameter.PULSE, pulse=value) == expected


@pytest.mark.parametrize(("value", "expected"), TEMPERATURE + TEMPERATURE_BETWEEN_STEPS)
def test_temperature_bands(value, expected):
    assert one(Parameter.TEMPERATURE, temperature=value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(8.4, 3), (8.5, 1), (20.4, 0), (20.5, 2), (90.5, 2), (219.5, 3)]
)
def test_integer_parameters_round_half_up_to_the_chart(value, expected):
    param = Parameter.RESPIRATION_RATE if value < 30 else Parameter.SYSTOLIC_BP
    assert one(param, **{param.value: value}) == expected


def test_numpy_scalars_are_numbers():
    assert one(Parameter.PULSE, pulse=np.int64(131)) == 3
    assert one(Parameter.TEMPERATURE, temperature=np.float32(35.0)) == 3


def test_temperature_accepts_decimal_and_reports_the_charted_value():
    result = score_news2(Observation(**{**NORMAL, "temperature": Decimal("35.05")}))
    sub = next(s for s in result.sub_scores if s.parameter is Parameter.TEMPERATURE)
    assert (sub.score, sub.charted) == (1, "35.1")


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_supplemental_oxygen_scores_two(on_oxygen, expected):
    assert one(Parameter.AIR_OR_OXYGEN, on_oxygen=on_oxygen) == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3), ("c", 3), (ACVPU.ALERT, 0),
     (ACVPU.NEW_CONFUSION, 3)],
)  # fmt: skip
def test_acvpu(level, expected):
    assert one(Parameter.CONSCIOUSNESS, consciousness=level) == expected


def test_unknown_consciousness_level_is_rejected():
    with pytest.raises(ValueError):
        score_news2(Observation(**{**NORMAL, "consciousness": "X"}))


def test_chart_tables_tile_without_gaps_and_match_the_published_extremes():
    for table in BAND_TABLES.values():
        assert table[0].lo is None and table[-1].hi is None
    assert [b.score for b in BAND_TABLES["respiration_rate"]] == [3, 1, 0, 2, 3]
    assert [b.score for b in BAND_TABLES["temperature"]] == [3, 1, 0, 1, 2]


def test_hand_checked_complete_set():
    # RR 22 -> 2, SpO2 93 (scale 1) -> 2, oxygen -> 2, SBP 105 -> 1, pulse 115 -> 2,
    # Alert -> 0, temperature 38.5 -> 1: total 10, no single 3, high risk.
    result = score_news2(
        Observation(
            respiration_rate=22, spo2=93, on_oxygen=True, systolic_bp=105, pulse=115,
            consciousness="A", temperature=38.5,
        )
    )  # fmt: skip
    assert [s.score for s in result.sub_scores] == [2, 2, 2, 1, 2, 0, 1]
    assert result.total == 10
    assert not result.any_single_three
    assert result.risk is ClinicalRisk.HIGH
    assert not result.is_partial
    assert result.label == "NEWS2 10"
    assert result.response == RISK_RESPONSE[ClinicalRisk.HIGH]


def test_all_normal_scores_zero_and_low_risk():
    result = score_news2(Observation(**NORMAL))
    assert (result.total, result.risk, result.any_single_three) == (0, ClinicalRisk.LOW, False)
    assert "12-hourly" in result.response


@pytest.mark.parametrize(
    ("change", "total", "single_three", "risk"),
    [
        ({"pulse": 95}, 1, False, ClinicalRisk.LOW),
        ({"pulse": 115, "respiration_rate": 22}, 4, False, ClinicalRisk.LOW),
        ({"consciousness": "C"}, 3, True, ClinicalRisk.LOW_MEDIUM),  # red score
        ({"systolic_bp": 85, "pulse": 95}, 4, True, ClinicalRisk.LOW_MEDIUM),
        ({"pulse": 115, "respiration_rate": 22, "temperature": 38.5}, 5, False, ClinicalRisk.MEDIUM),
        ({"systolic_bp": 85, "pulse": 115}, 5, True, ClinicalRisk.MEDIUM),  # 5 outranks red
        ({"pulse": 115, "respiration_rate": 22, "on_oxygen": True}, 6, False, ClinicalRisk.MEDIUM),
        ({"pulse": 115, "respiration_rate": 22, "on_oxygen": True, "temperature": 38.5}, 7, False,
         ClinicalRisk.HIGH),
        ({"respiration_rate": 30, "spo2": 88, "systolic_bp": 80}, 9, True, ClinicalRisk.HIGH),
    ],
)  # fmt: skip
def test_total_and_clinical_risk_bands(change, total, single_three, risk):
    result = score_news2(Observation(**{**NORMAL, **change}))
    assert (result.total, result.any_single_three, result.risk) == (total, single_three, risk)
    assert result.response == RISK_RESPONSE[risk]


@pytest.mark.parametrize(
    ("total", "three", "risk"),
    [(0, False, "low"), (4, False, "low"), (3, True, "low-medium"), (4, True, "low-medium"),
     (5, False, "medium"), (6, True, "medium"), (7, False, "high"), (20, True, "high")],
)  # fmt: skip
def test_risk_for_chart_2(total, three, risk):
    assert risk_for(total, three).value == risk


def test_partial_score_reports_missing_parameters_and_is_labelled():
    obs = Observation(respiration_rate=22, spo2=97, pulse=115, consciousness="A")
    result = score_news2(obs)
    assert result.is_partial
    assert result.missing == (
        Parameter.AIR_OR_OXYGEN,
        Parameter.SYSTOLIC_BP,
        Parameter.TEMPERATURE,
    )
    assert result.total == 4
    assert result.label.startswith("partial NEWS2 >=4")
    assert result.score_of(Parameter.TEMPERATURE) is None
    data = result.to_dict()
    assert data["is_partial"] is True
    assert data["missing"] == ["air_or_oxygen", "systolic_bp", "temperature"]
    json.dumps(data)


def test_empty_observation_is_a_partial_zero():
    result = score_news2(Observation())
    assert result.total == 0 and len(result.missing) == len(Parameter)


def test_scale_2_needs_oxygen_status_only_above_92():
    low = score_news2(Observation(spo2=90, spo2_scale=2))
    assert low.score_of(Parameter.SPO2) == 0
    assert Parameter.SPO2 not in low.missing
    high = score_news2(Observation(spo2=96, spo2_scale=2))
    assert high.score_of(Parameter.SPO2) is None
    assert {Parameter.SPO2, Parameter.AIR_OR_OXYGEN} <= set(high.missing)


def test_scale_2_patient_on_oxygen_scores_oxygen_and_high_saturation():
    # Hypercapnic patient at 97 % on oxygen: SpO2 3 plus oxygen 2.
    result = score_news2(Observation(**{**NORMAL, "spo2_scale": 2, "on_oxygen": True}))
    assert result.total == 5 and result.any_single_three
    assert result.risk is ClinicalRisk.MEDIUM


@pytest.mark.parametrize(
    "change",
    [{"pulse": math.nan}, {"pulse": math.inf}, {"spo2": 101}, {"respiration_rate": -1},
     {"temperature": 50.0}, {"systolic_bp": 500}],
)  # fmt: skip
def test_implausible_values_are_rejected(change):
    with pytest.raises(ValueError):
        score_news2(Observation(**{**NORMAL, **change}))


@pytest.mark.parametrize("change", [{"pulse": "70"}, {"pulse": True}, {"on_oxygen": "yes"}])
def test_malformed_values_are_rejected(change):
    with pytest.raises(TypeError):
        score_news2(Observation(**{**NORMAL, **change}))


def test_invalid_scale_is_rejected():
    with pytest.raises(ValueError):
        score_news2(Observation(**{**NORMAL, "spo2_scale": 3}))


def test_to_dict_is_json_ready():
    obs = Observation(**{**NORMAL, "consciousness": ACVPU.VOICE})
    assert obs.to_dict()["consciousness"] == "V"
    data = score_news2(obs).to_dict()
    json.dumps(data)
    assert data["sub_scores"]["consciousness"]["score"] == 3
    assert data["risk"] == "low-medium"
