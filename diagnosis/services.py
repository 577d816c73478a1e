"""Every write in diagnosis: uploads (validate, de-identify, store, queue), predictions,
reviews, data sets and training runs."""

from __future__ import annotations

import errno
import hashlib
import hmac
import io
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from diagnosis.frames import prepare_frames
from diagnosis.imaging import (
    LoadedScan,
    RejectCode,
    ScanInfo,
    ScanRejected,
    deidentify,
    load_upload,
    scan_frames,
)
from diagnosis.imaging.burned_in import Verdict, burned_in_assessment, raster_assessment
from diagnosis.models import DicomSend, ImageDataset, Prediction, Review, Scan, ScanUpload
from diagnosis.pacs.outbox import prediction_sends_queue
from diagnosis.scope import ScopeAnswer
from diagnosis.selectors import FileRejection, UploadOutcome
from diagnosis.shadow import ITEM_TYPE as SHADOW_ITEM_TYPE
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.media import MediaWrites, media_writes
from medai_site.core.uploads import upload_size_problem
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create
from medai_site.patients.models import Patient
from medai_site.registry.shadow import shadow_results_label

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = settings.DIAGNOSIS_MAX_FILE_BYTES
MAX_PIXELS = settings.DIAGNOSIS_MAX_PIXELS
MAX_FILES_PER_UPLOAD = 500  # a CT or MR series often arrives as hundreds of files


class UploadTooLarge(Exception):
    """The upload as a whole would decode more values than one request may (HTTP 413);
    nothing of it was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _PixelBudget:
    """The decoded values one upload request may hold in total (defect: a few MB of highly
    compressible images decoding to gigabytes)."""

    limit: int
    used: int = 0

    def claim(self, samples: int) -> None:
        # Called by the intake from the header, before a file is decoded.
        if self.used + samples > self.limit:
            raise UploadTooLarge(
                f"This upload would decode more than {self.limit:,} pixel values in all "
                f"({self.used + samples:,} with this file), above this server's limit for one "
                "upload; nothing was stored. Upload the files in smaller batches."
            )
        self.used += samples


@dataclass
class _Prepared:
    name: str
    kind: str
    stored: bytes
    display: bytes
    info: ScanInfo
    frames: int
    is_color: bool
    deid_report: dict[str, Any]
    hold_reason: str
    route: dict[str, str] | None = None
    sop_instance_uid: str = ""


def patient_pseudonym(patient: Patient) -> str:
    """A stable pseudonym written into stored DICOM headers instead of the patient's identity;
    the link back lives only in MedAI's database."""
    digest = hmac.new(deid_uid_key(), f"patient:{patient.pk}".encode(), hashlib.sha256).hexdigest()
    return f"MEDAI-{digest[:16].upper()}"


def deid_uid_key() -> bytes:
    """The key that replaces DICOM UIDs consistently (uploads and `scan_classify` alike)."""
    # Configured per deployment, else derived from the secret key (also stable per install).
    if settings.MEDAI_DEID_UID_KEY:
        return settings.MEDAI_DEID_UID_KEY.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"medai-deid-uid-key", hashlib.sha256).digest()


def scan_router(*, task: str) -> Callable[[ScanInfo, Any], dict[str, str] | None] | None:
    """A function that names, for a file, the in-service imaging model that can take it when
    ``task``'s cannot or fits it less well (a dict with the task and why), else None; None
    itself when fewer than two imaging models are in service. A DICOM goes to the contract
    its header fits best; a PNG/JPEG, which has no header, to the first model whose
    contract takes its channels and size when the chosen one's does not."""
    from diagnosis.imaging.contract import InputContract, contract_file_terms, file_fit
    from diagnosis.scope import contract_fit
    from diagnosis.selectors import active_version_contracts

    contracts = active_version_contracts()
    if len(contracts) < 2 or task not in {v.task for v, _ in contracts}:
        return None

    def route(info: ScanInfo, dataset: Any) -> dict[str, str] | None:
        colour = info.samples_per_pixel > 1 or info.photometric_interpretation == "RGB"

        def refusal(contract: InputContract | None) -> str:
            return file_fit(
                contract_file_terms(contract),
                kind=info.kind,
                colour=colour,
                rows=info.rows,
                cols=info.cols,
            )

        def fit(contract: InputContract | None) -> int:
            if info.kind != "dicom":
                return -1 if refusal(contract) else 0
            if contract is None:
                return 0
            return contract_fit(info=info, dataset=dataset, contract=contract)

        chosen_contract = next(c for v, c in contracts if v.task == task)
        chosen = fit(chosen_contract)
        best_version, best = max(contracts, key=lambda vc: (fit(vc[1]), vc[0].task == task))
        if best_version.task == task or fit(best) <= chosen:
            return None
        reads = best.summary() if best is not None else "any image"
        if info.kind != "dicom":
            why = (
                f"{task} cannot take this {info.kind.upper()} image "
                f"({refusal(chosen_contract)}); {best_version.task} reads {reads}"
            )
        else:
            why = f"its header fits {best_version.task} ({reads}) better than {task}" + (
                " (whose input contract refuses it)" if chosen < 0 else ""
            )
        return {"task": best_version.task, "chosen": task, "why": why}

    return route


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


