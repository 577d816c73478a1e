"""The deterioration model in shadow: the sweep's windows are scored by the shadow GRU after
the scores clinicians see are stored; once per set, never failing the sweep, never shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
from django.urls import reverse
from django.utils import timezone

from medai_site.registry.loader import clear_model_cache
from medai_site.registry.models import ModelVersion, ShadowResult
from medai_site.registry.services import model_version_activate, model_version_register
from medai_site.registry.shadow import model_version_shadow_start, shadow_models_clear
from remote_care.devices.services import device_register, observations_ingest
from remote_care.models import RiskScore
from remote_care.risk.services import RISK_TASK, risk_model_from_bytes, risk_scores_refresh
from tests.platform.factories import UserFactory, patient_for
from tests.support.clients import login

pytestmark = pytest.mark.django_db


def tiny_risk_artifact(seed: int) -> bytes:
    """An untrained but real GRU risk model (the vitals spec): enough to score windows."""
    from remote_care.ml.features import VITALS, Normaliser
    from remote_care.ml.model import RiskGRU, RiskModel, artifact_bytes

    torch.manual_seed(seed)
    n = len(VITALS.channels)
    normaliser = Normaliser(
        (0.0,) * n,
        (1.0,) * n,
        {"Age": 60.0, "Height": 170.0, "Weight": 75.0},
        {"Age": 15.0, "Height": 10.0, "Weight": 15.0},
    )
    net = RiskGRU(n, VITALS.n_static, hidden=8, dropout=0.0)
    return artifact_bytes(
        RiskModel(networks=[net], spec=VITALS, normaliser=normaliser, hidden=8, dropout=0.0)
    )


def _version(users, seed: int, cuts: dict[str, float]) -> ModelVersion:
    return model_version_register(
        task=RISK_TASK,
        artifact=tiny_risk_artifact(seed),
        created_by=users.model_admin,
        metrics={"alert_thresholds": cuts, "auroc": 0.7},
    )


@pytest.fixture
def shadowed(users):
    clear_model_cache()
    shadow_models_clear()
    active = _version(users, 0, {"elevated": 0.0, "high": 1.0})  # every risk is "elevated"
    model_version_activate(version=active, user=users.model_admin, reason="shadow test")
    active.refresh_from_db()
    challenger = _version(users, 1, {"elevated": 0.0, "high": 0.0})  # every risk is "high"
    ModelVersion.objects.filter(pk=challenger.pk).update(
        approved_by=UserFactory(username="second_admin")
    )
    challenger.refresh_from_db()
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="live check")
    yield active, challenger
    clear_model_cache()
    shadow_models_clear()


def _vitals(minutes_ago: float) -> dict:
    return {
        "taken_at": timezone.now() - timedelta(minutes=minutes_ago),
        "heart_rate": 90.0,
        "spo2": 96.0,
        "respiratory_rate": 18.0,
        "temperature": 37.2,
        "systolic_bp": 120.0,
        "diastolic_bp": 78.0,
        "consciousness": "A",
        "on_oxygen": False,
    }


def _monitored(users):
    patient = patient_for(users.clinician_a)
    device = device_register(patient=patient, label="kit", registered_by=users.clinician_a).device
    observations_ingest(device=device, items=[_vitals(m) for m in (240, 180, 120, 60)])
    return patient


def test_sweep_scores_the_same_windows_in_shadow_once(users, shadowed):
    active, challenger = shadowed
    _monitored(users)
    assert risk_scores_refresh() == 4
    scores = {str(s.observation_id): s for s in RiskScore.objects.all()}
    assert {s.model_version_id for s in scores.values()} == {active.pk}
    results = ShadowResult.objects.filter(shadow_version=challenger)
    assert {r.item_id for r in results} == set(scores)
    model = risk_model_from_bytes(challenger.artifact.open("rb").read())
    assert model is not None
    for result in results:
        score = scores[result.item_id]
        assert result.item_type == "remote_care.observation"
        assert result.active_score == score.risk
        if score.risk is None:
            # Too little data for either version: both say so, and that agrees.
            assert result.shadow_label == result.active_label == "insufficient data"
            assert result.agrees
        else:
            # Each version's own operating points: elevated for the active, high for the shadow.
            assert (result.active_label, result.shadow_label) == ("elevated", "high")
            assert 0.0 < result.shadow_score < 1.0 and result.shadow_score != score.risk
            assert not result.agrees
    assert risk_scores_refresh() == 0
    assert results.count() == len(scores)


def test_a_failing_shadow_never_stops_the_sweep(users, shadowed, monkeypatch):
    active, challenger = shadowed

    def broken(*args, **kwargs):
        raise RuntimeError("shadow GRU failed")

    monkeypatch.setattr("remote_care.risk.services._shadow_answers", broken)
    _monitored(users)
    assert risk_scores_refresh() == 4
    assert RiskScore.objects.filter(model_version=active).count() == 4
    assert not ShadowResult.objects.exists()
    assert challenger.shadows.get().failures >= 1


def test_clinicians_see_only_the_active_score(users, shadowed):
    active, challenger = shadowed
    patient = _monitored(users)
    risk_scores_refresh()
    shadow_scores = [
        r.shadow_score for r in ShadowResult.objects.all() if r.shadow_score is not None
    ]
    assert shadow_scores
    client = login(users.clinician_a)
    for url in (
        reverse("remote_care:board_rows"),
        reverse("remote_care:patient_monitoring", args=[patient.pk]),
        reverse("remote_care:risk_fhir", args=[patient.pk]),
        reverse("remote_care:risk_model_facts"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert str(challenger) not in body and f"v{challenger.version}" not in body, url
        for value in shadow_scores:
            # However a page rounds a risk, the shadow's never shows (as a percentage or not).
            assert f"{value:.4f}" not in body and f"{100 * value:.2f}" not in body, url
