"""Writes for studies received over DICOM: match the patient before de-identification, then
the browser upload's own intake (scan_upload); an unmatched study waits de-identified in the
inbox until a clinician assigns it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from diagnosis.imaging.patient_match import DicomIdentity, identity_read, study_match
from diagnosis.models import ScanUpload, UnmatchedInstance, UnmatchedStudy
from diagnosis.pacs.selectors import mrn_candidates, receiver_task
from diagnosis.selectors import FileRejection, UploadOutcome
from diagnosis.services import deid_uid_key, scan_files_screen, scan_upload
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.media import media_writes
from medai_site.jobs.models import Job
from medai_site.patients.models import Patient

logger = logging.getLogger(__name__)

RECEIVER_USERNAME = "dicom-receiver"


@dataclass
class StudyReceipt:
    """What became of one received study: stored under ``patient`` (``upload``, ``jobs``) or
    put in the inbox (``unmatched``), with the instances the intake refused and why."""

    patient: Patient | None = None
    upload: ScanUpload | None = None
    jobs: list[Job] = field(default_factory=list)
    unmatched: UnmatchedStudy | None = None
    rejected: list[FileRejection] = field(default_factory=list)


class DiscardRefused(Exception):
    """The study cannot be discarded (it is no longer waiting)."""


class AssignRefused(ValueError):
    """The study cannot be assigned (already assigned, or none of its files passed)."""


def received_file(handle: Any, *, name: str) -> UploadedFile:
    """An open binary file (spooled by the receiver, or kept in the inbox) as the upload
    intake takes it."""
    try:
        size = os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        size = None
    return UploadedFile(handle, name=name, content_type="application/dicom", size=size)


def receiver_account() -> Any:
    """The account received studies are filed under (it owns their jobs); it cannot sign in
    and holds no role, so it sees nothing."""
    user, created = get_user_model().objects.get_or_create(
        username=RECEIVER_USERNAME,
        defaults={"is_active": False, "first_name": "DICOM", "last_name": "receiver"},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _identity(file: UploadedFile) -> DicomIdentity | None:
    file.seek(0)
    try:
        # An UploadedFile reads, seeks and tells like the binary file it wraps.
        return identity_read(cast(BinaryIO, file))
    finally:
        file.seek(0)


def study_receive(*, files: list[UploadedFile], calling_ae: str) -> StudyReceipt:
    """File the instances of one study (all sent in one association): matched with certainty
    to a patient of some care team, they go through the upload's intake under that patient
    with one classification job per model; otherwise they wait de-identified in the inbox.
    Never guesses a patient. Raises UploadTooLarge like an upload."""
    identities = [i for i in (_identity(f) for f in files) if i is not None]
    verdict = study_match(identities, mrn_candidates, issuer=settings.MEDAI_DICOM_MRN_ISSUER)
    if verdict.patient_pk is None:
        return _unmatched_store(
            files=files,
            identity=identities[0] if identities else None,
            reason=verdict.reason,
            calling_ae=calling_ae,
        )
    patient = Patient.objects.get(pk=verdict.patient_pk)
    outcome = scan_upload(
        patient=patient, files=list(files), uploaded_by=receiver_account(), task=receiver_task()
    )
    logger.info(
        "DICOM study from %s: %d stored, %d held, %d refused",
        calling_ae,
        len(outcome.scans),
        len(outcome.held),
        len(outcome.rejected),
    )
    return StudyReceipt(
        patient=patient, upload=outcome.upload, jobs=outcome.jobs, rejected=outcome.rejected
    )


def _inbox_pseudonym(seed: str) -> str:
    digest = hmac.new(deid_uid_key(), f"inbox:{seed}".encode(), hashlib.sha256).hexdigest()
    return f"MEDAI-INBOX-{digest[:16].upper()}"


@transaction.atomic
def _unmatched_store(
    *, files: list[UploadedFile], identity: DicomIdentity | None, reason: str, calling_ae: str
) -> StudyReceipt:
    """Screen and de-identify the files (no patient yet) one at a time and store them with the
    identifiers a clinician needs to find the patient; nothing when no file passes."""
    seed = (identity.study_uid if identity else "") or timezone.now().isoformat()
    who = identity or DicomIdentity("", "", "", "", "")
    study = UnmatchedStudy.objects.create(
        reason=reason,
        calling_ae=calling_ae[:16],
        patient_id=who.patient_id[:64],
        issuer=who.issuer[:64],
        patient_name=who.display_name[:200],
        birth_date=who.birth_date[:8],
        study_date=who.study_date[:8],
        modality=who.modality[:16],
    )
    receipt = StudyReceipt()
    stored = 0
    with media_writes() as writes:
        for item in scan_files_screen(files=files, pseudonym=_inbox_pseudonym(seed)):
            if isinstance(item, FileRejection):
                receipt.rejected.append(item)
                continue
            instance = UnmatchedInstance(
                study=study,
                sha256=hashlib.sha256(item.data).hexdigest(),
                original_name=item.name[:255],
            )
            writes.save(instance.file, "inbox", ContentFile(item.data))
            instance.save()
            stored += 1
            if not study.modality and item.modality:
                study.modality = item.modality
    if not stored:
        # Nothing to assign: the study row goes with the transaction's other writes.
        transaction.set_rollback(True)
        return StudyReceipt(rejected=receipt.rejected)
    study.rejected = [{"name": r.name, "message": r.message} for r in receipt.rejected]
    study.save(update_fields=["rejected", "modality"])
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        obj=study,
        username=RECEIVER_USERNAME,
        detail={"received_from": calling_ae, "instances": stored, "unmatched": reason},
    )
    receipt.unmatched = study
    return receipt


def unmatched_study_assign(
    *, study: UnmatchedStudy, patient: Patient, user: Any, request: Any = None
) -> UploadOutcome:
    """Give a waiting study to ``patient`` (the caller has checked that the patient is in the
    user's care teams): its files go through the upload's intake under that patient, with
    its classification job; the sender's identifiers are cleared. AssignRefused when the
    study is no longer waiting or nothing of it passes the intake."""
    with transaction.atomic():
        locked = UnmatchedStudy.objects.select_for_update().get(pk=study.pk)
        if locked.status != UnmatchedStudy.Status.WAITING:
            raise AssignRefused("This study is no longer waiting: it was assigned or discarded.")
        instances = list(locked.instances.all())
        files = [
            received_file(i.file.open("rb"), name=i.original_name or "instance.dcm")
            for i in instances
        ]
        try:
            outcome = scan_upload(
                patient=patient,
                files=files,
                uploaded_by=user,
                task=receiver_task(),
                request=request,
            )
        finally:
            for handle in files:
                handle.close()
        if outcome.upload is None:
            raise AssignRefused("None of the study's files passed the checks.")
        locked.status = UnmatchedStudy.Status.ASSIGNED
        locked.assigned_patient = patient
        locked.assigned_by = user
        locked.assigned_at = timezone.now()
        locked.upload = outcome.upload
        # The sender's identifiers were kept only to find the patient.
        locked.patient_id = locked.issuer = locked.patient_name = locked.birth_date = ""
        locked.save()
        names = [i.file.name for i in instances]
        locked.instances.all().delete()
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=locked,
            patient=patient,
            detail={"assigned_upload": outcome.upload.pk, "instances": len(instances)},
        )
        transaction.on_commit(lambda: _files_delete(names))
    study.refresh_from_db()
    return outcome


def unmatched_study_discard(*, study: UnmatchedStudy, user: Any, request: Any = None) -> int:
    """Discard a waiting study (hospital IT's act for a study that resembles no care team's
    patient; the caller has checked both): its files are deleted after commit, the sender's
    identifiers cleared, the row kept as DISCARDED for the audit trail. Returns the number of
    instances deleted; DiscardRefused once the study is no longer waiting (so a second call
    changes nothing)."""
    with transaction.atomic():
        locked = UnmatchedStudy.objects.select_for_update().get(pk=study.pk)
        if locked.status != UnmatchedStudy.Status.WAITING:
            raise DiscardRefused("This study is no longer waiting: it was assigned or discarded.")
        instances = list(locked.instances.all())
        names = [i.file.name for i in instances]
        locked.instances.all().delete()
        locked.status = UnmatchedStudy.Status.DISCARDED
        locked.patient_id = locked.issuer = locked.patient_name = locked.birth_date = ""
        locked.save(update_fields=["status", "patient_id", "issuer", "patient_name", "birth_date"])
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=locked,
            detail={
                "discarded": True,
                "instances": len(instances),
                "received_from": locked.calling_ae,
                "unmatched": locked.reason,
            },
        )
        transaction.on_commit(lambda: _files_delete(names))
    study.refresh_from_db()
    return len(instances)


def _files_delete(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            # The hourly orphan sweep removes what is left.
            logger.warning("could not delete inbox file %s", name)
