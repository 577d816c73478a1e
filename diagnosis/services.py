"""Every write in diagnosis: uploads (validate, de-identify, store, queue), predictions,
reviews, data sets and training runs."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from diagnosis.frames import prepare_frames
from diagnosis.imaging import LoadedScan, ScanRejected, deidentify, load_upload, scan_frames
from diagnosis.models import ImageDataset, Prediction, Review, Scan, ScanUpload
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create
from medai_site.patients.models import Patient

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = settings.DIAGNOSIS_MAX_FILE_BYTES
MAX_PIXELS = settings.DIAGNOSIS_MAX_PIXELS
MAX_FILES_PER_UPLOAD = 500  # a CT or MR series often arrives as hundreds of files


@dataclass(frozen=True)
class FileRejection:
    name: str
    message: str


@dataclass
class UploadOutcome:
    upload: ScanUpload
    scans: list[Scan] = field(default_factory=list)
    rejected: list[FileRejection] = field(default_factory=list)
    job: Job | None = None


@dataclass
class _Prepared:
    name: str
    kind: str
    stored: bytes
    display: bytes
    loaded: LoadedScan
    frames: int
    is_color: bool
    deid_report: dict[str, Any]


def patient_pseudonym(patient: Patient) -> str:
    """A stable pseudonym written into stored DICOM headers instead of the patient's identity;
    the link back lives only in MedAI's database."""
    digest = hmac.new(_deid_key(), f"patient:{patient.pk}".encode(), hashlib.sha256).hexdigest()
    return f"MEDAI-{digest[:16].upper()}"


def _deid_key() -> bytes:
    # Configured per deployment, else derived from the secret key (also stable per install).
    if settings.MEDAI_DEID_UID_KEY:
        return settings.MEDAI_DEID_UID_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"medai-deid-uid-key", hashlib.sha256).digest()


