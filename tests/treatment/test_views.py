"""The clinician's treatment-options flow and the model admin's training page, over HTTP."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.platform.factories import patient_for
from tests.treatment.factories import TreatmentAssessmentFactory
from tests.treatment.test_services import COVARIATES
from treatment.models import TreatmentAssessment, TreatmentPlan

pytestmark = pytest.mark.django_db


def options_url(patient) -> str:
    return reverse("treatment:patient_options", args=[patient.pk])


def form_data(facts: dict, **changes: object) -> dict:
    return {"trial": "gbsg2", "horizon": "1826.25", **{k: facts[k] for k in COVARIATES}, **changes}


def test_form_is_prefilled_from_the_record_and_the_view_audited(
    users, client_for, active_treatment, gbsg2_facts
):
    patient = patient_for(users.clinician_a, clinical_facts=gbsg2_facts)
    response = client_for(users.clinician_a).get(options_url(patient))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'name="age"[^>]*value="70"', html)
    assert re.search(r'<option value="II" selected>', html)
    assert str(active_treatment) in html
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.PATIENT_VIEWED, patient_id=patient.pk, actor=users.clinician_a
    ).exists()


def test_invalid_inputs_return_400_with_a_message_per_field(
    users, client_for, active_treatment, gbsg2_facts
):
    patient = patient_for(users.clinician_a)
    data = form_data(gbsg2_facts, age="95", tsize="", menostat="")
    response = client_for(users.clinician_a).post(options_url(patient), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Age must be between 21 and 80 years" in html
    assert "Tumour size is required" in html
    assert "Menopausal status is required" in html
    assert not TreatmentAssessment.objects.exists()


def test_assess_then_read_results_then_record_a_plan(
    users, client_for, active_treatment, gbsg2_facts, run_job
):
    client = client_for(users.clinician_a)
    patient = patient_for(users.clinician_a, clinical_facts=gbsg2_facts)
    response = client.post(options_url(patient), form_data(gbsg2_facts))
    assessment = TreatmentAssessment.objects.get()
    detail = reverse("treatment:assessment", args=[patient.pk, assessment.pk])
    assert response.status_code == 302 and response["Location"] == detail

    waiting = client.get(detail).content.decode()
    assert "data-job-progress" in waiting and 'data-on-success="reload"' in waiting

    run_job(assessment.job)
    html = client.get(detail).content.decode()
    assessment.refresh_from_db()
    statement = assessment.result["recommendation"]["statement"]
    assert statement.split(":")[0] in html
    if assessment.result["recommendation"]["includes_no_difference"]:
        assert "No clear difference" in html
    for chart_id in ("survival-curves", "benefit", "contributions"):
        figure = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', html)
        assert figure, chart_id
        assert json.loads(figure.group(1))["data"]
    assert "<script>" not in html  # no inline script: the CSP holds
    assert "Known limits" in html and str(active_treatment) in html
    assert " pp" in html and "95% interval" in html

    response = client.post(
        reverse("treatment:plan_create", args=[patient.pk, assessment.pk]),
        {"arm": "1", "note": "Shared decision."},
    )
    assert response.status_code == 302
    plan = TreatmentPlan.objects.get()
    assert (plan.arm_label, plan.created_by) == ("Tamoxifen", users.clinician_a)
    listing = client.get(options_url(patient)).content.decode()
    assert "Shared decision." in listing and str(active_treatment) in listing
    page = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()
    assert "Treatment plan: Tamoxifen" in page and options_url(patient) in page


def test_another_clinicians_patient_is_not_found(users, client_for, active_treatment, gbsg2_facts):
    patient = patient_for(users.clinician_a)
    assessment = TreatmentAssessmentFactory(patient=patient, created_by=users.clinician_a)
    other = client_for(users.clinician_b)
    assert other.get(options_url(patient)).status_code == 404
    assert other.post(options_url(patient), form_data(gbsg2_facts)).status_code == 404
    args = [patient.pk, assessment.pk]
    assert other.get(reverse("treatment:assessment", args=args)).status_code == 404
    plan_url = reverse("treatment:plan_create", args=args)
    assert other.post(plan_url, {"arm": "0"}).status_code == 404
    # B's own patient does not unlock A's assessment either.
    own = patient_for(users.clinician_b)
    url = reverse("treatment:assessment", args=[own.pk, assessment.pk])
    assert other.get(url).status_code == 404
    assert TreatmentAssessment.objects.count() == 1


def test_page_says_when_no_model_is_in_service(users, client_for):
    patient = patient_for(users.clinician_a)
    response = client_for(users.clinician_a).get(options_url(patient))
    assert "No treatment model is in service yet" in response.content.decode()


def test_model_admin_starts_training(users, client_for):
    url = reverse("treatment:training")
    data = {"trial": "gbsg2", "kind": "cox", "n_bootstrap": "2", "activate": "on"}
    assert client_for(users.clinician_a).post(url, data).status_code == 403
    response = client_for(users.model_admin).post(url, data)
    assert response.status_code == 302
    job = Job.objects.get(kind="treatment.training")
    assert job.params == {
        "trial": "gbsg2",
        "config": {"kind": "cox", "n_bootstrap": 2},
        "activate": True,
    }
    bad = client_for(users.model_admin).post(url, {**data, "kind": "magic"})
    assert bad.status_code == 400
    page = client_for(users.model_admin).get(url).content.decode()
    assert job.title in page


def test_clinician_can_switch_to_another_trial_in_service(
    users, client_for, active_treatment, gbsg2_facts
):
    from medai_site.registry.services import model_version_register
    from tests.support.governance import activate_version
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import load_trial

    model = fit_treatment_model(load_trial("actg175"), ModelConfig(kind="cox", n_bootstrap=2))
    version = model_version_register(
        task="treatment.actg175", artifact=model.to_bytes(), created_by=users.model_admin
    )
    activate_version(version, users.model_admin)
    client = client_for(users.clinician_a)
    patient = patient_for(users.clinician_a, clinical_facts=gbsg2_facts)
    # A GBSG2 record opens on GBSG2; the trial selector offers both.
    html = client.get(options_url(patient)).content.decode()
    assert 'name="tgrade"' in html and 'value="actg175"' in html
    html = client.get(options_url(patient) + "?trial=actg175").content.decode()
    assert 'name="cd40"' in html and 'name="tgrade"' not in html
    response = client.post(options_url(patient), {"trial": "actg175", "age": "40"})
    assert response.status_code == 400
    assert "CD4 count at baseline is required" in response.content.decode()


def test_a_patient_unlike_the_trial_is_flagged_on_the_result_page(
    users, client_for, active_treatment, gbsg2_facts, run_job
):
    from tests.treatment.ml.test_applicability import ATYPICAL

    client = client_for(users.clinician_a)
    facts = {**gbsg2_facts, **ATYPICAL}
    patient = patient_for(users.clinician_a, clinical_facts=facts)
    assert client.post(options_url(patient), form_data(facts)).status_code == 302
    assessment = TreatmentAssessment.objects.get()
    run_job(assessment.job)
    html = client.get(reverse("treatment:assessment", args=[patient.pk, assessment.pk])).content
    html = html.decode()
    assert 'data-applicability="unlike"' in html
    assert "Unlike the patients in this trial." in html
    assessment.refresh_from_db()
    assert assessment.applicability["distance"] > assessment.applicability["threshold"]


def test_a_typical_patient_is_not_flagged(
    users, client_for, active_treatment, gbsg2_facts, run_job
):
    client = client_for(users.clinician_a)
    patient = patient_for(users.clinician_a, clinical_facts=gbsg2_facts)
    client.post(options_url(patient), form_data(gbsg2_facts))
    assessment = TreatmentAssessment.objects.get()
    run_job(assessment.job)
    html = client.get(reverse("treatment:assessment", args=[patient.pk, assessment.pk])).content
    assert 'data-applicability="like"' in html.decode()
    assert "Unlike the patients in this trial" not in html.decode()
