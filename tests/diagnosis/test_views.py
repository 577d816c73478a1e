"""Diagnosis pages: upload with per-file messages, the viewer's data, review, worklist,
monitoring, training; and that clinician B never reaches clinician A's scans."""

from __future__ import annotations

import numpy as np
import pytest

from diagnosis.models import Prediction, Scan
from diagnosis.services import scan_upload
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.diagnosis import archives
from tests.diagnosis.files import chest_png, pydicom_bytes, upload
from tests.diagnosis.model_versions import PNEUMONIA_NPZ, TASK
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(users, legacy_model, run_job):
    """Clinician A's patient with one classified PNG and one classified multi-frame MR (by a
    version without a detector, so both are scored; test_scope_views.py covers the rest)."""
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png()), upload("mr.dcm", pydicom_bytes("emri_small.dcm"))],
    )
    run_job(outcome.job)
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
    assert not Scan.objects.exists() and not Job.objects.exclude(kind="registry.validate").exists()


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
    # Queued: a sentence where the curves will be, not empty axes from -1 to 6.
    assert "Training has not started yet" in page
    assert 'id="training-curves" type="application/json"' not in page


def test_dataset_form_refuses_paths_outside_the_data_roots(users, client_for, settings, tmp_path):
    settings.MEDAI_DATASET_ROOTS = [tmp_path / "roots"]
    client = client_for(users.model_admin)
    answers = [
        client.post(
            "/diagnosis/datasets/new/",
            {"name": "x", "task": "diagnosis.x", "kind": "folder", "path": str(path)},
        )
        for path in (settings.MEDIA_ROOT, tmp_path / "no.npz", "/etc", "/etc/no-such")
    ]
    assert {a.status_code for a in answers} == {400}
    bodies = {a.content.decode().split("field-error")[1][:300] for a in answers}
    assert len(bodies) == 1 and "MEDAI_DATASET_ROOTS" in bodies.pop()


def test_dataset_form_registers_and_the_page_shows_the_check(users, client_for, settings, run_job):
    from diagnosis.models import ImageDataset

    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    client = client_for(users.model_admin)
    response = client.post(
        "/diagnosis/datasets/new/",
        {"name": "pneu", "task": "diagnosis.pneu", "kind": "npz", "path": str(PNEUMONIA_NPZ)},
    )
    assert response.status_code == 302
    dataset = ImageDataset.objects.get()
    page = client.get("/diagnosis/training/").content.decode()
    assert "Being checked" in page and "data-job-progress" in page
    assert "No data set is ready to train on yet" in page
    job = Job.objects.get(kind="diagnosis.dataset_check")
    run_job(job)
    page = client.get("/diagnosis/training/").content.decode()
    assert "Ready" in page and "4708 / 524 / 624" in page and 'src="data:image/png' in page
    assert f'<option value="{dataset.pk}"' in page


def upload_post(client, name, data, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/diagnosis/datasets/upload/",
        {"name": "up", "task": "diagnosis.up", "file": SimpleUploadedFile(name, data), **fields},
    )