def _prepare(
    upload: UploadedFile,
    pseudonym: str,
    *,
    on_declared: Callable[[int], None],
    router: Callable[[ScanInfo, Any], dict[str, str] | None] | None = None,
    keep_uids: bool = False,
) -> _Prepared:
    """Check, decode, de-identify and render one file; ScanRejected with the reason.
    ``keep_uids``: the file is MedAI's own de-identified copy (the inbox's); its UIDs stay."""
    name = (upload.name or "upload")[:255]
    if upload.size is not None and (
        problem := upload_size_problem(upload.size, cap=MAX_FILE_BYTES)
    ):
        raise ScanRejected(RejectCode.TOO_LARGE, problem)
    data = upload.read(MAX_FILE_BYTES + 1)
    loaded = load_upload(
        data, max_bytes=MAX_FILE_BYTES, max_pixels=MAX_PIXELS, on_declared=on_declared
    )
    del data
    report: dict[str, Any] = {}
    hold_reason = ""
    sop_instance_uid = ""
    route = router(loaded.info, loaded.dataset) if router else None
    if loaded.info.kind == "dicom" and loaded.dataset is not None:
        assessment = burned_in_assessment(loaded.dataset)
        if assessment.verdict == Verdict.REJECT:
            raise ScanRejected(RejectCode.BURNED_IN_ANNOTATION, assessment.reason)
        if assessment.verdict == Verdict.HOLD:
            hold_reason = assessment.reason
        try:
            result = deidentify(
                loaded,
                uid_key=deid_uid_key(),
                patient_name=pseudonym,
                patient_id=pseudonym,
                keep_uids=keep_uids,
            )
        except RecursionError:
            raise ScanRejected(
                RejectCode.CORRUPT,
                "The DICOM file's structure is nested too deeply to be de-identified.",
            ) from None
        stored = result.data
        sop_instance_uid = result.sop_instance_uid
        report = _plain(result.report)
    else:
        assessment = raster_assessment(loaded.pixels[0])
        if assessment.verdict == Verdict.HOLD:
            hold_reason = assessment.reason
        stored = _png_bytes(loaded)
    prepared = prepare_frames(scan_frames(loaded))
    return _Prepared(
        name=name,
        kind=loaded.info.kind,
        stored=stored,
        display=prepared.npz,
        info=loaded.info,
        frames=prepared.frames,
        is_color=prepared.is_color,
        deid_report=report,
        hold_reason=hold_reason,
        route=route,
        sop_instance_uid=sop_instance_uid,
    )


@dataclass(frozen=True)
class ScreenedFile:
    """A file that passed the upload's checks: its de-identified bytes (DICOM) and what it is."""

    name: str
    kind: str
    data: bytes
    modality: str
    hold_reason: str
    sop_instance_uid: str = ""


def scan_files_screen(
    *, files: list[UploadedFile], pseudonym: str
) -> Iterator[ScreenedFile | FileRejection]:
    """Run files through the upload's checks, caps (per file and per request, UploadTooLarge)
    and de-identification under ``pseudonym``, storing nothing: for files that have no
    patient yet (the unmatched-studies inbox). Yields each file's outcome in turn, so only
    one file's bytes are held at a time."""
    budget = _PixelBudget(settings.DIAGNOSIS_MAX_REQUEST_PIXELS)
    for upload in files[:MAX_FILES_PER_UPLOAD]:
        try:
            item = _prepare(upload, pseudonym, on_declared=budget.claim)
        except ScanRejected as exc:
            yield FileRejection(upload.name or "upload", exc.message, exc.code.value)
            continue
        yield ScreenedFile(
            name=item.name,
            kind=item.kind,
            data=item.stored,
            modality=(item.info.modality or "")[:16],
            hold_reason=item.hold_reason,
            sop_instance_uid=item.sop_instance_uid,
        )
        del item
    for upload in files[MAX_FILES_PER_UPLOAD:]:
        yield FileRejection(
            upload.name or "upload",
            f"Not accepted: at most {MAX_FILES_PER_UPLOAD} files per upload.",
        )


