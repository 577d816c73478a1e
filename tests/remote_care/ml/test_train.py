"""The recurrent model on a small real subset: trains in seconds and beats a constant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch

from remote_care.ml.evaluate import auroc, brier
from remote_care.ml.model import load_artifact, predict, risk_from_vitals, save_artifact
from remote_care.ml.physionet import stratified_split
from remote_care.ml.report import compare_on_test, format_table
from remote_care.ml.train import EpochReport, TrainConfig, train_risk_model


@pytest.fixture(scope="module")
def trained(stays_700):
    y = np.array([s.death for s in stays_700])
    sp = stratified_split(y, seed=7)
    tr = [stays_700[i] for i in sp.train]
    va = [stays_700[i] for i in sp.val]
    te = [stays_700[i] for i in sp.test]
    epochs: list[EpochReport] = []
    cfg = TrainConfig(seeds=(0,), max_epochs=12, patience=4, hidden=32, lr=2e-3)
    model = train_risk_model(tr, va, cfg, on_epoch=epochs.append)
    return model, tr, te, epochs


def test_sequence_model_beats_a_constant_predictor(trained):
    model, tr, te, epochs = trained
    assert epochs and epochs[-1].best_val_auroc == max(e.val_auroc for e in epochs)
    y = np.array([s.death for s in te])
    p = model.predict_proba(te)
    # A constant predictor has AUROC 0.5 and the Brier score of the training prevalence.
    prevalence = np.mean([s.death for s in tr])
    assert auroc(y, p) > 0.7
    assert brier(y, p) < brier(y, np.full(len(y), prevalence))


def test_risk_trajectory_updates_hour_by_hour(trained):
    model, _, te, _ = trained
    traj = model.risk_trajectory(te[0])
    assert traj.hours == tuple(range(1, 49)) and len(traj.risk) == 48
    assert all(0 < r < 1 for r in traj.risk) and len(set(traj.risk)) > 1
    assert traj.final == pytest.approx(float(model.predict_proba([te[0]])[0]))


def test_artifact_round_trip(trained, tmp_path):
    model, _, te, _ = trained
    path = tmp_path / "risk.pt"
    sha = save_artifact(model, path)
    payload = torch.load(path, weights_only=True)  # plain types only: no code runs on load
    assert payload["format"] == "medai.remote_care.deterioration-gru"
    loaded = load_artifact(path)
    assert loaded.sha256 == sha and loaded.spec == model.spec
    np.testing.assert_allclose(predict(path, te[:20]), model.predict_proba(te[:20]), rtol=1e-6)


def _hourly_vitals(t0, hours, **vitals):
    base = dict(
        heart_rate=72,
        respiratory_rate=14,
        spo2=98,
        temperature=36.8,
        systolic_bp=125,
        consciousness="A",
    )
    base.update(vitals)
    return [{"taken_at": t0 + timedelta(hours=h), **base} for h in range(hours)]


def test_live_vitals_are_scored(trained):
    model, _, _, _ = trained
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    traj = risk_from_vitals(model, _hourly_vitals(t0, 24), age=60, sex="male")
    # 24 hourly readings: one risk per hour so far, the last one is the current risk.
    assert traj.hours == tuple(range(1, 25)) and all(traj.observed)
    assert traj.start == t0 and traj.times()[-1] == t0 + timedelta(hours=24)
    assert all(0 < r < 1 for r in traj.risk)
    # A 72-hour history is read through the model's 48-hour window ending at the last reading.
    long = risk_from_vitals(model, _hourly_vitals(t0, 72))
    assert len(long.risk) == 48 and long.start == t0 + timedelta(hours=71 - 48)
    # Physiology matters: a shocked, hypoxic, confused patient scores higher than a calm one.
    sick = risk_from_vitals(
        model,
        _hourly_vitals(
            t0,
            24,
            heart_rate=135,
            respiratory_rate=30,
            spo2=86,
            systolic_bp=80,
            consciousness="V",
            on_oxygen=True,
        ),
        age=60,
        sex="male",
    )
    assert sick.final > traj.final
    with pytest.raises(ValueError):
        risk_from_vitals(model, [])


def test_comparison_scores_everything_on_the_same_patients(trained, stays_700):
    model, _, te, _ = trained
    y = np.array([s.death for s in stays_700])
    sp = stratified_split(y, seed=7)
    comp = compare_on_test(stays_700, sp, {"GRU": (model, False)}, n_boot=50)
    names = [r.name for r in comp.reports]
    assert names[0] == "GRU" and "SAPS-I" in names and "Worst NEWS2 (first 48 h)" in names
    assert {r.n for r in comp.reports} == {len(te)}
    gru = comp.reports[0]
    assert gru.auroc == pytest.approx(auroc(y[sp.test], model.predict_proba(te)))
    assert gru.at_rate["top 20%"].n_alerts == round(0.2 * len(te))
    assert set(comp.notes["auroc_by_hour"]["GRU"]) == {6, 12, 24, 36, 48}
    table = format_table(comp)
    assert "| GRU |" in table and "GBM on summaries (vitals only)" in table


def test_cross_validation_scores_every_stay_once_with_every_model(stays_700):
    from remote_care.ml.report import GBM_CV, GRU_CV, cross_validate, format_cross_validation

    stays = stays_700[:400]
    seen: list[dict] = []
    cfg = TrainConfig(seeds=(0,), max_epochs=2, patience=2, hidden=16)
    cv = cross_validate(stays, cfg, n_folds=2, n_boot=50, on_fold=seen.append)
    assert [r["fold"] for r in seen] == [0, 1]
    assert sum(r["n"] for r in cv.folds) == len(stays)
    assert sum(r["deaths"] for r in cv.folds) == sum(s.death for s in stays)
    # Stratified: the folds' death counts differ by at most one.
    assert abs(cv.folds[0]["deaths"] - cv.folds[1]["deaths"]) <= 1
    assert [r.name for r in cv.reports][:2] == [GRU_CV, GBM_CV]
    assert all(r.n == len(stays) for r in cv.reports)  # every stay scored, by every model
    d, lo, hi = cv.differences[f"{GRU_CV} - {GBM_CV}"]
    assert lo <= d <= hi
    assert "GRU above the GBM in" in format_cross_validation(cv)
