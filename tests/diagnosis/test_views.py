"""Diagnosis pages: upload with per-file messages, the viewer's data, review, worklist,
monitoring, training; and that clinician B never reaches clinician A's scans."""

from __future__ import annotations

import pytest

from diagnosis.models import Prediction, Scan
from diagnosis.services import scan_upload
from medai_site.audit.models import AuditEvent
from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import job_execute
from tests.diagnosis.conftest import TASK
from tests.diagnosis.files import chest_png, pydicom_bytes, upload
from tests.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(users, active_model):
    """Clinician A's patient with one classified PNG and one classified multi-frame MR."""
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png()), upload("mr.dcm", pydicom_bytes("emri_small.dcm"))],
    )
    job_execute(job_id=outcome.job.pk, fn=get_kind("diagnosis.inference").task.job_function)
    return patient, outcome.scans


def test_upload_page_reports_each_file(users, active_model, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    page = client.get(f"/diagnosis/patients/{patient.pk}/scans/")
    assert page.status_code == 200 and b"data-dropzone" in page.content
    response = client.post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {
            "task": TASK,
            "files": [upload("chest.png", chest_png()), upload("random.dcm", b"\x00\x01junk" * 50)],
        },
    )
    assert response.status_code == 302
    assert "?upload=" in response["Location"]
    html = client.get(response["Location"]).content.decode()
    assert "1 file accepted" in html and "random.dcm" in html
    assert "data-job-progress" in html
    assert Scan.objects.count() == 1 and Job.objects.filter(kind="diagnosis.inference").exists()


def test_upload_of_only_bad_files_is_a_400_and_stores_nothing(users, active_model, client_for):
    patient = patient_for(users.clinician_a)
    response = client_for(users.clinician_a).post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {"task": TASK, "files": [upload("x.dcm", pydicom_bytes("no_meta.dcm")[:200])]},
    )
    assert response.status_code == 400
    assert "x.dcm" in response.content.decode()
    assert not Scan.objects.exists() and not Job.objects.exists()


def test_upload_without_files_or_with_unknown_model_is_a_400(users, active_model, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    response = client.post(f"/diagnosis/patients/{patient.pk}/scans/", {"task": TASK})
    assert response.status_code == 400 and "at least one file" in response.content.decode()
    response = client.post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {"task": "diagnosis.nonexistent", "files": [upload("c.png", chest_png())]},
    )
    assert response.status_code == 400 and not Scan.objects.exists()


def test_viewer_page_and_frame_data(users, scored, client_for):
    _, (png, mr) = scored
    client = client_for(users.clinician_a)
    page = client.get(f"/diagnosis/scans/{png.pk}/").content.decode()
    assert "Model prediction" in page and "diagnosis.pneumonia v1" in page
    assert 'id="probabilities"' in page and "test_auc" in page
    threshold = Prediction.objects.get(scan=png).threshold
    assert threshold is not None and f"pneumonia when its probability ≥ {threshold:.2f}" in page
    frame = client.get(f"/diagnosis/scans/{mr.pk}/frames/1/").json()
    assert frame["frames"] == mr.frames and frame["index"] == 1
    assert len(frame["values"]) == frame["shape"][0] and len(frame["heatmap"]) == frame["shape"][0]
    assert len(frame["heatmap"][0]) == frame["shape"][1]
    assert client.get(f"/diagnosis/scans/{mr.pk}/frames/{mr.frames}/").status_code == 404
    assert AuditEvent.objects.filter(action="record_viewed", object_id=str(png.pk)).exists()
    assert AuditEvent.objects.filter(
        action="record_viewed", object_id=str(mr.pk), detail__frame=1
    ).exists()


