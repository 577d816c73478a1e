"""The recurrent model on a small real subset: trains in seconds and beats a constant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch

from remote_care.ml.evaluate import auroc, brier
from remote_care.ml.model import load_artifact, predict, save_artifact
from remote_care.ml.physionet import stay_from_vitals, stratified_split
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


def test_live_vitals_are_scored(trained):
    model, _, _, _ = trained
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    calm = [
        {
            "taken_at": t0 + timedelta(hours=h),
            "heart_rate": 72,
            "respiratory_rate": 14,
            "spo2": 98,
            "temperature": 36.8,
            "systolic_bp": 125,
            "consciousness": "A",
        }
        for h in range(24)
    ]
    stay = stay_from_vitals(calm, age=60, sex="male")
    traj = model.risk_trajectory(stay)
    assert traj.observed[:24] == (True,) * 24 and not any(traj.observed[24:])
    assert all(0 < r < 1 for r in traj.risk)