def _plain(report: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(report) if is_dataclass(report) and not isinstance(report, type) else dict(report)
    return {k: (list(v) if isinstance(v, (tuple, set, frozenset)) else v) for k, v in data.items()}


def scan_upload(
    *,
    patient: Patient,
    files: list[UploadedFile],
    uploaded_by: Any,
    task: str,
    request: Any = None,
    deidentified: bool = False,
    into: ScanUpload | None = None,
    job_delay: float = 0,
) -> UploadOutcome:
    """Validate, de-identify and store each file, one at a time; every rejected file is
    listed with its reason while the others go through. Files that may show burned-in text
    are stored but held for a clinician's confirmation. Accepted scans get one inference job.
    UploadTooLarge when the files would decode more than the per-request bound. Any failure
    (ENOSPC included) leaves no row and no file; when no file is accepted nothing is stored
    and ``upload`` is None. ``deidentified``: the files are MedAI's own de-identified copies
    (an assigned inbox study), whose UIDs are kept so that they are replaced only once.
    ``into``: an upload of ``patient`` the scans are added to (no new upload; its still
    queued job takes them, otherwise a new job classifies only them). ``job_delay``: a new
    job runs no sooner than this many seconds from now."""
    budget = _PixelBudget(settings.DIAGNOSIS_MAX_REQUEST_PIXELS)
    router = scan_router(task=task)
    rejected: list[FileRejection] = []
    outcome = UploadOutcome(upload=None, rejected=rejected)
    with media_writes() as writes, transaction.atomic():
        for upload in files[:MAX_FILES_PER_UPLOAD]:
            # One file at a time: its decoded pixels are released before the next is read,
            # so memory is bounded by the largest file, not by the whole upload.
            try:
                item = _prepare(
                    upload,
                    patient_pseudonym(patient),
                    on_declared=budget.claim,
                    router=router,
                    keep_uids=deidentified,
                )
            except ScanRejected as exc:
                rejected.append(FileRejection(upload.name or "upload", exc.message, exc.code.value))
                continue
            if outcome.upload is None:
                outcome.upload = into or ScanUpload.objects.create(
                    patient=patient, uploaded_by=uploaded_by, task=task
                )
            scan = _scan_store(item=item, record=outcome.upload, writes=writes)
            (outcome.held if scan.held else outcome.scans).append(scan)
            del item
        for upload in files[MAX_FILES_PER_UPLOAD:]:
            rejected.append(
                FileRejection(
                    upload.name or "upload",
                    f"Not accepted: at most {MAX_FILES_PER_UPLOAD} files per upload.",
                )
            )
        record = outcome.upload
        if record is not None:
            earlier = list(into.rejected) if into is not None else []
            record.rejected = [
                *earlier,
                *({"name": r.name, "message": r.message} for r in rejected),
            ]
            record.save(update_fields=["rejected"])
        # One job per model: a DICOM whose header fits another in-service model's input
        # contract better than the chosen one's is classified by that model.
        by_task: dict[str, list[Scan]] = {}
        for scan in outcome.scans:
            by_task.setdefault((scan.info.get("route") or {}).get("task") or task, []).append(scan)
        # No model of that task in service (none at all yet, or retired meanwhile): the scans
        # are kept and wait for one, never refused.
        outcome.awaiting = _awaiting_model_mark(by_task)
        if into is not None and record is not None:
            outcome.jobs = _inference_jobs_join(
                record=record, owner=uploaded_by, by_task=by_task, delay=job_delay
            )
        for routed_task, scans in sorted(by_task.items(), key=lambda kv: kv[0] != task):
            if record is None or into is not None:
                break
            outcome.jobs.append(
                _inference_job(
                    record=record,
                    owner=uploaded_by,
                    count=len(scans),
                    task=routed_task,
                    scan_ids=[s.pk for s in scans] if len(by_task) > 1 else None,
                    delay=job_delay,
                )
            )
        outcome.job = outcome.jobs[0] if outcome.jobs else None
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=uploaded_by,
            request=request,
            obj=record,
            patient=patient,
            detail={
                "scans_uploaded": [s.pk for s in outcome.scans],
                "scans_held": [s.pk for s in outcome.held],
                "rejected": len(rejected),
                **({"added_to_upload": True} if into is not None else {}),
                "routed": {
                    str(s.pk): s.info["route"]["task"] for s in outcome.scans if s.info.get("route")
                },
            },
        )
    return outcome


def _scan_store(*, item: _Prepared, record: ScanUpload, writes: MediaWrites) -> Scan:
    """Write one prepared file's stored and display files and its row."""
    info = item.info
    scan = Scan(
        patient=record.patient,
        upload=record,
        uploaded_by=record.uploaded_by,
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
            **({"route": item.route} if item.route else {}),
        },
        deid_report=item.deid_report,
        held=bool(item.hold_reason),
        hold_reason=item.hold_reason,
    )
    writes.save(scan.file, "scan", ContentFile(item.stored))
    writes.save(scan.display, "display", ContentFile(item.display))
    scan.save()
    return scan


INFERENCE_JOB_KIND = "diagnosis.inference"


def _inference_job(
    *,
    record: ScanUpload,
    owner: Any,
    count: int,
    task: str | None = None,
    scan_ids: list[int] | None = None,
    delay: float = 0,
) -> Job:
    params: dict[str, Any] = {"upload_id": record.pk, "task": task or record.task}
    if scan_ids is not None:
        params["scan_ids"] = scan_ids
    return job_create(
        kind=INFERENCE_JOB_KIND,
        owner=owner,
        patient=record.patient,
        # No patient identifier in the title: staff (model admins) see job titles; the
        # patient is on the job's own field, scoped and audited.
        title=_inference_title(count),
        params=params,
        target=record,
        delay=delay,
    )


def _awaiting_model_mark(by_task: dict[str, list[Scan]]) -> list[Scan]:
    """Take out of ``by_task`` (in place) the tasks with no model in service and mark their
    scans as waiting for one; returns those scans."""
    from diagnosis.selectors import active_versions

    in_service = set(active_versions().values_list("task", flat=True))
    waiting = [scan for t in list(by_task) if t not in in_service for scan in by_task.pop(t)]
    if waiting:
        Scan.objects.filter(pk__in=[s.pk for s in waiting]).update(
            awaiting_model_since=timezone.now()
        )
    return waiting


def upload_scans_await_model(*, upload: ScanUpload, scan_ids: list[int] | None) -> int:
    """Mark the released, never-answered scans of ``upload`` (only ``scan_ids`` when given)
    as waiting for a model: the job meant to classify them found none in service. Returns how
    many wait (idempotent)."""
    scans = upload.scans.filter(held=False, predictions__isnull=True)
    if scan_ids is not None:
        scans = scans.filter(pk__in=scan_ids)
    scans.filter(awaiting_model_since__isnull=True).update(awaiting_model_since=timezone.now())
    return scans.count()