def _png_bytes(loaded: LoadedScan) -> bytes:
    # Re-encoding from pixels drops every metadata chunk (EXIF, text) a camera or PACS
    # export may have carried.
    pixels = loaded.pixels[0]
    if pixels.dtype != np.uint8 and pixels.ndim == 2:
        image = Image.fromarray(pixels.astype(np.uint16))
    else:
        image = Image.fromarray(pixels.astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _prepare(upload: UploadedFile, patient: Patient) -> _Prepared:
    name = (upload.name or "upload")[:255]
    if upload.size is not None and upload.size > MAX_FILE_BYTES:
        raise ScanRejected(
            "too_large",
            f"The file is {upload.size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB.",
        )
    data = upload.read(MAX_FILE_BYTES + 1)
    loaded = load_upload(data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_PIXELS)
    report: dict[str, Any] = {}
    if loaded.info.kind == "dicom":
        pseudonym = patient_pseudonym(patient)
        result = deidentify(
            loaded, uid_key=_deid_key(), patient_name=pseudonym, patient_id=pseudonym
        )
        stored = result.data
        report = _plain(result.report)
    else:
        stored = _png_bytes(loaded)
    frames = scan_frames(loaded)
    prepared = prepare_frames(frames)
    return _Prepared(
        name=name,
        kind=loaded.info.kind,
        stored=stored,
        display=prepared.npz,
        loaded=loaded,
        frames=prepared.frames,
        is_color=prepared.is_color,
        deid_report=report,
    )


def _plain(report: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(report) if is_dataclass(report) else dict(report)
    return {k: (list(v) if isinstance(v, (tuple, set, frozenset)) else v) for k, v in data.items()}


def scan_upload(
    *,
    patient: Patient,
    files: list[UploadedFile],
    uploaded_by: Any,
    task: str,
    request: Any = None,
) -> UploadOutcome:
    """Validate, de-identify and store each file; every rejected file is listed with its
    reason while the others go through. Accepted scans get one inference job. A failure
    while storing removes every file this call wrote: no half-written upload remains."""
    prepared: list[_Prepared] = []
    rejected: list[FileRejection] = []
    for upload in files[:MAX_FILES_PER_UPLOAD]:
        try:
            prepared.append(_prepare(upload, patient))
        except ScanRejected as exc:
            rejected.append(FileRejection(upload.name or "upload", exc.message))
    for upload in files[MAX_FILES_PER_UPLOAD:]:
        rejected.append(
            FileRejection(
                upload.name or "upload",
                f"Not accepted: at most {MAX_FILES_PER_UPLOAD} files per upload.",
            )
        )
    written: list[str] = []
    try:
        with transaction.atomic():
            record = ScanUpload.objects.create(
                patient=patient,
                uploaded_by=uploaded_by,
                task=task,
                rejected=[{"name": r.name, "message": r.message} for r in rejected],
            )
            outcome = UploadOutcome(upload=record, rejected=rejected)
            for item in prepared:
                info = item.loaded.info
                scan = Scan(
                    patient=patient,
                    upload=record,
                    uploaded_by=uploaded_by,
                    kind=item.kind,
                    sha256=hashlib.sha256(item.stored).hexdigest(),
                    original_name=item.name,
                    modality=(info.modality or "")[:16],
                    rows=info.rows,
                    cols=info.cols,
                    frames=item.frames,
                    is_color=item.is_color,
                    transfer_syntax=(info.transfer_syntax_name or "")[:120],
                    info={
                        "photometric": info.photometric_interpretation,
                        "bits_stored": info.bits_stored,
                        "lossy": info.lossy,
                        "sop_class": info.sop_class_name,
                        "display": dict(info.display),
                    },
                    deid_report=item.deid_report,
                )
                scan.file.save("scan", ContentFile(item.stored), save=False)
                written.append(scan.file.name)
                scan.display.save("display", ContentFile(item.display), save=False)
                written.append(scan.display.name)
                scan.save()
                outcome.scans.append(scan)
            if outcome.scans:
                outcome.job = job_create(
                    kind="diagnosis.inference",
                    owner=uploaded_by,
                    patient=patient,
                    title=f"Classify {len(outcome.scans)} scan"
                    f"{'s' if len(outcome.scans) != 1 else ''} for {patient.mrn}",
                    params={"upload_id": record.pk, "task": task},
                    target=record,
                )
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=uploaded_by,
                request=request,
                obj=record,
                patient=patient,
                detail={"scans_uploaded": [s.pk for s in outcome.scans], "rejected": len(rejected)},
            )
    except Exception:
        for name in written:
            default_storage.delete(name)
        raise
    return outcome


def prediction_store(
    *,
    scan: Scan,
    model_version: Any,
    job: Job | None,
    result: dict[str, Any],
    heatmaps: list[np.ndarray],
    risk: float,
) -> Prediction:
    """Store one scan's prediction for a model version; returns the existing one if this
    version already scored the scan (a redelivered task writes nothing twice)."""
    existing = Prediction.objects.filter(scan=scan, model_version=model_version).first()
    if existing is not None:
        return existing
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, **{f"heatmap_{i}": h.astype(np.float16) for i, h in enumerate(heatmaps)}
    )
    prediction = Prediction(
        scan=scan,
        model_version=model_version,
        job=job,
        class_names=result["class_names"],
        probabilities=result["probabilities"],
        predicted_class=result["predicted_class"],
        predicted_index=result["predicted_index"],
        risk=risk,
        confidence=result["confidence"],
        uncertainty=result["uncertainty"],
        key_frame=result.get("key_frame", 0),
        frames=result.get("frames", []),
        threshold=result.get("threshold"),
    )
    prediction.heatmaps.save("heatmaps", ContentFile(buffer.getvalue()), save=False)
    try:
        with transaction.atomic():
            prediction.save()
    except Exception:
        default_storage.delete(prediction.heatmaps.name)
        raise
    return prediction


def review_record(
    *, prediction: Prediction, reviewer: Any, label: str, note: str = "", request: Any = None
) -> Review:
    """Record (or replace) the clinician's verdict on a prediction: accepted when the label
    matches the model's, corrected otherwise. Audited."""
    if label not in prediction.class_names:
        raise ValueError(f"{label!r} is not one of the model's classes.")
    verdict = (
        Review.Verdict.ACCEPTED if label == prediction.predicted_class else Review.Verdict.CORRECTED
    )
    with transaction.atomic():
        review, created = Review.objects.update_or_create(
            prediction=prediction,
            defaults={
                "verdict": verdict,
                "label": label,
                "note": note.strip(),
                "reviewer": reviewer,
                "reviewed_at": timezone.now(),
            },
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=reviewer,
            request=request,
            obj=review,
            patient=prediction.scan.patient,
            detail={
                "review": verdict,
                "label": label,
                "model_label": prediction.predicted_class,
                "replaced": not created,
            },
        )
    return review


class DatasetNameTaken(ValueError):
    """Another data set took the name (between the form's check and the insert)."""


