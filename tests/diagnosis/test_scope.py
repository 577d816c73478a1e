"""Applicability in the product flow: the inference job gates every scan on its stored header
against the version's input contract, then the learned out-of-distribution score; an answer
outside the model's scope keeps its reason and no probability until a clinician asks for a
score anyway, which is recorded and audited."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

import diagnosis.ml.predict as predict_module
from diagnosis.applicability import NO_DETECTOR
from diagnosis.models import Prediction, Review
from diagnosis.services import (
    OverrideRefused,
    dataset_from_reviews,
    prediction_override,
    review_record,
    scan_upload,
)
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.diagnosis.files import chest_cr_dicom, chest_png, ct_head_dicom, pydicom_bytes, upload
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db

CT_HEAD_REASON = (
    "not scored: this model reads chest radiographs (CR/DX, chest); this is a CT of the head"
)


@pytest.fixture
def frames_scored(monkeypatch):
    """How many images each call of the model received (the gate must keep refused scans
    from it; an override must not run it twice)."""
    calls: list[int] = []
    real = predict_module.predict

    def counting(bundle, images, **kwargs):
        calls.append(len(images))
        return real(bundle, images, **kwargs)

    monkeypatch.setattr(predict_module, "predict", counting)
    return calls


def upload_and_run(users, files, run_job, patient=None):
    patient = patient or patient_for(users.clinician_a)
    outcome = scan_upload(patient=patient, files=files, uploaded_by=users.clinician_a, task=TASK)
    job = run_job(outcome.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    return patient, job, {p.scan.original_name: p for p in Prediction.objects.all()}


def heatmap_keys(prediction: Prediction) -> list[str]:
    with prediction.heatmaps.open("rb") as handle, np.load(handle) as maps:
        return list(maps.files)


def test_gate_refuses_a_head_ct_before_the_model_sees_it(
    users, chest_model, frames_scored, run_job
):
    files = [
        upload("IM0001", ct_head_dicom()),
        upload("chest-cr.dcm", chest_cr_dicom()),
        upload("lateral.dcm", chest_cr_dicom(view="LL")),
        upload("chest.png", chest_png()),
    ]
    patient, job, by_name = upload_and_run(users, files, run_job)
    ct = by_name["IM0001"]
    assert ct.scope == Prediction.Scope.OUT_OF_SCOPE and ct.scope_check == "gate"
    assert ct.scope_reason == CT_HEAD_REASON
    assert not ct.scored and ct.probabilities == [] and ct.predicted_class == ""
    assert ct.risk is None and ct.confidence is None and ct.ood_score is None
    assert heatmap_keys(ct) == []
    lateral = by_name["lateral.dcm"]
    assert lateral.scope_check == "gate" and "view LL" in lateral.scope_reason
    # Only the chest CR and the PNG (no header: the learned score decides) reached the model.
    assert frames_scored == [2]
    for name in ("chest-cr.dcm", "chest.png"):
        scored = by_name[name]
        assert scored.scope == Prediction.Scope.IN_SCOPE and scored.scored
        assert scored.ood_score <= scored.ood_threshold
        assert set(scored.probabilities) == {"normal", "pneumonia"} and heatmap_keys(scored)
    summary = job.result["summary"]
    assert "2 scored" in summary and "2 outside the model's scope" in summary
    assert f"scan #{ct.scan_id}: a CT of the head" in summary
    # Staff read job results: no patient identifier and no uploaded file name.
    for identifier in (patient.mrn, patient.family_name, "IM0001", "chest-cr", "lateral"):
        assert identifier not in summary
    assert sorted(job.result["out_of_scope"]) == sorted([ct.pk, lateral.pk])


def test_learned_score_refuses_an_mr_with_score_threshold_and_reason(users, active_model, run_job):
    # No contract on this version: the gate lets the MR through, the learned score does not.
    _, job, by_name = upload_and_run(
        users,
        [upload("mr.dcm", pydicom_bytes("emri_small.dcm")), upload("c.png", chest_png())],
        run_job,
    )
    mr = by_name["mr.dcm"]
    assert mr.scope == Prediction.Scope.OUT_OF_SCOPE and mr.scope_check == "ood"
    assert mr.ood_score > mr.ood_threshold
    # What the model reads, what the scan is, and the score in one plain sentence.
    assert mr.scope_reason.startswith("not scored: outside this model's scope. This model reads ")
    assert "; this MR image does not look like them." in mr.scope_reason
    assert f"is {mr.ood_score:.2f}, above {mr.ood_threshold:.2f}" in mr.scope_reason
    assert mr.probabilities == [] and mr.risk is None and heatmap_keys(mr) == []
    assert by_name["c.png"].scope == Prediction.Scope.IN_SCOPE
    assert "1 scored" in job.result["summary"]
    assert "does not look like the model's training images" in job.result["summary"]
    assert "out-of-distribution score" in job.result["summary"]


def test_a_version_without_detector_scores_and_says_scope_was_not_checked(
    users, legacy_model, run_job
):
    _, job, by_name = upload_and_run(
        users, [upload("mr.dcm", pydicom_bytes("emri_small.dcm"))], run_job
    )
    mr = by_name["mr.dcm"]
    assert mr.scope == Prediction.Scope.UNCHECKED and mr.scored and mr.ood_score is None
    assert "no out-of-distribution detector" in job.result["summary"]
    assert "detector" in NO_DETECTOR


def test_deidentification_keeps_what_the_gate_reads(users, chest_model):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        files=[upload("cr.dcm", chest_cr_dicom())],
        uploaded_by=users.clinician_a,
        task=TASK,
    )
    stored = pydicom.dcmread(io.BytesIO(outcome.scans[0].file.read()))
    assert stored.Modality == "CR" and stored.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"
    assert stored.BodyPartExamined == "CHEST" and stored.ViewPosition == "PA"
    assert list(stored.ImageType) == ["ORIGINAL", "PRIMARY"]
    assert stored.PhotometricInterpretation == "MONOCHROME2"
    assert "Identifiable" not in str(stored.PatientName) and stored.PatientID != "HOSP-12345"


def test_override_scores_once_records_who_why_and_audits(
    users, chest_model, frames_scored, run_job
):
    patient, _, by_name = upload_and_run(users, [upload("IM0001", ct_head_dicom())], run_job)
    ct = by_name["IM0001"]
    assert frames_scored == []  # the job never ran the model on it
    with pytest.raises(OverrideRefused, match="Say why"):
        prediction_override(prediction=ct, user=users.clinician_a, reason="  ")
    with pytest.raises(ValueError, match="outside the model's scope"):
        review_record(prediction=ct, reviewer=users.clinician_a, label="normal")
    done = prediction_override(
        prediction=ct, user=users.clinician_a, reason="Scout shows the lung apices"
    )
    assert done.overridden and done.scored and done.override_by == users.clinician_a
    assert done.override_reason == "Scout shows the lung apices"
    assert done.scope == Prediction.Scope.OUT_OF_SCOPE and done.scope_reason == CT_HEAD_REASON
    assert set(done.probabilities) == {"normal", "pneumonia"} and 0 <= done.risk <= 1
    assert heatmap_keys(done) == ["heatmap_0"]
    assert frames_scored == [1]
    again = prediction_override(prediction=ct, user=users.clinician_b, reason="again")
    assert frames_scored == [1] and again.override_by == users.clinician_a
    events = AuditEvent.objects.filter(detail__has_key="scope_override")
    assert events.count() == 1
    event = events.get()
    assert event.patient == patient and event.actor == users.clinician_a
    assert event.detail["override_reason"] == "Scout shows the lung apices"
    review = review_record(prediction=done, reviewer=users.clinician_a, label="normal")
    assert review.verdict in (Review.Verdict.ACCEPTED, Review.Verdict.CORRECTED)


def test_an_in_scope_answer_cannot_be_overridden(users, chest_model, run_job):
    _, _, by_name = upload_and_run(users, [upload("c.png", chest_png())], run_job)
    with pytest.raises(OverrideRefused, match="within the model's scope"):
        prediction_override(prediction=by_name["c.png"], user=users.clinician_a, reason="x")


def test_reviewed_out_of_scope_scans_never_become_training_data(users, chest_model, run_job):
    files = [upload(f"{i}.png", chest_png()) for i in range(6)] + [
        upload("IM0001", ct_head_dicom())
    ]
    _, _, by_name = upload_and_run(users, files, run_job)
    for i in range(6):
        label = "pneumonia" if i % 2 else "normal"
        review_record(prediction=by_name[f"{i}.png"], reviewer=users.clinician_a, label=label)
    ct = prediction_override(prediction=by_name["IM0001"], user=users.clinician_a, reason="r")
    review_record(prediction=ct, reviewer=users.clinician_a, label="normal")
    dataset = dataset_from_reviews(task=TASK, created_by=users.model_admin)
    assert sum(dataset.split_sizes.values()) == 6