def scans_awaiting_model_queue() -> list[Job]:
    """Queue the released scans stored while no model could classify them, for each one that
    now can: the model its header was routed to or its upload asked for when that is in
    service; a scan uploaded with no model named (none was in service) takes the first imaging
    model in service. One job per upload and model; each scan queued once (idempotent, safe
    to run concurrently). Returns the jobs made."""
    from diagnosis.selectors import active_versions

    in_service = sorted(set(active_versions().values_list("task", flat=True)))
    if not in_service:
        return []
    jobs: list[Job] = []
    with transaction.atomic():
        waiting = (
            Scan.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(awaiting_model_since__isnull=False, held=False)
            .select_related("upload", "upload__patient")
            .order_by("pk")
        )
        groups: dict[tuple[int, str], list[Scan]] = {}
        for scan in waiting[:1000]:
            asked = (scan.info.get("route") or {}).get("task") or scan.upload.task
            task = asked if asked else in_service[0]
            if task in in_service:
                groups.setdefault((scan.upload_id, task), []).append(scan)
        for (_, task), scans in sorted(groups.items()):
            record = scans[0].upload
            jobs.append(
                _inference_job(
                    record=record,
                    owner=record.uploaded_by,
                    count=len(scans),
                    task=task,
                    scan_ids=[s.pk for s in scans],
                )
            )
        queued = [s.pk for scans in groups.values() for s in scans]
        Scan.objects.filter(pk__in=queued).update(awaiting_model_since=None)
    return jobs


def scans_awaiting_model_on_activation(task: str) -> None:
    """Registry hook: an imaging model was just put into service, so the scans waiting for one
    are queued now rather than at the next minute's sweep (which retries if this fails)."""
    try:
        scans_awaiting_model_queue()
    except Exception:
        logger.exception("Queuing the scans waiting for a model failed; the sweep will retry.")


def _inference_title(count: int) -> str:
    return f"Classify {count} scan{'s' if count != 1 else ''}"


def _inference_jobs_join(
    *, record: ScanUpload, owner: Any, by_task: dict[str, list[Scan]], delay: float
) -> list[Job]:
    """The jobs that classify scans just added to an existing upload: each model's job of
    the upload that is still queued takes them (it reads its scans when it runs; its row,
    locked here, cannot be claimed before this transaction commits), otherwise a new job
    classifies only them (a finished job's answers are kept: classification is idempotent
    per scan and version)."""
    if not by_task:
        return []
    added = {scan.pk for scans in by_task.values() for scan in scans}
    queued = list(
        Job.objects.select_for_update()
        .filter(
            kind=INFERENCE_JOB_KIND,
            target_type=ContentType.objects.get_for_model(ScanUpload),
            target_id=record.pk,
            status=Job.Status.QUEUED,
        )
        .order_by("pk")
    )

    def routed(scan: Scan) -> str:
        return (scan.info.get("route") or {}).get("task") or record.task

    for job in queued:
        if job.params.get("scan_ids") is None:
            # Pinned to the scans it was made for, so that scans routed to another model
            # never reach this one.
            mine = job.params.get("task") or record.task
            earlier = record.scans.filter(held=False).exclude(pk__in=added).order_by("pk")
            job.params["scan_ids"] = [s.pk for s in earlier if routed(s) == mine]
    jobs: list[Job] = []
    for routed_task, scans in sorted(by_task.items(), key=lambda kv: kv[0] != record.task):
        ids = [s.pk for s in scans]
        waiting = next(
            (j for j in queued if (j.params.get("task") or record.task) == routed_task), None
        )
        if waiting is None:
            jobs.append(
                _inference_job(
                    record=record,
                    owner=owner,
                    count=len(ids),
                    task=routed_task,
                    scan_ids=ids,
                    delay=delay,
                )
            )
            continue
        waiting.params["scan_ids"] = [*waiting.params["scan_ids"], *ids]
        jobs.append(waiting)
    for job in queued:
        job.title = _inference_title(len(job.params["scan_ids"]))
        job.save(update_fields=["params", "title"])
    return jobs


def scan_hold_confirm(*, scan: Scan, user: Any, request: Any = None) -> Job | None:
    """A clinician of the care team confirms that a held scan shows no identifying text:
    it is released and queued for classification (audited with who and when), or left waiting
    for a model when none that can classify it is in service (None). Idempotent: a scan no
    longer held returns None and changes nothing."""
    with transaction.atomic():
        locked = (
            Scan.objects.select_for_update().select_related("upload", "patient").get(pk=scan.pk)
        )
        if not locked.held:
            return None
        locked.held = False
        locked.hold_confirmed_by = user
        locked.hold_confirmed_at = timezone.now()
        locked.save(update_fields=["held", "hold_confirmed_by", "hold_confirmed_at"])
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=locked,
            patient=locked.patient,
            detail={"burned_in_hold": "confirmed no identifying text visible"},
        )
        routed = (locked.info.get("route") or {}).get("task") or locked.upload.task
        if _awaiting_model_mark({routed: [locked]}):
            return None
        return _inference_job(
            record=locked.upload,
            owner=user,
            count=1,
            task=routed,
            scan_ids=[locked.pk],
        )


def scan_hold_discard(*, scan: Scan, user: Any, request: Any = None) -> bool:
    """A clinician discards a held scan (identifying text visible): its row goes and its
    files are deleted once that commits; the upload keeps a line saying so. Audited.
    Returns False (nothing done) when the scan is not held any more."""
    with transaction.atomic():
        locked = (
            Scan.objects.select_for_update()
            .select_related("upload", "patient")
            .filter(pk=scan.pk, held=True)
            .first()
        )
        if locked is None:
            return False
        upload = ScanUpload.objects.select_for_update().get(pk=locked.upload_id)
        upload.rejected = [
            *upload.rejected,
            {
                "name": locked.original_name,
                "message": "Discarded by a clinician: identifying text was visible.",
            },
        ]
        upload.save(update_fields=["rejected"])
        names = [locked.file.name, locked.display.name]
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=upload,
            patient=locked.patient,
            detail={"burned_in_hold": "discarded", "scan": locked.pk},
        )
        locked.delete()
        # Only once the row is gone for good; a rollback keeps both.
        transaction.on_commit(lambda: _files_delete(names), robust=True)
    return True


