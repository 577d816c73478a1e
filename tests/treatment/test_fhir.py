"""A patient's treatment assessments leave MedAI as FHIR R4: a RiskAssessment per finished
assessment with a Provenance naming the model version (a Device) and the clinician who
recorded a plan from it; validated, round-tripped, care-team scoped and audited."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from medai_site.audit.models import AuditEvent
from medai_site.registry.fhir import model_device_uid
from tests.platform.factories import patient_for
from tests.treatment.factories import TreatmentAssessmentFactory
from tests.treatment.test_views import form_data, options_url
from treatment.models import TreatmentAssessment

pytestmark = pytest.mark.django_db


def by_type(bundle: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        out.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return out


def test_assessment_with_a_plan_exports_risk_and_provenance_and_is_audited(
    users, client_for, active_treatment, gbsg2_facts, run_job
):
    client = client_for(users.clinician_a)
    patient = patient_for(users.clinician_a, clinical_facts=gbsg2_facts)
    client.post(options_url(patient), form_data(gbsg2_facts))
    assessment = TreatmentAssessment.objects.get()
    run_job(assessment.job)
    client.post(
        reverse("treatment:plan_create", args=[patient.pk, assessment.pk]),
        {"arm": "1", "note": "Shared decision."},
    )
    # A pending assessment has nothing to say yet and is left out.
    TreatmentAssessmentFactory(patient=patient, created_by=users.clinician_a)
    assessment.refresh_from_db()

    url = reverse("treatment:patient_fhir", args=[patient.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Cache-Control"] == "private, no-store"
    assert "attachment" in response["Content-Disposition"]
    bundle = json.loads(response.content)
    assert json.loads(Bundle.parse_raw(response.content).json()) == bundle
    found = by_type(bundle)
    assert sorted(found) == ["Device", "Provenance", "RiskAssessment"]
    (risk,) = found["RiskAssessment"]
    assert risk["subject"]["reference"] == f"Patient/{patient.pk}"
    arms = assessment.result["arms"]
    assert [p["outcome"]["text"].split(" under ")[1] for p in risk["prediction"]] == [
        a["label"] for a in arms
    ]
    for prediction, arm in zip(risk["prediction"], arms, strict=True):
        assert prediction["probabilityDecimal"] == pytest.approx(arm["event_probability"])
        assert prediction["whenRange"]["high"]["value"] == pytest.approx(assessment.horizon)
    assert risk["mitigation"] == assessment.result["recommendation"]["statement"]

    (device,) = found["Device"]
    assert device["version"][0]["value"] == str(active_treatment.version)
    assert device["identifier"][0]["value"] == f"urn:oid:{model_device_uid(active_treatment)}"
    (provenance,) = found["Provenance"]
    urls = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    assert provenance["target"] == [{"reference": urls[risk["id"]]}]
    agents = {a["type"]["coding"][0]["code"]: a["who"] for a in provenance["agent"]}
    assert agents["author"]["reference"] == urls[device["id"]]
    assert risk["performer"]["reference"] == urls[device["id"]]
    assert agents["verifier"]["identifier"]["value"] == str(users.clinician_a.pk)
    assert "dr" not in json.dumps(agents["verifier"]).lower()  # no clinician name leaves

    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORTED)
    assert (event.actor, event.patient_id) == (users.clinician_a, patient.pk)
    assert event.detail["resources"] == 3


def test_another_clinician_gets_404_and_nothing_is_exported(users, client_for):
    patient = patient_for(users.clinician_a)
    TreatmentAssessmentFactory(patient=patient, created_by=users.clinician_a)
    url = reverse("treatment:patient_fhir", args=[patient.pk])
    assert client_for(users.clinician_b).get(url).status_code == 404
    assert client_for(users.researcher).get(url).status_code == 403
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).exists()


def test_export_link_sits_beside_the_assessments(users, client_for):
    patient = patient_for(users.clinician_a)
    TreatmentAssessmentFactory(patient=patient, created_by=users.clinician_a)
    html = client_for(users.clinician_a).get(options_url(patient)).content.decode()
    assert f'href="{reverse("treatment:patient_fhir", args=[patient.pk])}"' in html
