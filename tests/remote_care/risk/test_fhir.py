"""A patient's deterioration risk scores leave MedAI as FHIR R4: a RiskAssessment per score
with a Provenance naming the model version (a Device, the same identity as imaging's) and
the observation set it read; validated, round-tripped, care-team scoped and audited."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from medai_site.audit.models import AuditEvent
from medai_site.registry.fhir import device_resource
from medai_site.registry.models import ModelVersion
from remote_care.devices.services import device_register, observations_ingest
from remote_care.risk.services import RISK_TASK
from tests.platform.factories import ModelVersionFactory, patient_for
from tests.remote_care.factories import RiskScoreFactory
from tests.remote_care.risk.test_risk import _vitals

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(users):
    version = ModelVersionFactory(
        task=RISK_TASK,
        status=ModelVersion.Status.ACTIVE,
        sha256="ab" * 32,
        metrics={"alert_thresholds": {"elevated": 0.2, "high": 0.3}},
        training_data={"outcome": "in-hospital death"},
    )
    patient = patient_for(users.clinician_a)
    device = device_register(patient=patient, label="kit", registered_by=users.clinician_a).device
    observations_ingest(device=device, items=[_vitals(m) for m in (120, 60)])
    older, latest = patient.observations.order_by("taken_at")
    RiskScoreFactory(observation=older, model_version=version, risk=0.34, hours_observed=2)
    RiskScoreFactory(
        observation=latest,
        model_version=version,
        risk=None,
        hours_observed=2,
        insufficient_reason="heart rate 230 /min is outside the training range",
    )
    return patient, version


def test_scores_export_as_risk_assessments_with_provenance(users, client_for, scored):
    patient, version = scored
    client = client_for(users.clinician_a)
    page = client.get(reverse("remote_care:patient_monitoring", args=[patient.pk]))
    url = reverse("remote_care:risk_fhir", args=[patient.pk])
    assert f'href="{url}"' in page.content.decode()

    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Cache-Control"] == "private, no-store"
    bundle = json.loads(response.content)
    assert json.loads(Bundle.parse_raw(response.content).json()) == bundle
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert sorted(kinds) == ["Device"] + ["Provenance"] * 2 + ["RiskAssessment"] * 2
    scored_risk, refused = [e["resource"] for e in bundle["entry"][:4:2]]
    (prediction,) = scored_risk["prediction"]
    assert prediction["probabilityDecimal"] == pytest.approx(0.34)
    assert prediction["outcome"]["text"] == "in-hospital death"
    assert prediction["qualitativeRisk"]["coding"][0]["code"] == "high"
    assert "prediction" not in refused
    assert "outside the training range" in refused["note"][0]["text"]

    device = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Device")
    assert device["resource"] == device_resource(version)
    provenance = bundle["entry"][1]["resource"]
    assert provenance["target"] == [{"reference": bundle["entry"][0]["fullUrl"]}]
    assert provenance["agent"][0]["who"]["reference"] == device["fullUrl"]
    assert provenance["entity"][0]["role"] == "source"

    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORTED)
    assert (event.actor, event.patient_id) == (users.clinician_a, patient.pk)


def test_another_clinician_gets_404_and_nothing_is_exported(users, client_for, scored):
    patient, _ = scored
    url = reverse("remote_care:risk_fhir", args=[patient.pk])
    assert client_for(users.clinician_b).get(url).status_code == 404
    assert client_for(users.model_admin).get(url).status_code == 403
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).exists()