def _files_delete(names: list[str]) -> None:
    for name in names:
        if name:
            default_storage.delete(name)


def risk_of(probabilities: Any) -> float:
    """The worklist's sort key: the probability that the scan is not the first ('normal')
    class of the data set."""
    values = list(probabilities)
    return float(1.0 - values[0]) if len(values) > 1 else float(values[0])


def _heatmaps_npz(heatmaps: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        # numpy's stub types **kwds as allow_pickle's bool; they are the arrays to save.
        **{f"heatmap_{i}": h.astype(np.float16) for i, h in enumerate(heatmaps)},  # type: ignore[arg-type]
    )
    return buffer.getvalue()


def _scored_fields(result: dict[str, Any]) -> dict[str, Any]:
    probabilities = result["probabilities"]
    return {
        "probabilities": probabilities,
        "predicted_class": result["predicted_class"],
        "predicted_index": result["predicted_index"],
        "risk": risk_of(probabilities[c] for c in result["class_names"]),
        "confidence": result["confidence"],
        "uncertainty": result["uncertainty"],
        "key_frame": result.get("key_frame", 0),
        "frames": result.get("frames", []),
    }


@dataclass(frozen=True)
class ScanAnswer:
    """One scan's answer from a job, to store: the scope checks' verdict, and the result and
    heat-maps when it was scored."""

    scan: Scan
    scope: ScopeAnswer
    result: dict[str, Any] | None = None
    heatmaps: list[np.ndarray] | None = None


def predictions_store(
    *,
    answers: list[ScanAnswer],
    model_version: Any,
    job: Job | None,
    class_names: list[str],
    threshold: float | None = None,
) -> list[Prediction]:
    """Store each scan's answer from a model version (in ``answers`` order): probabilities,
    risk and heat-maps from its result when its scope lets it be scored, else only the reason
    (and the learned score) with no probability and an empty heat-map file; one query for
    the existing answers and one insert for the new ones. Idempotent: a scan this version
    already answered gets its existing row back (a redelivered task writes nothing twice)."""
    existing = {
        p.scan_id: p
        for p in Prediction.objects.filter(
            scan__in=[a.scan for a in answers], model_version=model_version
        )
    }
    fresh: list[Prediction] = []
    # Nested in the caller's media_writes (the job's finishing transaction), the heat-maps
    # are deleted if anything later in that transaction fails.
    with media_writes() as writes, transaction.atomic():
        for answer in answers:
            if answer.scan.pk in existing:
                continue
            scored = answer.scope.scored and answer.result is not None
            prediction = Prediction(
                scan=answer.scan,
                model_version=model_version,
                job=job,
                class_names=list(class_names),
                threshold=threshold,
                scope=answer.scope.scope,
                scope_check=answer.scope.check,
                scope_reason=answer.scope.reason,
                ood_score=answer.scope.ood_score,
                ood_threshold=answer.scope.ood_threshold,
                **(_scored_fields(answer.result) if scored and answer.result is not None else {}),
            )
            content = _heatmaps_npz(list(answer.heatmaps or []) if scored else [])
            writes.save(prediction.heatmaps, "heatmaps", ContentFile(content))
            existing[answer.scan.pk] = prediction
            fresh.append(prediction)
        Prediction.objects.bulk_create(fresh)
    return [existing[a.scan.pk] for a in answers]


def prediction_store(
    *,
    scan: Scan,
    model_version: Any,
    job: Job | None,
    class_names: list[str],
    scope: ScopeAnswer,
    result: dict[str, Any] | None = None,
    heatmaps: list[np.ndarray] | None = None,
    threshold: float | None = None,
) -> Prediction:
    """predictions_store for one scan: returns its stored answer (the existing row if this
    version already answered for the scan)."""
    (prediction,) = predictions_store(
        answers=[ScanAnswer(scan=scan, scope=scope, result=result, heatmaps=heatmaps)],
        model_version=model_version,
        job=job,
        class_names=class_names,
        threshold=threshold,
    )
    return prediction


class OverrideRefused(ValueError):
    """A score-anyway request that cannot be honoured, with the clinician's message."""


OVERRIDE_JOB_KIND = "diagnosis.override"


def _override_refusal(prediction: Prediction) -> str:
    """Why the prediction's own version cannot score its scan now ("" when it can): the
    version was retired or failed since it answered, or a file it needs is gone."""
    version = prediction.model_version
    if version.status in (version.Status.RETIRED, version.Status.FAILED):
        # A retired version was taken out of service for a reason; its probabilities would
        # carry no accuracy anyone still vouches for, so it scores nothing new.
        return (
            f"{version} was {version.get_status_display().lower()} after it answered for this "
            "scan; MedAI no longer scores with it. The version in service reads new uploads "
            "of the scan."
        )
    if not version.artifact.name or not version.artifact.storage.exists(version.artifact.name):
        return (
            f"The model file of {version} is missing from storage, so it cannot score this "
            "scan. Ask a model admin to restore or re-import it; nothing was changed."
        )
    scan = prediction.scan
    if not scan.display.name or not scan.display.storage.exists(scan.display.name):
        return (
            "This scan's image file is missing from storage, so it cannot be scored; upload "
            "it again. Nothing was changed."
        )
    return ""


