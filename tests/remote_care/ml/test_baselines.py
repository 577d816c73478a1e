from __future__ import annotations

import numpy as np

from remote_care.ml.baselines import (
    fit_summary_gbm,
    gcs_to_acvpu,
    news2_series,
    summary_feature_names,
    summary_features,
    worst_news2,
)
from remote_care.physiology.news2 import Parameter


def _at(stay, minute):
    return next(s for s in news2_series(stay) if s.minute == minute)


def test_news2_hand_checked_132539(by_id):
    # 00:07: GCS 15 (A, 0), HR 73 (0), NISysABP 147 (0), RespRate 19 (0), Temp 35.1 (1),
    # never ventilated (air, 0), no SaO2 charted yet -> partial NEWS2 1 (missing SpO2).
    s = _at(by_id[132539], 7)
    r = s.result
    assert r.total == 1 and r.missing == (Parameter.SPO2,)
    assert r.score_of(Parameter.TEMPERATURE) == 1
    assert s.observation.on_oxygen is False and s.observation.consciousness == "A"


def test_news2_hand_checked_132540(by_id):
    stay = by_id[132540]
    # 01:11: HR 88 (0), SysABP 105 (1), Temp 35.2 (1), MechVent -> oxygen (2); no RespRate,
    # SaO2 or GCS yet -> partial 4.
    r = _at(stay, 71).result
    assert r.total == 4
    assert set(r.missing) == {Parameter.RESPIRATION_RATE, Parameter.SPO2, Parameter.CONSCIOUSNESS}
    assert r.score_of(Parameter.AIR_OR_OXYGEN) == 2
    # 01:26: GCS 3 -> U (3), SysABP 106 (1), Temp 35.1 (1), HR 88 (0), oxygen (2) -> 7.
    r = _at(stay, 86).result
    assert r.total == 7 and r.score_of(Parameter.CONSCIOUSNESS) == 3
    # 01:31: SysABP 75 (3) and Temp 34.8 (3) carried with GCS 3 (3), oxygen (2), HR 88 (0) -> 11.
    r = _at(stay, 91).result
    assert r.total == 11
    assert r.score_of(Parameter.SYSTOLIC_BP) == 3 and r.score_of(Parameter.TEMPERATURE) == 3
    # 03:12: first SaO2 (99, scale 1 -> 0) makes SpO2 scored.
    r = _at(stay, 192).result
    assert r.score_of(Parameter.SPO2) == 0
    assert worst_news2(stay) >= 11


def test_gcs_mapping():
    assert [gcs_to_acvpu(g) for g in (15, 14, 13, 9, 8, 4, 3)] == list("ACVVPPU")


def test_summary_features_and_gbm_on_all_missing_column(stays_700):
    x = summary_features(stays_700[:50])
    names = summary_feature_names()
    assert x.shape == (50, len(names))
    # ICUType is absent from every file of this copy of set A: an all-missing column.
    assert np.isnan(x[:, names.index("ICUType")]).all()
    hr_min, hr_max = names.index("HR_min"), names.index("HR_max")
    assert np.nanmin(x[:, hr_max] - x[:, hr_min]) >= 0
    y = np.array([s.death for s in stays_700])
    xa = summary_features(stays_700)
    # Fits despite the all-missing column (HistGradientBoosting would raise on it).
    m = fit_summary_gbm(xa[:500], y[:500], xa[500:600], y[500:600])
    p = m.predict_proba(xa[600:])
    assert p.shape == (100,) and ((p > 0) & (p < 1)).all()
