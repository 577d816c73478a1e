from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from remote_care.ml.physionet import (
    TIME_SERIES_VARIABLES,
    load_set_a,
    parse_stay,
    restrict_stay,
    stay_from_vitals,
    stratified_split,
)


def test_real_record_parsed(by_id):
    # set-a/132539.txt, read by hand: Age 54, Gender 0, Height and Weight -1; first vitals at
    # 00:07 (GCS 15, HR 73, NISysABP 147, RespRate 19, Temp 35.1). Outcomes: SAPS-I 6, survived.
    s = by_id[132539]
    assert s.static["Age"] == 54 and s.static["Gender"] == 0
    assert math.isnan(s.static["Height"]) and math.isnan(s.static["Weight"])
    t, hr = s.series("HR")
    assert t[0] == 7 and hr[0] == 73
    t, temp = s.series("Temp")
    assert t[0] == 7 and temp[0] == np.float32(35.1)
    assert s.death == 0 and s.saps1 == 6
    assert np.all(np.diff(s.times) >= 0)
    # 132540: ventilated from 01:11; Outcomes-a.txt: SAPS-I 16, survived.
    s2 = by_id[132540]
    assert s2.series("MechVent")[0][0] == 71
    assert s2.static["Height"] == np.float32(175.3) and s2.saps1 == 16 and s2.death == 0


def test_outcome_rate_and_missing_values_dropped(stays_700):
    deaths = sum(s.death for s in stays_700)
    assert len(stays_700) == 700 and 70 < deaths < 140
    for s in stays_700:
        assert (s.values >= 0).all()  # -1 "not measured" never becomes a value


def test_implausible_values_dropped():
    text = "Time,Parameter,Value\n00:00,RecordID,1\n00:00,Age,70\n00:05,Temp,-17.8\n00:05,HR,0\n00:06,pH,7.35\n00:07,pH,735\n"
    s = parse_stay(text)
    assert [TIME_SERIES_VARIABLES[v] for v in s.var] == ["pH"]
    assert s.values[0] == np.float32(7.35)


def test_cache_round_trip(set_a_dir, tmp_path):
    kw = dict(cache_dir=tmp_path)
    first = load_set_a(set_a_dir / "set-a.tar.gz", set_a_dir / "Outcomes-a.txt", limit=20, **kw)
    assert list(tmp_path.glob("*.npz"))
    again = load_set_a(set_a_dir / "set-a.tar.gz", set_a_dir / "Outcomes-a.txt", limit=20, **kw)
    for a, b in zip(first, again):
        assert a.record_id == b.record_id and a.death == b.death and a.saps1 == b.saps1
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.var, b.var)


def test_medai_vitals_become_physionet_events():
    t0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    readings = [
        {"taken_at": t0, "heart_rate": 88, "spo2": 95, "consciousness": "V", "on_oxygen": True},
        {"taken_at": t0 + timedelta(minutes=90), "systolic_bp": 101, "on_oxygen": False},
        {"taken_at": t0 - timedelta(hours=1), "heart_rate": 70},  # before start: ignored
    ]
    s = stay_from_vitals(readings, start=t0, age=71, sex="female")
    names = [TIME_SERIES_VARIABLES[v] for v in s.var]
    assert sorted(names[:4]) == ["GCS", "HR", "MechVent", "SaO2"]
    assert names[4:] == ["NISysABP"] and s.times[4] == 90
    assert s.series("GCS")[1][0] == 12 and s.static["Gender"] == 0 and s.static["Age"] == 71
    assert s.death is None


def test_restrict_and_split(stays_700):
    s = restrict_stay(stays_700[1], {"HR"}, {"Age"})
    assert {TIME_SERIES_VARIABLES[v] for v in s.var} == {"HR"}
    assert math.isnan(s.static["Gender"]) and not math.isnan(s.static["Age"])
    y = np.array([x.death for x in stays_700])
    sp = stratified_split(y, seed=3)
    assert len(sp.train) + len(sp.val) + len(sp.test) == 700
    assert not set(sp.train) & set(sp.test) and not set(sp.val) & set(sp.test)
    for part in (sp.train, sp.val, sp.test):
        assert abs(y[part].mean() - y.mean()) < 0.02
    np.testing.assert_array_equal(sp.test, stratified_split(y, seed=3).test)