def prediction_override(
    *, prediction: Prediction, user: Any, reason: str, request: Any = None
) -> Prediction | Job:
    """Score an out-of-scope scan anyway at a clinician's request with the prediction's own
    model version: a series of at most DIAGNOSIS_OVERRIDE_SYNC_FRAMES frames now (returns the scored
    Prediction), a longer one by a job (returns the Job; the request is kept on the
    prediction until the job fills it). Idempotent: an answer already overridden is returned
    as it is and a job already under way is returned instead of a second one. OverrideRefused
    (nothing written) for a blank reason, an answer that is not out of scope, a retired
    version, or a model or image file that is missing or unreadable."""
    reason = (reason or "").strip()
    if not reason:
        raise OverrideRefused("Say why the scan should be scored outside the model's scope.")
    current = Prediction.objects.select_related("model_version", "scan").get(pk=prediction.pk)
    if current.overridden:
        return current
    if current.scope != Prediction.Scope.OUT_OF_SCOPE:
        raise OverrideRefused("This answer is within the model's scope; it is already scored.")
    refusal = _override_refusal(current)
    if refusal:
        raise OverrideRefused(refusal)
    # A long series is scored by a job on the ml queue, not inside the web request.
    if current.scan.frames <= settings.DIAGNOSIS_OVERRIDE_SYNC_FRAMES:
        return prediction_override_score(
            prediction=current, user=user, reason=reason, request=request
        )
    return _override_job(prediction=current, user=user, reason=reason)


def _override_job(*, prediction: Prediction, user: Any, reason: str) -> Job:
    """Queue the scoring of a long series (or return the job already under way)."""
    with transaction.atomic():
        locked = Prediction.objects.select_for_update().get(pk=prediction.pk)
        if locked.overridden:
            raise OverrideRefused("This scan has just been scored anyway; reload the page.")
        running = override_job_in_flight(prediction=locked)
        if running is not None:
            return running
        # The request waits on the prediction (override_at stays empty until it is scored),
        # not in the job's parameters: staff see jobs, and the reason is clinical text.
        locked.override_by = user
        locked.override_reason = reason[:2000]
        locked.save(update_fields=["override_by", "override_reason"])
        return job_create(
            kind=OVERRIDE_JOB_KIND,
            owner=user,
            patient=locked.scan.patient,
            title=f"Score a series of {locked.scan.frames} frames outside the model's scope",
            params={"prediction_id": locked.pk},
            target=locked,
        )


def override_job_in_flight(*, prediction: Prediction) -> Job | None:
    """The queued or running score-anyway job of a prediction, if any."""
    from django.contrib.contenttypes.models import ContentType

    return (
        Job.objects.filter(
            kind=OVERRIDE_JOB_KIND,
            target_type=ContentType.objects.get_for_model(Prediction),
            target_id=prediction.pk,
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
        )
        .order_by("-pk")
        .first()
    )


def prediction_override_score(
    *,
    prediction: Prediction,
    user: Any,
    reason: str,
    request: Any = None,
    on_loaded: Callable[[int], None] | None = None,
) -> Prediction:
    """Run the prediction's own model version on its scan (outside any transaction), then
    fill probabilities, risk and heat-maps, record who, when and why, and audit it, in one
    transaction. Idempotent: an answer already overridden is returned unchanged, with no
    second audit event. OverrideRefused when the model or image cannot be loaded (nothing
    written). ``on_loaded(frames)`` is told before the forward pass (a job's progress)."""
    from diagnosis.artifacts import version_bundle
    from diagnosis.frames import model_images
    from diagnosis.ml.predict import predict
    from diagnosis.ml.series import aggregate_series
    from medai_site.jobs.exceptions import JobError

    current = Prediction.objects.select_related("model_version", "scan").get(pk=prediction.pk)
    if current.overridden:
        return current
    scan = current.scan
    version = current.model_version
    try:
        bundle = version_bundle(version)
    except (OSError, ValueError, RuntimeError, JobError) as exc:
        # Missing file, sha256 mismatch (ArtifactCorrupt), a file that is not an artifact.
        logger.warning("score anyway: %s cannot be loaded: %s", version, exc)
        raise OverrideRefused(
            f"The model file of {version} cannot be loaded ({type(exc).__name__}), so it "
            "cannot score this scan. Ask a model admin to check the version; nothing was "
            "changed."
        ) from None
    try:
        with scan.display.open("rb") as handle, np.load(handle) as npz:
            images = model_images(npz)
    except (OSError, ValueError, KeyError):
        raise OverrideRefused(
            "This scan's image file is missing or unreadable, so it cannot be scored; upload "
            "it again. Nothing was changed."
        ) from None
    if on_loaded is not None:
        on_loaded(len(images))
    series = aggregate_series(bundle, predict(bundle, images))
    result = series.to_dict()
    old_heatmaps = ""
    with media_writes() as writes, transaction.atomic():
        locked = Prediction.objects.select_for_update().get(pk=current.pk)
        if locked.overridden:  # a concurrent request (or a redelivered job) got here first
            return locked
        old_heatmaps = locked.heatmaps.name
        for name, value in _scored_fields(result).items():
            setattr(locked, name, value)
        if locked.ood_score is None and series.ood_score is not None:
            locked.ood_score, locked.ood_threshold = series.ood_score, series.ood_threshold
        locked.override_by = user
        locked.override_at = timezone.now()
        locked.override_reason = reason[:2000]
        writes.save(locked.heatmaps, "heatmaps", ContentFile(_heatmaps_npz(series.heatmaps)))
        locked.save()
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=locked,
            patient=scan.patient,
            detail={
                "scope_override": "scored outside the model's scope",
                "scope_check": locked.scope_check,
                "scope_reason": locked.scope_reason,
                "override_reason": locked.override_reason,
                "model_version": locked.model_version_id,
                "predicted_class": locked.predicted_class,
                "frames": len(images),
            },
        )
        transaction.on_commit(lambda: _files_delete([old_heatmaps]), robust=True)
    return locked


