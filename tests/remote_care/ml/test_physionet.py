from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from remote_care.ml.physionet import (
    ACVPU_TO_GCS,
    TIME_SERIES_VARIABLES,
    VITALS_TABLE_COLUMNS,
    VITALS_TO_PHYSIONET,
    load_set_a,
    parse_stay,
    restrict_stay,
    stay_from_table,
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


def test_a_vitals_table_gives_the_same_stay_as_the_readings():
    # The risk sweep reads windows as one float table; the model must see exactly the events
    # stay_from_vitals makes of the same readings: implausible and missing values dropped,
    # ACVPU as GCS, oxygen as MechVent, in the same order, on the same clock.
    rng = np.random.default_rng(3)
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    seconds = np.sort(rng.choice(48 * 3600, size=400, replace=False))
    readings, table = [], []
    for s in seconds:
        row: dict = {"taken_at": t0 + timedelta(seconds=int(s), microseconds=250_000)}
        for name in VITALS_TO_PHYSIONET:
            roll = rng.random()
            # A quarter missing, a few impossible (HR 0, SpO2 140, ...), the rest plausible.
            row[name] = None if roll < 0.25 else float(rng.choice([0.0, 140.0, 900.0]))
            if roll >= 0.3:
                row[name] = float(rng.normal(80, 15))
        row["consciousness"] = str(rng.choice(["", "A", "C", "V", "P", "U"]))
        row["on_oxygen"] = [None, False, True][int(rng.integers(3))]
        readings.append(row)
        table.append(
            [row[name] if row[name] is not None else np.nan for name in VITALS_TO_PHYSIONET]
            + [ACVPU_TO_GCS.get(row["consciousness"], np.nan), 1.0 if row["on_oxygen"] else np.nan]
        )
    minutes = (seconds + 0.25) / 60 + 1_000_000  # any clock: the stay starts at the first
    expected = stay_from_vitals(readings, age=64, sex="male")
    got = stay_from_table(minutes, np.array(table), age=64, sex="male")
    assert len(VITALS_TABLE_COLUMNS) == len(table[0])
    assert 0 < len(got.var) < 400 * 8  # some values dropped, most kept
    np.testing.assert_array_equal(got.var, expected.var)
    np.testing.assert_array_equal(got.values, expected.values)
    np.testing.assert_allclose(got.times, expected.times, rtol=0, atol=1e-4)
    assert got.static["Age"] == 64 and got.static["Gender"] == 1
    empty = stay_from_table(np.zeros(0), np.zeros((0, 8)))
    assert len(empty.times) == 0 and math.isnan(empty.static["Age"])


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