def nothing_left(settings) -> bool:
    from diagnosis.models import ImageDataset

    folder = settings.MEDIA_ROOT / "datasets"
    files = [p for p in folder.rglob("*")] if folder.exists() else []
    return (
        files == []
        and not ImageDataset.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


@pytest.mark.parametrize(
    ("name", "make", "status", "message"),
    [
        ("cut.zip", lambda: archives.class_folders_zip()[:300], 400, "damaged, truncated"),
        ("bomb.zip", lambda: archives.bomb_zip(20), 413, "zip bomb"),
        (
            "up.zip",
            lambda: archives.class_folders_zip(**{"../../x.png": archives.png()}),
            400,
            "outside the archive",
        ),
        (
            "abs.zip",
            lambda: archives.class_folders_zip(**{"/tmp/x.png": archives.png()}),
            400,
            "absolute path",
        ),
        ("link.zip", archives.symlink_zip, 400, "symbolic link"),
        ("empty.zip", lambda: archives.zip_bytes({}), 400, "no PNG or JPEG"),
        ("pickle.npz", archives.pickled_npz, 400, "Python objects"),
        ("keys.npz", lambda: archives.small_npz(val_labels=None), 400, "missing the array"),
        (
            "shape.npz",
            lambda: archives.small_npz(test_labels=np.zeros(3, np.int64)),
            400,
            "40 images but 3 labels",
        ),
        ("renamed.npz", lambda: b"%PDF-1.4 not numpy", 400, "not a .npz archive"),
        ("data.csv", lambda: b"a,b\n1,2\n", 400, "Upload a MedMNIST-style .npz"),
    ],
)
def test_hostile_uploads_get_a_specific_4xx_and_leave_nothing(
    users, client_for, settings, name, make, status, message
):
    response = upload_post(client_for(users.model_admin), name, make())
    assert response.status_code == status
    assert message in response.content.decode()
    assert nothing_left(settings)


def test_an_upload_over_the_size_cap_is_413(users, client_for, settings):
    settings.MEDAI_DATASET_UPLOAD_MAX_BYTES = 10_000
    response = upload_post(
        client_for(users.model_admin), "big.zip", archives.class_folders_zip(per_class=60)
    )
    assert response.status_code == 413 and "limit for data sets" in response.content.decode()
    assert nothing_left(settings)


def test_a_full_disk_is_507_and_leaves_nothing(users, client_for, settings, monkeypatch):
    import errno

    from diagnosis import services

    def full(source, target, cap):
        target.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(services, "_copy_capped", full)
    response = upload_post(client_for(users.model_admin), "d.npz", archives.small_npz())
    assert response.status_code == 507 and "ran out of disk space" in response.content.decode()
    assert nothing_left(settings)


def test_a_failing_row_save_leaves_no_files(users, client_for, settings, monkeypatch):
    from diagnosis import services

    def boom(**kwargs):
        raise RuntimeError("the job table refused the row")

    monkeypatch.setattr(services, "_dataset_check_queue", boom)
    with pytest.raises(RuntimeError):
        services.dataset_upload(
            name="x",
            task="diagnosis.x",
            file=upload("d.npz", archives.small_npz()),
            created_by=users.model_admin,
        )
    assert nothing_left(settings)


@pytest.mark.parametrize(
    ("name", "make", "classes", "shape"),
    [
        ("d.npz", archives.small_npz, ["normal", "pneumonia"], [28, 28, 1]),
        # Mixed sizes, modes and formats are supported: resized to one size (of the first
        # image read), colour kept.
        ("mixed.zip", archives.mixed_zip, ["a", "b"], [20, 30, 3]),
    ],
)
def test_uploads_are_stored_by_the_product_and_checked_by_a_job(
    users, client_for, settings, name, make, classes, shape, run_job
):
    from diagnosis.models import ImageDataset

    client = client_for(users.model_admin)
    fields = {"class_names": "normal, pneumonia"} if name.endswith(".npz") else {}
    response = upload_post(client, name, make(), **fields)
    assert response.status_code == 302
    dataset = ImageDataset.objects.get()
    assert dataset.uploaded and dataset.status == "checking"
    folder = settings.MEDIA_ROOT / "datasets" / str(dataset.pk)
    assert folder.is_dir() and sorted(
        p.name for p in (settings.MEDIA_ROOT / "datasets").iterdir()
    ) == [str(dataset.pk)]
    job = Job.objects.get(kind="diagnosis.dataset_check")
    run_job(job)
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.message
    assert dataset.class_names == classes and dataset.image_shape == shape


def test_an_upload_whose_images_do_not_decode_fails_its_check(users, client_for, settings, run_job):
    from diagnosis.models import ImageDataset

    broken = archives.png(1)[:60]  # a valid header, then the data stops
    data = archives.class_folders_zip(**{"normal/broken.png": broken})
    assert upload_post(client_for(users.model_admin), "b.zip", data).status_code == 302
    job = Job.objects.get(kind="diagnosis.dataset_check")
    run_job(job)
    dataset = ImageDataset.objects.get()
    assert dataset.status == "failed" and "broken.png" in dataset.message
    # The unusable files are not kept.
    assert not (settings.MEDIA_ROOT / "datasets" / str(dataset.pk)).exists()
    page = client_for(users.model_admin).get("/diagnosis/training/").content.decode()
    assert "Failed its check" in page and "broken.png" in page


def test_the_upload_still_needs_the_csrf_token(users, settings):
    """The view reads no body before its size cap is installed, so it checks CSRF itself."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(users.model_admin, backend="django.contrib.auth.backends.ModelBackend")

    def post(**extra):
        data = {"name": "a", "task": "diagnosis.a", **extra}
        data["file"] = SimpleUploadedFile("d.npz", archives.small_npz())
        return client.post("/diagnosis/datasets/upload/", data)

    assert post().status_code == 403 and nothing_left(settings)
    token = client.get("/diagnosis/training/").cookies["csrftoken"].value
    assert post(csrfmiddlewaretoken=token).status_code == 302


def test_deleting_an_uploaded_data_set_in_the_admin_removes_its_files(
    users, client_for, settings, django_capture_on_commit_callbacks
):
    from diagnosis.models import ImageDataset

    client = client_for(users.model_admin)
    assert upload_post(client, "d.npz", archives.small_npz()).status_code == 302
    dataset = ImageDataset.objects.get()
    folder = settings.MEDIA_ROOT / "datasets" / str(dataset.pk)
    assert (folder / "data.npz").is_file()
    users.model_admin.is_superuser = True
    users.model_admin.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/diagnosis/imagedataset/{dataset.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert not ImageDataset.objects.exists() and not folder.exists()


def test_a_full_disk_while_receiving_the_upload_is_507(users, client_for, settings, monkeypatch):
    import errno

    from diagnosis import views

    def full(self, raw_data, start):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(views._UploadCap, "receive_data_chunk", full)
    response = upload_post(client_for(users.model_admin), "d.npz", archives.small_npz())
    assert response.status_code == 507 and "ran out of disk space" in response.content.decode()
    assert nothing_left(settings)