def review_record(
    *, prediction: Prediction, reviewer: Any, label: str, note: str = "", request: Any = None
) -> Review:
    """Record (or replace) the clinician's verdict on a prediction: accepted when the label
    matches the model's, corrected otherwise. Audited. The new SR revision is queued for the
    PACS destinations that send after review."""
    if label not in prediction.class_names:
        raise ValueError(f"{label!r} is not one of the model's classes.")
    if not prediction.scored:
        raise ValueError(
            "This scan is outside the model's scope and was not scored; ask for a score "
            "anyway first (the override is recorded), then review it."
        )
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
        prediction_sends_queue(
            prediction=prediction, trigger=DicomSend.Trigger.REVIEW, owner=reviewer
        )
        # The clinician's label is the truth a shadow version's answer is measured against.
        shadow_results_label(item_type=SHADOW_ITEM_TYPE, item_id=prediction.pk, label=label)
    return review


class DatasetRejected(ValueError):
    """A data set refused with a message for the model admin and the HTTP status to answer
    with (400 malformed, 413 over a cap, 507 out of disk space)."""

    def __init__(self, message: str, *, status: int = 400, field: str = "path") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field  # the form field the message belongs to


def _dataset_check_queue(*, dataset: ImageDataset, user: Any, train: dict[str, Any] | None) -> Job:
    return job_create(
        kind="diagnosis.dataset_check",
        owner=user,
        title=f"Check the data set {dataset.name}",
        params={"dataset_id": dataset.pk, "train": train},
        target=dataset,
    )


def _dataset_create(**fields: Any) -> ImageDataset:
    try:
        with transaction.atomic():
            return ImageDataset.objects.create(status=ImageDataset.Status.CHECKING, **fields)
    except IntegrityError:
        # The unique name decides a race with another registration, not the form's check.
        raise DatasetRejected(
            "A data set with this name is already registered.", field="name"
        ) from None


def _contract_or_default(contract: dict[str, Any] | None, *, names: list[str]) -> dict[str, Any]:
    """The stated contract (checked), or the MedMNIST default `names` point to ({} if none)."""
    from diagnosis.imaging.contract import InputContract, contract_declare

    if contract is None:
        return contract_declare({}, names=names)
    if contract:
        try:
            InputContract.from_dict({**contract, "min_size": contract.get("min_size") or (1, 1)})
        except ValueError as exc:
            raise DatasetRejected(
                f"The input contract is not valid: {exc}", field="reads"
            ) from None
    return dict(contract)


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
    contract: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    request: Any = None,
) -> ImageDataset:
    """Register a data set on a server path inside MEDAI_DATASET_ROOTS (never MEDIA_ROOT):
    the row starts "checking" and a job loads and checks it. DatasetRejected, with one
    message whether or not the path exists, for any other path. ``contract`` is the input
    contract as contract_declare returns it (None: the MedMNIST default the name or path
    points to). ``train`` (a training config plus "activate") queues a training run once the
    check has passed."""
    from diagnosis.training import DatasetPathRefused, dataset_path_confine

    if kind not in (ImageDataset.Kind.NPZ, ImageDataset.Kind.FOLDER):
        raise DatasetRejected("Reviewed-scan data sets are built with dataset_from_reviews.")
    try:
        resolved = dataset_path_confine(path)
    except DatasetPathRefused as exc:
        raise DatasetRejected(str(exc)) from None
    with transaction.atomic():
        dataset = _dataset_create(
            name=name,
            task=task,
            kind=kind,
            path=str(resolved),
            class_names=list(class_names or []),
            description=description,
            attribution=attribution,
            contract=_contract_or_default(contract, names=[name, str(resolved)]),
            created_by=created_by,
        )
        _dataset_check_queue(dataset=dataset, user=created_by, train=train)
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=created_by,
            request=request,
            obj=dataset,
            detail={
                "dataset_registered": name,
                "path": str(resolved),
                "contract": dataset.contract,
            },
        )
    return dataset


def _copy_capped(source: UploadedFile, target: Path, cap: int) -> int:
    """Copy an upload to ``target`` chunk by chunk; DatasetRejected (413) past ``cap`` bytes."""
    written = 0
    with open(target, "xb") as handle:
        for chunk in source.chunks():
            written += len(chunk)
            if written > cap:
                raise DatasetRejected(
                    upload_size_problem(None, cap=cap, purpose=" for data sets"), status=413
                )
            handle.write(chunk)
    return written