def test_review_from_the_viewer(users, scored, client_for):
    _, (png, _) = scored
    client = client_for(users.clinician_a)
    prediction = Prediction.objects.get(scan=png)
    response = client.post(
        f"/diagnosis/scans/{png.pk}/review/",
        {"label": prediction.predicted_class, "note": "agree", "next": "worklist"},
    )
    assert response.status_code == 302 and response["Location"] == "/diagnosis/worklist/"
    assert prediction.review.verdict == "accepted"
    response = client.post(f"/diagnosis/scans/{png.pk}/review/", {"label": "not-a-class"})
    assert response.status_code == 302
    prediction.review.refresh_from_db()
    assert prediction.review.label == prediction.predicted_class  # unchanged


def test_clinician_b_cannot_reach_clinician_a_scans(users, scored, client_for):
    _, (png, mr) = scored
    client = client_for(users.clinician_b)
    for url in (f"/diagnosis/scans/{png.pk}/", f"/diagnosis/scans/{mr.pk}/frames/0/"):
        assert client.get(url).status_code == 404
    assert client.post(f"/diagnosis/scans/{png.pk}/review/", {"label": "normal"}).status_code == 404
    assert not Prediction.objects.filter(review__isnull=False).exists()
    assert png.patient.mrn not in client.get("/diagnosis/worklist/").content.decode()


def test_worklist_sorted_by_risk_and_filtered(users, scored, client_for):
    patient, _ = scored
    client = client_for(users.clinician_a)
    html = client.get("/diagnosis/worklist/").content.decode()
    risks = [p.risk for p in Prediction.objects.order_by("-risk")]
    assert html.count("awaiting review") >= 2
    first, second = (f"{r:.2f}" for r in risks)
    assert html.index(first) < html.rindex(second)
    prediction = Prediction.objects.first()
    from diagnosis.services import review_record

    review = review_record(prediction=prediction, reviewer=users.clinician_a, label="normal")
    awaiting = client.get("/diagnosis/worklist/?status=awaiting").content.decode()
    reviewed = client.get("/diagnosis/worklist/?status=reviewed").content.decode()
    assert awaiting.count("awaiting review") == 1
    assert f"{review.get_verdict_display()}: normal" in reviewed
    none = client.get("/diagnosis/worklist/?q=ZZZ-no-such").content.decode()
    assert "Nothing to review" in none


def test_monitoring_shows_agreement(users, scored, client_for):
    from diagnosis.services import review_record

    for prediction in Prediction.objects.all():
        review_record(prediction=prediction, reviewer=users.clinician_a, label="pneumonia")
    html = client_for(users.model_admin).get("/diagnosis/monitoring/").content.decode()
    assert "diagnosis.pneumonia v1" in html and 'id="confusion-' in html
    assert 'id="risk-time"' in html


def test_training_page_validates_and_queues(users, active_model, client_for):
    from diagnosis.models import ImageDataset

    client = client_for(users.model_admin)
    dataset = ImageDataset.objects.get()
    response = client.post(
        "/diagnosis/training/",
        {
            "dataset": dataset.pk,
            "arch": "small_cnn",
            "epochs": 0,
            "batch_size": 64,
            "lr": 0.003,
            "seed": 0,
        },
    )
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    response = client.post(
        "/diagnosis/training/",
        {
            "dataset": dataset.pk,
            "arch": "small_cnn",
            "epochs": 3,
            "batch_size": 64,
            "lr": 0.003,
            "seed": 0,
        },
    )
    job = Job.objects.get(kind="diagnosis.training")
    assert response.status_code == 302 and response["Location"] == f"/diagnosis/training/{job.pk}/"
    assert job.params["config"]["epochs"] == 3
    page = client.get(f"/diagnosis/training/{job.pk}/").content.decode()
    assert 'data-live-chart="training-curves"' in page


def test_dataset_form_reports_unusable_data(users, client_for, tmp_path):
    response = client_for(users.model_admin).post(
        "/diagnosis/datasets/new/",
        {"name": "x", "task": "diagnosis.x", "kind": "npz", "path": str(tmp_path / "no.npz")},
    )
    assert response.status_code == 400
    assert "The data could not be used" in response.content.decode()
