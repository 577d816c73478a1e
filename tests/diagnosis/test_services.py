"""Uploads: validation per file, de-identification, all-or-nothing storage; predictions,
reviews, data sets and training through the services and the real job functions."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage

from diagnosis.models import ImageDataset, Prediction, Review, Scan, ScanUpload
from diagnosis.services import (
    dataset_register,
    patient_pseudonym,
    review_record,
    scan_upload,
    training_start,
)
from medai_site.audit.models import AuditEvent
from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion
from tests.diagnosis import archives
from tests.diagnosis.files import NEMA, chest_png, pydicom_bytes, upload
from tests.diagnosis.model_versions import PNEUMONIA_NPZ, TASK
from tests.platform.factories import JobFactory, patient_for

pytestmark = pytest.mark.django_db


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT / "scans"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_upload_keeps_good_files_and_explains_each_rejection(users, active_model, settings):
    patient = patient_for(users.clinician_a)
    files = [
        upload("chest.png", chest_png(), "image/png"),
        upload("ct.dcm", pydicom_bytes("CT_small.dcm")),
        upload("ct-j2k", (NEMA / "CT1_J2KR").read_bytes()),
        upload("notes.dcm", b"Patient has a cough, see notes.\n" * 20),
        upload("truncated.dcm", pydicom_bytes("CT_small.dcm")[:-1000]),
        upload("ecg.dcm", pydicom_bytes("waveform_ecg.dcm")),
        upload("empty.png", b""),
    ]
    outcome = scan_upload(patient=patient, files=files, uploaded_by=users.clinician_a, task=TASK)
    assert [s.original_name for s in outcome.scans] == ["chest.png", "ct.dcm", "ct-j2k"]
    assert [s.kind for s in outcome.scans] == ["png", "dicom", "dicom"]
    messages = {r.name: r.message for r in outcome.rejected}
    assert set(messages) == {"notes.dcm", "truncated.dcm", "ecg.dcm", "empty.png"}
    assert "text" in messages["notes.dcm"].lower()
    assert "incomplete: it ends inside Pixel Data (7FE0,0010)" in messages["truncated.dcm"]
    assert "pixel" in messages["ecg.dcm"].lower()
    assert "empty" in messages["empty.png"].lower()
    assert outcome.job is not None and outcome.job.kind == "diagnosis.inference"
    assert get_kind("diagnosis.inference").queue == "ml"
    assert ScanUpload.objects.get().rejected[0]["name"] == "notes.dcm"
    # Stored under generated names, never the uploaded one.
    for scan in outcome.scans:
        assert scan.original_name not in scan.file.name


def test_stored_dicom_is_deidentified_and_png_metadata_dropped(users, active_model):
    patient = patient_for(users.clinician_a)
    original = pydicom.dcmread(io.BytesIO(pydicom_bytes("CT_small.dcm")))
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("ct.dcm", pydicom_bytes("CT_small.dcm")), upload("c.png", chest_png())],
    )
    dicom_scan, png_scan = outcome.scans
    stored_bytes = dicom_scan.file.read()
    stored = pydicom.dcmread(io.BytesIO(stored_bytes))
    pseudonym = patient_pseudonym(patient)
    assert str(stored.PatientName) == pseudonym and stored.PatientID == pseudonym
    assert stored.PatientIdentityRemoved == "YES"
    for value in (
        str(original.PatientName),
        original.PatientID,
        original.StudyInstanceUID,
        original.SOPInstanceUID,
        original.StudyDate,
    ):
        assert value.encode() not in stored_bytes
    assert np.array_equal(stored.pixel_array, original.pixel_array)
    assert dicom_scan.deid_report
    assert b"Jane Identifiable" not in png_scan.file.read()


def test_nothing_half_written_when_storing_fails(users, active_model, settings, monkeypatch):
    patient = patient_for(users.clinician_a)
    real_save = Scan.save
    calls = {"n": 0}

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Scan, "save", failing_save)
    with pytest.raises(OSError):
        scan_upload(
            patient=patient,
            uploaded_by=users.clinician_a,
            task=TASK,
            files=[upload("a.png", chest_png()), upload("b.png", chest_png())],
        )
    assert not Scan.objects.exists() and not ScanUpload.objects.exists()
    # Only the held-out validation the fixture's model version queued when registered.
    assert not Job.objects.exclude(kind="registry.validate").exists()
    assert stored_files(settings) == []


def test_inference_job_scores_each_scan_once_with_version_stamped(users, legacy_model, run_job):
    # A version without a detector scores every scan (scope unchecked), the series included;
    # tests/diagnosis/test_scope.py covers the answers of versions that check scope.
    active_model = legacy_model
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png()), upload("mr.dcm", pydicom_bytes("emri_small.dcm"))],
    )
    job = run_job(outcome.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    predictions = Prediction.objects.order_by("scan_id")
    assert predictions.count() == 2
    for prediction in predictions:
        assert prediction.model_version == active_model
        assert set(prediction.probabilities) == {"normal", "pneumonia"}
        assert abs(sum(prediction.probabilities.values()) - 1) < 1e-6
        assert 0 <= prediction.uncertainty <= 1 and 0 <= prediction.risk <= 1
        assert prediction.scope == Prediction.Scope.UNCHECKED
    series = predictions.get(scan__original_name="mr.dcm")
    assert series.scan.frames > 1 and len(series.frames) == series.scan.frames
    with series.heatmaps.open("rb") as handle, np.load(handle) as maps:
        assert len(maps.files) == series.scan.frames
    # A redelivered task (or a second job for the same upload) writes nothing twice.
    again = JobFactory(
        kind="diagnosis.inference", title="again", owner=users.clinician_a, params=job.params
    )
    assert run_job(again).status == Job.Status.SUCCEEDED
    assert Prediction.objects.count() == 2
    assert "already classified" in again.result["summary"]


def test_inference_without_active_model_keeps_the_scans_waiting(users, active_model, run_job):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png())],
    )
    ModelVersion.objects.filter(pk=active_model.pk).update(status="retired")
    job = run_job(outcome.job)
    assert job.status == Job.Status.SUCCEEDED
    assert "No model of diagnosis.pneumonia is in service" in job.result["summary"]
    assert Scan.objects.get().awaiting_model_since is not None  # kept, waiting for a model


def test_review_accept_and_correct_are_audited(users, active_model, run_job):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png())],
    )
    run_job(outcome.job)
    prediction = Prediction.objects.get()
    review = review_record(
        prediction=prediction, reviewer=users.clinician_a, label=prediction.predicted_class
    )
    assert review.verdict == Review.Verdict.ACCEPTED
    other = next(c for c in prediction.class_names if c != prediction.predicted_class)
    review = review_record(
        prediction=prediction,
        reviewer=users.clinician_a,
        label=other,
        note="consolidation not seen",
    )
    assert review.verdict == Review.Verdict.CORRECTED and Review.objects.count() == 1
    events = AuditEvent.objects.filter(detail__has_key="review", patient=patient)
    assert [e.detail["review"] for e in events.order_by("id")] == ["accepted", "corrected"]
    with pytest.raises(ValueError, match="not one of the model's classes"):
        review_record(prediction=prediction, reviewer=users.clinician_a, label="fracture")


def register(users, path, name="pneu", kind="npz", **kwargs) -> ImageDataset:
    return dataset_register(
        name=name,
        task="diagnosis.pneu",
        kind=kind,
        path=str(path),
        created_by=users.model_admin,
        **kwargs,
    )


def check_job(dataset: ImageDataset) -> Job:
    return Job.objects.get(kind="diagnosis.dataset_check", target_id=dataset.pk)


def test_registration_checks_the_data_in_a_job(users, settings, tmp_path, run_job):
    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    dataset = register(users, PNEUMONIA_NPZ, class_names=["normal", "pneumonia"])
    # Nothing is loaded in the request: the row waits for its job.
    assert dataset.status == "checking" and dataset.split_sizes == {}
    with pytest.raises(ValueError, match="not ready to train on"):
        training_start(dataset=dataset, config={}, activate=False, user=users.model_admin)
    job = run_job(check_job(dataset))
    assert job.status == Job.Status.SUCCEEDED, job.error
    dataset.refresh_from_db()
    assert dataset.status == "ready"
    assert dataset.split_sizes == {"train": 4708, "val": 524, "test": 624}
    assert dataset.image_shape == [28, 28, 1] and dataset.class_names == ["normal", "pneumonia"]
    assert dataset.preview["counts"]["test"] == {"normal": 234, "pneumonia": 390}
    assert [s["class"] for s in dataset.preview["samples"]] == ["normal", "pneumonia"]
    assert dataset.preview["samples"][0]["images"][0].startswith("data:image/png;base64,")
    assert len(dataset.sha256) == 64


def test_a_data_set_that_fails_its_check_says_why(users, settings, tmp_path, run_job):
    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    bad = tmp_path / "bad.npz"
    np.savez(bad, train_images=np.zeros((2, 8, 8), np.uint8))
    dataset = register(users, bad)
    job = run_job(check_job(dataset))
    dataset.refresh_from_db()
    assert job.status == Job.Status.FAILED and dataset.status == "failed"
    assert "missing the array(s) train_labels" in dataset.message
    with pytest.raises(ValueError, match="not ready"):
        training_start(dataset=dataset, config={}, activate=False, user=users.model_admin)


def test_server_paths_outside_the_data_roots_are_refused_alike(users, settings, tmp_path):
    """Patient scans live under MEDIA_ROOT in the "folder of labelled images" shape; a path
    there, outside the roots, through a link, or that does not exist gets the same answer."""
    roots = tmp_path / "roots"
    roots.mkdir()
    settings.MEDAI_DATASET_ROOTS = [roots, tmp_path / "media"]
    scans = settings.MEDIA_ROOT / "scans" / "normal"
    scans.mkdir(parents=True)
    (roots / "to-media").symlink_to(settings.MEDIA_ROOT)
    (roots / "to-etc").symlink_to("/etc")
    refused = [
        settings.MEDIA_ROOT / "scans",
        roots / "to-media" / "scans",
        roots / "to-etc",
        "/etc",
        "/etc/no-such-folder",
        roots / ".." / "roots" / ".." / "elsewhere",
        "relative/path",
        "",
    ]
    messages = set()
    for index, path in enumerate(refused):
        with pytest.raises(ValueError) as caught:
            register(users, path, name=f"x{index}", kind="folder")
        messages.add(str(caught.value))
    assert len(messages) == 1 and "MEDAI_DATASET_ROOTS" in messages.pop()
    assert (
        not ImageDataset.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_a_link_inside_a_registered_folder_cannot_lead_out(users, settings, tmp_path, run_job):
    from PIL import Image

    roots = tmp_path / "roots"
    for name in ("a", "b"):
        (roots / "set" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), i * 40).save(roots / "set" / name / f"{i}.png")
    outside = tmp_path / "media" / "scans" / "c"
    outside.mkdir(parents=True)
    for i in range(3):
        Image.new("L", (8, 8), i).save(outside / f"{i}.png")
    settings.MEDAI_DATASET_ROOTS = [roots]
    (roots / "set" / "c").symlink_to(outside)
    dataset = register(users, roots / "set", kind="folder")
    run_job(check_job(dataset))
    dataset.refresh_from_db()
    assert dataset.status == "failed" and "outside the configured data-set folders" in (
        dataset.message
    )
    (roots / "set" / "c").unlink()
    ok = register(users, roots / "set", name="ok", kind="folder")
    run_job(check_job(ok))
    ok.refresh_from_db()
    assert ok.status == "ready" and ok.class_names == ["a", "b"]


def test_training_job_registers_a_version_with_metrics_and_live_curves(
    users, settings, tmp_path, run_job
):
    from diagnosis.ml.data import load_npz

    small = load_npz(PNEUMONIA_NPZ).subset(train=300, val=100, test=100, seed=1)
    path = tmp_path / "small.npz"
    np.savez(
        path,
        **{
            f"{s}_{k}": getattr(small, f"{s}_{k}")
            for s in ("train", "val", "test")
            for k in ("images", "labels")
        },
    )
    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    dataset = dataset_register(
        name="small",
        task="diagnosis.small",
        kind="npz",
        path=str(path),
        class_names=["normal", "pneumonia"],
        created_by=users.model_admin,
    )
    run_job(check_job(dataset))
    dataset.refresh_from_db()
    job = training_start(
        dataset=dataset,
        config={"epochs": 2, "width": 8, "batch_size": 64},
        activate=True,
        user=users.model_admin,
    )
    job = run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(task="diagnosis.small")
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.metrics["test_auc"] > 0.6
    assert len(version.metrics["history"]) == 2 and version.sha256
    assert version.training_data["dataset"] == "small"
    assert len(job.live["history"]) == 2 and job.live["figure"]["data"]
    assert "test AUC" in job.result["summary"]
    default_storage.delete(version.artifact.name)


def test_reviews_become_a_training_data_set(users, active_model, run_job):
    from diagnosis.services import dataset_from_reviews
    from diagnosis.training import load_dataset

    patient = patient_for(users.clinician_a)
    with pytest.raises(ValueError, match="at least 6 scans"):
        dataset_from_reviews(task=TASK, created_by=users.model_admin)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload(f"{i}.png", chest_png()) for i in range(8)],
    )
    run_job(outcome.job)
    for i, prediction in enumerate(Prediction.objects.order_by("pk")):
        review_record(
            prediction=prediction,
            reviewer=users.clinician_a,
            label="pneumonia" if i % 2 else "normal",
        )
    dataset = dataset_from_reviews(task=TASK, created_by=users.model_admin)
    assert dataset.kind == "reviews" and sum(dataset.split_sizes.values()) == 8
    data = load_dataset(dataset)
    labels = np.concatenate([data.split(s)[1] for s in ("train", "val", "test")])
    assert sorted(labels.tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert data.train_images.shape[1:] == (28, 28, 1)


def test_the_demo_data_set_is_checked_and_the_shipped_model_put_into_service(users, settings):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 120  # a real validation, on a smaller locked set
    from diagnosis.demo import demo_imaging_ensure
    from medai_site.registry.models import ModelValidation, ModelVersion

    note = demo_imaging_ensure(user=users.model_admin, train=True)
    assert "registered the PneumoniaMNIST data set" in note
    assert "put the shipped pneumonia classifier into service" in note
    dataset = ImageDataset.objects.get(name="PneumoniaMNIST")
    # Checked and validated before any worker runs: the first scan needs no training run.
    assert dataset.status == "ready"
    version = ModelVersion.objects.get(task=dataset.task)
    assert version.status == "active" and version.training_data["dataset_id"] == dataset.pk
    validation = ModelValidation.objects.get(version=version)
    assert validation.status == "passed" and validation.held_out is not None
    assert not Job.objects.filter(kind="diagnosis.training").exists()
    # Idempotent: a second seed neither registers nor queues anything.
    assert demo_imaging_ensure(user=users.model_admin, train=True) == ""
    assert ModelVersion.objects.filter(task=dataset.task).count() == 1


def test_without_its_shipped_model_the_demo_queues_a_first_training_run(users, settings, tmp_path):
    from diagnosis.demo import demo_imaging_ensure

    settings.MEDAI_SHIPPED_MODELS_DIR = tmp_path
    note = demo_imaging_ensure(user=users.model_admin, train=True)
    assert "diagnosis-pneumonia is missing" in note and "queued a first training run" in note
    dataset = ImageDataset.objects.get(name="PneumoniaMNIST")
    training = Job.objects.get(kind="diagnosis.training")
    assert training.params["dataset_id"] == dataset.pk and training.params["activate"]
    demo_imaging_ensure(user=users.model_admin, train=True)
    assert Job.objects.filter(kind="diagnosis.training").count() == 1


def test_a_training_run_whose_finish_fails_leaves_no_artifact(
    users, settings, tmp_path, monkeypatch, run_job
):
    from medai_site.registry import services as registry

    small = tmp_path / "small.npz"
    small.write_bytes(archives.small_npz())
    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    dataset = register(users, small, class_names=["normal", "pneumonia"])
    run_job(check_job(dataset))
    dataset.refresh_from_db()

    def refuse(**kwargs):
        raise RuntimeError("activation failed")

    # The version row is saved, then its activation fails: the job's transaction rolls back.
    monkeypatch.setattr(registry, "model_version_activate", refuse)
    job = training_start(
        dataset=dataset,
        config={"epochs": 1, "width": 8, "batch_size": 64},
        activate=True,
        user=users.model_admin,
    )
    assert run_job(job).status == Job.Status.FAILED
    models = settings.MEDIA_ROOT / "models"
    assert not ModelVersion.objects.exists()
    # The version's folder may stay behind, empty: no artifact file is left in it.
    assert not [p for p in models.rglob("*") if p.is_file()]