def dataset_upload(
    *,
    name: str,
    task: str,
    file: UploadedFile,
    created_by: Any,
    class_names: list[str] | None = None,
    description: str = "",
    attribution: str = "",
    contract: dict[str, Any] | None = None,
    request: Any = None,
) -> ImageDataset:
    """Store a data set uploaded from the browser (a MedMNIST-style .npz, or a .zip of one
    folder of PNG/JPEG images per class) under MEDIA_ROOT/datasets/<id>/ after checking the
    archive's directory and headers, and queue the job that loads and checks it. Raises
    DatasetRejected (400/413/507); on any failure no row and no file remain. ``contract`` as
    for dataset_register (None: the default the name or file name points to)."""
    from diagnosis.imaging.dataset_archive import ArchiveRejected, check_npz, extract_image_zip
    from diagnosis.training import archive_limits

    suffix = Path(file.name or "").suffix.lower()
    if suffix not in (".npz", ".zip"):
        raise DatasetRejected(
            "Upload a MedMNIST-style .npz file or a .zip of one folder of images per class."
        )
    kind = ImageDataset.Kind.NPZ if suffix == ".npz" else ImageDataset.Kind.FOLDER
    cap = settings.MEDAI_DATASET_UPLOAD_MAX_BYTES
    if file.size is not None and (
        problem := upload_size_problem(file.size, cap=cap, purpose=" for data sets")
    ):
        raise DatasetRejected(problem, status=413)
    if file.size == 0:
        raise DatasetRejected("The uploaded file is empty.")
    base = Path(settings.MEDIA_ROOT) / "datasets"
    staging: Path | None = None
    stored: Path | None = None
    try:
        base.mkdir(parents=True, exist_ok=True)
        # Staged next to its final place (same file system), so moving it in is one rename.
        staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=base))
        fields: dict[str, Any] = {}
        if kind == ImageDataset.Kind.NPZ:
            _copy_capped(file, staging / "data.npz", cap)
            summary = check_npz(staging / "data.npz", archive_limits())
            relative = "data.npz"
            fields = {"split_sizes": summary.split_sizes, "image_shape": list(summary.image_shape)}
        else:
            _copy_capped(file, staging / "upload.zip", cap)
            extract_image_zip(staging / "upload.zip", staging / "images", archive_limits())
            (staging / "upload.zip").unlink()
            relative = "images"
        with transaction.atomic():
            dataset = _dataset_create(
                name=name,
                task=task,
                kind=kind,
                uploaded=True,
                class_names=list(class_names or []),
                description=description,
                attribution=attribution,
                contract=_contract_or_default(contract, names=[name, file.name or ""]),
                created_by=created_by,
                **fields,
            )
            stored = base / str(dataset.pk)
            if stored.exists():  # left by a crash; the id is new, so no row owns it
                shutil.rmtree(stored)
            staging.rename(stored)
            staging = None
            dataset.path = f"datasets/{dataset.pk}/{relative}"
            dataset.save(update_fields=["path"])
            _dataset_check_queue(dataset=dataset, user=created_by, train=None)
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=created_by,
                request=request,
                obj=dataset,
                detail={
                    "dataset_uploaded": name,
                    "file": (file.name or "")[:200],
                    "contract": dataset.contract,
                },
            )
    except BaseException as exc:
        for folder in (staging, stored):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, ArchiveRejected):
            raise DatasetRejected(exc.message, status=413 if exc.too_large else 400) from None
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DatasetRejected(
                "The server ran out of disk space while storing the data set; nothing was "
                "kept. Ask your MedAI administrator to free space, then upload it again.",
                status=507,
            ) from exc
        raise
    return dataset


def dataset_check_failed(*, dataset: ImageDataset, message: str) -> bool:
    """Mark a data set that is still being checked as failed with ``message`` (an uploaded
    one's files are removed); idempotent, returns whether this call changed it."""
    with transaction.atomic():
        changed = ImageDataset.objects.filter(
            pk=dataset.pk, status=ImageDataset.Status.CHECKING
        ).update(status=ImageDataset.Status.FAILED, message=message[:2000])
    if changed and dataset.uploaded:
        # Removed once the failure is recorded: the files are of no further use.
        shutil.rmtree(Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk), ignore_errors=True)
    return bool(changed)


def dataset_delete(*, dataset: ImageDataset, user: Any, request: Any = None) -> None:
    """Delete a data set; an uploaded one's files under MEDIA_ROOT/datasets/<id>/ go once the
    deletion commits (never before: a rolled-back deletion keeps its files). Audited."""
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk) if dataset.uploaded else None
    with transaction.atomic():
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=dataset,
            detail={"dataset_deleted": dataset.name},
        )
        dataset.delete()
        if folder is not None:
            transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


@transaction.atomic
def dataset_check_passed(
    *, dataset: ImageDataset, data: Any, preview: dict[str, Any], sha256: str
) -> bool:
    """Mark a data set that is still being checked as ready, with the classes, split sizes
    and image shape read from ``data``; idempotent, returns whether this call changed it."""
    return bool(
        ImageDataset.objects.filter(pk=dataset.pk, status=ImageDataset.Status.CHECKING).update(
            status=ImageDataset.Status.READY,
            message="",
            class_names=list(data.class_names),
            split_sizes={s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            image_shape=[*data.image_size, data.channels],
            sha256=sha256,
            preview=preview,
        )
    )


def training_start(
    *,
    dataset: ImageDataset,
    config: dict[str, Any],
    activate: bool,
    user: Any,
    request: Any = None,
) -> Job:
    """Queue a training run on the ml queue; the finished run becomes a model version
    (activated when ``activate``). Raises ValueError on settings the trainer rejects or a
    data set that has not passed its check."""
    from diagnosis.ml.train import TrainConfig

    if dataset.status != ImageDataset.Status.READY:
        raise ValueError(
            f"{dataset.name} is not ready to train on ({dataset.get_status_display().lower()})."
        )
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
    # The reviewed scans are what the model in service accepted, so its contract holds.
    contract = base.contract if base and base.contract else (active.metrics or {}).get("contract")
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
            # Loaded and checked just above, so ready at once.
            "status": ImageDataset.Status.READY,
            "message": "",
            "class_names": list(classes),
            "image_shape": shape,
            "contract": dict(contract or {}),
            "created_by": created_by,
            "split_sizes": {s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            "description": "Key frames of scans reviewed by clinicians, labelled with their "
            "reading (corrections included).",
        },
    )
    return dataset