def dataset_register(
    *,
    name: str,
    task: str,
    kind: str,
    path: str,
    created_by: Any,
    description: str = "",
    attribution: str = "",
    class_names: list[str] | None = None,
) -> ImageDataset:
    """Register a data set after loading it once to check it; ValueError with the loader's
    message when the data are not of the right shape, DatasetNameTaken when the name is
    registered meanwhile (the unique name decides, not the form's earlier check)."""
    from diagnosis.ml.data import load_folder, load_npz

    if kind == ImageDataset.Kind.NPZ:
        data = load_npz(path, class_names=class_names or None)
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    elif kind == ImageDataset.Kind.FOLDER:
        data = load_folder(path)
        digest = ""
    else:
        raise ValueError("Reviewed-scan data sets are built with dataset_from_reviews.")
    try:
        with transaction.atomic():
            dataset = ImageDataset.objects.create(
                name=name,
                task=task,
                kind=kind,
                path=path,
                class_names=list(data.class_names),
                split_sizes={
                    split: int(len(data.split(split)[1])) for split in ("train", "val", "test")
                },
                image_shape=[*data.image_size, data.channels],
                sha256=digest,
                description=description,
                attribution=attribution,
                created_by=created_by,
            )
    except IntegrityError:
        raise DatasetNameTaken("A data set with this name is already registered.") from None
    return dataset


def training_start(
    *,
    dataset: ImageDataset,
    config: dict[str, Any],
    activate: bool,
    user: Any,
    request: Any = None,
) -> Job:
    """Queue a training run on the ml queue; the finished run becomes a model version
    (activated when ``activate``). Raises ValueError on settings the trainer rejects."""
    from diagnosis.ml.train import TrainConfig

    TrainConfig.from_dict(config)  # reject bad settings before anything is queued
    with transaction.atomic():
        job = job_create(
            kind="diagnosis.training",
            owner=user,
            title=f"Train {config.get('arch', 'model')} on {dataset.name}",
            params={"dataset_id": dataset.pk, "config": config, "activate": activate},
            target=dataset,
        )
    return job


DEMO_DATASET = "PneumoniaMNIST"
DEMO_TASK = "diagnosis.pneumonia"


def demo_imaging_ensure(*, user: Any, train: bool) -> str:
    """Register the shipped PneumoniaMNIST data set and, if no model of its task exists yet
    and ``train``, queue the first training run (put into service when it finishes).
    Idempotent; returns a line for the console ("" when nothing was done)."""
    from medai_site.registry.models import ModelVersion

    dataset = ImageDataset.objects.filter(name=DEMO_DATASET).first()
    notes = []
    if dataset is None:
        dataset = dataset_register(
            name=DEMO_DATASET,
            task=DEMO_TASK,
            kind=ImageDataset.Kind.NPZ,
            path=str(settings.BASE_DIR / "data" / "medmnist" / "pneumoniamnist.npz"),
            class_names=["normal", "pneumonia"],
            created_by=user,
            description="Paediatric chest X-rays, 28x28 (MedMNIST v2).",
            attribution="MedMNIST v2 (CC BY 4.0): Yang et al., Scientific Data 10:41 (2023); "
            "Kermany et al., Cell 2018.",
        )
        notes.append(f"registered the {DEMO_DATASET} data set")
    busy = Job.objects.filter(kind="diagnosis.training", status__in=["queued", "running"])
    if train and not ModelVersion.objects.filter(task=DEMO_TASK).exists() and not busy.exists():
        from diagnosis.ml.train import TrainConfig

        training_start(dataset=dataset, config=TrainConfig().to_dict(), activate=True, user=user)
        notes.append(
            "queued the first training run of the pneumonia model (a few minutes on "
            "CPU; it goes into service when done)"
        )
    return "; ".join(notes)


def dataset_from_reviews(*, task: str, created_by: Any) -> ImageDataset:
    """Register (or refresh) the data set of clinicians' reviewed scans for ``task``: each
    reviewed scan's key frame labelled with the clinician's reading, ready to add to the next
    training run. ValueError when there are too few reviews to train on."""
    from diagnosis.training import reviewed_scans_dataset
    from medai_site.registry.selectors import model_version_active

    active = model_version_active(task=task)
    if active is None:
        raise ValueError(f"No model of {task} is in service, so its classes are unknown.")
    base = ImageDataset.objects.filter(task=task).exclude(kind=ImageDataset.Kind.REVIEWS).first()
    classes = (active.training_data or {}).get("classes") or (base.class_names if base else [])
    shape = base.image_shape if base else [28, 28, 1]
    probe = ImageDataset(
        name=f"{task} reviews",
        task=task,
        kind=ImageDataset.Kind.REVIEWS,
        class_names=list(classes),
        image_shape=shape,
    )
    data = reviewed_scans_dataset(probe)
    dataset, _ = ImageDataset.objects.update_or_create(
        name=probe.name,
        defaults={
            "task": task,
            "kind": ImageDataset.Kind.REVIEWS,
            "class_names": list(classes),
            "image_shape": shape,
            "created_by": created_by,
            "split_sizes": {s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            "description": "Key frames of scans reviewed by clinicians, labelled with their "
            "reading (corrections included).",
        },
    )
    return dataset
