"""Writes for studies received over DICOM: match the patient before de-identification, then
the browser upload's own intake (scan_upload); an unmatched study waits de-identified in the
inbox until a clinician assigns it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from diagnosis.imaging.deid import pseudonymous_uid
from diagnosis.imaging.errors import RejectCode
from diagnosis.imaging.originals import OriginalInstance, original_file_read
from diagnosis.imaging.patient_match import DicomIdentity, identity_read, study_match
from diagnosis.models import (
    DicomWebSender,
    Scan,
    ScanUpload,
    SourceInstance,
    StowStudy,
    UnmatchedInstance,
    UnmatchedStudy,
)
from diagnosis.pacs.dicomweb import (
    CANNOT_UNDERSTAND,
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SOP_CLASS_NOT_SUPPORTED,
    InstanceOutcome,
    Part,
    is_image_storage,
    part_header,
)
from diagnosis.pacs.selectors import mrn_candidates, receiver_task
from diagnosis.selectors import FileRejection, UploadOutcome
from diagnosis.services import UploadTooLarge, deid_uid_key, scan_files_screen, scan_upload
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
    # Instances MedAI already held (a sender's resend): acknowledged, not stored twice.
    resent: int = 0


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


def _file_originals(files: list[UploadedFile]) -> list[OriginalInstance | None]:
    """Each file's original identifiers (None for a file that has none to read)."""
    # An UploadedFile reads, seeks and tells like the binary file it wraps.
    return [original_file_read(cast(BinaryIO, file)) for file in files]


def _originals(per_file: list[OriginalInstance | None]) -> dict[str, OriginalInstance]:
    """The originals keyed by the SOP Instance UID each de-identified copy will have (the
    same keyed replacement the intake makes)."""
    key = deid_uid_key()
    return {
        pseudonymous_uid(original.sop_instance_uid, key): original
        for original in per_file
        if original is not None
    }


def _resent_drop(
    *,
    files: list[UploadedFile],
    per_file: list[OriginalInstance | None],
    patient: Patient | None,
) -> tuple[list[UploadedFile], list[OriginalInstance | None], int]:
    """The files without the instances MedAI already holds (the same original SOP Instance
    UID, for ``patient`` or waiting unmatched), and how many were dropped: a sender that
    resends after a lost acknowledgement must not make a second copy and a second job."""
    uids = {o.sop_instance_uid for o in per_file if o is not None and o.sop_instance_uid}
    if not uids:
        return files, per_file, 0
    if patient is not None:
        held = set(
            SourceInstance.objects.filter(
                scan__patient=patient, sop_instance_uid__in=uids
            ).values_list("sop_instance_uid", flat=True)
        )
    else:
        held = {
            str((original or {}).get("sop_instance_uid", ""))
            for original in UnmatchedInstance.objects.filter(
                study__status=UnmatchedStudy.Status.WAITING
            )
            .filter(original__sop_instance_uid__in=list(uids))
            .values_list("original", flat=True)
        }
    keep = [i for i, o in enumerate(per_file) if o is None or o.sop_instance_uid not in held]
    dropped = len(files) - len(keep)
    return [files[i] for i in keep], [per_file[i] for i in keep], dropped


def _stored_sop_uid(scan: Scan) -> str:
    import pydicom

    with scan.file.open("rb") as handle:
        header = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
    return str(header.get("SOPInstanceUID", "") or "")


def source_instances_record(
    *, scans: list[Scan], originals: dict[str, OriginalInstance], source: str
) -> list[SourceInstance]:
    """Link each stored DICOM scan to its sender's original identifiers (``originals`` keyed
    by the de-identified SOP Instance UID). Idempotent: a scan already linked keeps its row."""
    rows = []
    for scan in scans:
        if scan.kind != Scan.Kind.DICOM:
            continue
        original = originals.get(_stored_sop_uid(scan))
        if original is None:
            continue
        row, _ = SourceInstance.objects.get_or_create(
            scan=scan, defaults={"source": source[:80], **original.to_dict()}
        )
        rows.append(row)
    return rows


def study_receive(
    *,
    files: list[UploadedFile],
    calling_ae: str,
    into_upload: ScanUpload | None = None,
    into_unmatched: UnmatchedStudy | None = None,
    job_delay: float = 0,
) -> StudyReceipt:
    """File the instances of one study (all sent in one association): matched with certainty
    to a patient of some care team, they go through the upload's intake under that patient
    with one classification job per model; otherwise they wait de-identified in the inbox.
    Each instance's original UIDs are kept with ``calling_ae`` as its source (any sender
    label: an AE title, or the STOW-RS sender). Never guesses a patient. Raises
    UploadTooLarge like an upload. The rest of a study already partly filed is added to
    ``into_upload`` when it matches that upload's patient, or to ``into_unmatched`` while
    that study still waits unmatched; a new job runs no sooner than ``job_delay`` seconds."""
    identities = [i for i in (_identity(f) for f in files) if i is not None]
    per_file = _file_originals(files)
    verdict = study_match(identities, mrn_candidates, issuer=settings.MEDAI_DICOM_MRN_ISSUER)
    patient = Patient.objects.get(pk=verdict.patient_pk) if verdict.patient_pk else None
    files, per_file, resent = _resent_drop(files=files, per_file=per_file, patient=patient)
    if resent:
        logger.info("DICOM study from %s: %d instance(s) already held", calling_ae, resent)
    if not files:
        return StudyReceipt(patient=patient, resent=resent)
    originals = _originals(per_file)
    if patient is None:
        receipt = _unmatched_store(
            files=files,
            identity=identities[0] if identities else None,
            reason=verdict.reason,
            calling_ae=calling_ae,
            originals=originals,
            into=into_unmatched,
        )
        receipt.resent = resent
        return receipt
    if into_upload is not None and into_upload.patient_id != patient.pk:
        into_upload = None
    # One transaction: the classification job (queued on commit) finds the originals.
    with transaction.atomic():
        outcome = scan_upload(
            patient=patient,
            files=list(files),
            uploaded_by=receiver_account(),
            task=receiver_task(),
            into=into_upload,
            job_delay=job_delay,
        )
        source_instances_record(
            scans=[*outcome.scans, *outcome.held], originals=originals, source=calling_ae
        )
    logger.info(
        "DICOM study from %s: %d stored, %d held, %d refused",
        calling_ae,
        len(outcome.scans),
        len(outcome.held),
        len(outcome.rejected),
    )
    return StudyReceipt(
        patient=patient,
        upload=outcome.upload,
        jobs=outcome.jobs,
        rejected=outcome.rejected,
        resent=resent,
    )


def _inbox_pseudonym(seed: str) -> str:
    digest = hmac.new(deid_uid_key(), f"inbox:{seed}".encode(), hashlib.sha256).hexdigest()
    return f"MEDAI-INBOX-{digest[:16].upper()}"


@transaction.atomic
def _unmatched_store(
    *,
    files: list[UploadedFile],
    identity: DicomIdentity | None,
    reason: str,
    calling_ae: str,
    originals: dict[str, OriginalInstance],
    into: UnmatchedStudy | None = None,
) -> StudyReceipt:
    """Screen and de-identify the files (no patient yet) one at a time and store them with the
    identifiers a clinician needs to find the patient, in ``into`` while it still waits;
    nothing when no file passes."""
    seed = (identity.study_uid if identity else "") or timezone.now().isoformat()
    who = identity or DicomIdentity("", "", "", "", "")
    study = (
        UnmatchedStudy.objects.select_for_update()
        .filter(pk=into.pk, status=UnmatchedStudy.Status.WAITING)
        .first()
        if into is not None
        else None
    )
    joined = study is not None
    earlier = list(study.rejected) if study is not None else []
    if study is None:
        study = UnmatchedStudy.objects.create(
            reason=reason,
            calling_ae=calling_ae[:80],
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
            original = originals.get(item.sop_instance_uid)
            instance = UnmatchedInstance(
                study=study,
                sha256=hashlib.sha256(item.data).hexdigest(),
                original_name=item.name[:255],
                original=original.to_dict() if original is not None else {},
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
    study.rejected = [
        *earlier,
        *({"name": r.name, "message": r.message} for r in receipt.rejected),
    ]
    study.save(update_fields=["rejected", "modality"])
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        obj=study,
        username=RECEIVER_USERNAME,
        detail={
            "received_from": calling_ae,
            "instances": stored,
            "unmatched": reason,
            **({"added_to_study": True} if joined else {}),
        },
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
            # The inbox copies are de-identified already: their UIDs are kept, not replaced
            # a second time, so the scans have the UIDs a direct match would have given.
            outcome = scan_upload(
                patient=patient,
                files=files,
                uploaded_by=user,
                task=receiver_task(),
                request=request,
                deidentified=True,
            )
        finally:
            for handle in files:
                handle.close()
        if outcome.upload is None:
            raise AssignRefused("None of the study's files passed the checks.")
        originals = {
            pseudonymous_uid(o.sop_instance_uid, deid_uid_key()): o
            for o in (OriginalInstance.from_dict(i.original) for i in instances if i.original)
        }
        source_instances_record(
            scans=[*outcome.scans, *outcome.held], originals=originals, source=locked.calling_ae
        )
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


# --- DICOMweb senders and STOW-RS ------------------------------------------------------------

SENDER_TOKEN_PREFIX = "mdw"  # noqa: S105 (a public marker in every sender token, not a secret)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedSender:
    sender: DicomWebSender
    token: str  # shown once; only its hash is stored


class SenderRefused(ValueError):
    """A sender cannot be issued under this name (empty, too long or taken)."""


def dicomweb_sender_issue(
    *, name: str, created_by: Any = None, request: Any = None
) -> IssuedSender:
    """Register a DICOMweb sender and issue its token (returned once, only its hash is
    stored). SenderRefused when the name is empty, too long or already taken."""
    name = name.strip()
    if not name or len(name) > 64:
        raise SenderRefused("A sender's name must have 1 to 64 characters.")
    prefix = secrets.token_hex(4)
    token = f"{SENDER_TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        if DicomWebSender.objects.select_for_update().filter(name=name).exists():
            raise SenderRefused(f"A sender named {name!r} already exists.")
        sender = DicomWebSender.objects.create(
            name=name, token_prefix=prefix, token_hash=_token_hash(token), created_by=created_by
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=created_by,
            request=request,
            obj=sender,
            username="manage.py" if created_by is None else "",
            detail={"dicomweb_sender_issued": sender.name},
        )
    return IssuedSender(sender=sender, token=token)


def dicomweb_sender_revoke(
    *, sender: DicomWebSender, user: Any = None, request: Any = None
) -> None:
    """Revoke a sender's token at once (its next request gets 401); idempotent."""
    with transaction.atomic():
        changed = DicomWebSender.objects.filter(pk=sender.pk, active=True).update(
            active=False, revoked_at=timezone.now()
        )
        if changed:
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=user,
                request=request,
                obj=sender,
                username="manage.py" if user is None else "",
                detail={"dicomweb_sender_revoked": sender.name},
            )
    sender.refresh_from_db(fields=["active", "revoked_at"])


def dicomweb_sender_authenticate(token: str) -> DicomWebSender | None:
    """The active sender a token belongs to, or None (unknown, malformed or revoked)."""
    parts = token.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != SENDER_TOKEN_PREFIX:
        return None
    sender = DicomWebSender.objects.filter(token_prefix=parts[1]).first()
    if sender is None or not hmac.compare_digest(sender.token_hash, _token_hash(token)):
        return None
    return sender if sender.active else None


# The intake's refusals as STOW-RS Failure Reasons (PS3.18 Table 10.5.3-4, PS3.4 B.2-1).
_FAILURE_FOR_REJECTION: dict[str, int] = {
    RejectCode.TOO_LARGE: OUT_OF_RESOURCES,
    RejectCode.TOO_MANY_PIXELS: OUT_OF_RESOURCES,
    RejectCode.EMPTY: CANNOT_UNDERSTAND,
    RejectCode.UNKNOWN_FORMAT: CANNOT_UNDERSTAND,
    RejectCode.TEXT_FILE: CANNOT_UNDERSTAND,
    RejectCode.NOT_DICOM: CANNOT_UNDERSTAND,
    RejectCode.MISSING_META: CANNOT_UNDERSTAND,
    RejectCode.TRUNCATED: CANNOT_UNDERSTAND,
    RejectCode.CORRUPT: CANNOT_UNDERSTAND,
    RejectCode.INVALID_ATTRIBUTE: CANNOT_UNDERSTAND,
    # An image SOP class whose data set has no (usable) image.
    RejectCode.NO_PIXEL_DATA: DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    RejectCode.UNSUPPORTED_IMAGE: DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
}


@dataclass
class StowResult:
    """What one STOW-RS request did: each instance's outcome in request order (with the UIDs
    the sender sent), and the receipts of the studies filed."""

    outcomes: list[InstanceOutcome] = field(default_factory=list)
    receipts: list[StudyReceipt] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(1 for o in self.outcomes if not o.failure)


def stow_store(
    *, sender: DicomWebSender, parts: list[Part], study_uid: str = "", request: Any = None
) -> StowResult:
    """File the parts of one STOW-RS request: each part is checked from its header (a Part 10
    file, an image SOP class, of ``study_uid`` when the URL names one), then each study goes
    through study_receive once (patient matching, the upload's intake or the inbox), in its
    own transaction. Returns every instance's outcome with a standard failure reason; one
    audit event for the request. Not idempotent: a resent instance is stored again, as from
    the C-STORE receiver."""
    slots: list[InstanceOutcome | None] = []
    studies: dict[str, list[tuple[int, Part, InstanceOutcome]]] = {}
    for index, part in enumerate(parts):
        header = part_header(part.file)
        if part.content_type != "application/dicom" or header is None:
            slots.append(InstanceOutcome("", "", CANNOT_UNDERSTAND))
            continue
        sent = InstanceOutcome(header.sop_class_uid, header.sop_instance_uid)
        if not header.sop_class_uid or not header.sop_instance_uid:
            slots.append(
                InstanceOutcome(sent.sop_class_uid, sent.sop_instance_uid, CANNOT_UNDERSTAND)
            )
        elif not is_image_storage(header.sop_class_uid):
            slots.append(
                InstanceOutcome(sent.sop_class_uid, sent.sop_instance_uid, SOP_CLASS_NOT_SUPPORTED)
            )
        elif study_uid and header.study_uid != study_uid:
            # An instance of another study than the target URI's is not stored (PS3.18
            # §10.5). Its reason: 0xA900, as for a data set that does not fit what the
            # request declared (Orthanc's own STOW server answers 0x0110 here).
            slots.append(
                InstanceOutcome(
                    sent.sop_class_uid, sent.sop_instance_uid, DATA_SET_DOES_NOT_MATCH_SOP_CLASS
                )
            )
        else:
            slots.append(None)
            studies.setdefault(header.study_uid, []).append((index, part, sent))
    result = StowResult()
    for uid, members in studies.items():
        failures, receipt = _stow_study(sender=sender, study_uid=uid, members=members)
        if receipt is not None:
            result.receipts.append(receipt)
        for index, _, sent in members:
            slots[index] = InstanceOutcome(
                sent.sop_class_uid, sent.sop_instance_uid, failures.get(index, 0)
            )
    result.outcomes = [slot or InstanceOutcome("", "", PROCESSING_FAILURE) for slot in slots]
    DicomWebSender.objects.filter(pk=sender.pk).update(last_used_at=timezone.now())
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        # The sender is no person: named by username, with the request's address and path.
        actor=AnonymousUser(),
        request=request,
        obj=sender,
        username=f"dicomweb:{sender.name}",
        detail={
            "stow_instances": len(parts),
            "stored": result.stored,
            "failed": len(parts) - result.stored,
            "uploads": [r.upload.pk for r in result.receipts if r.upload is not None],
            "unmatched": [r.unmatched.pk for r in result.receipts if r.unmatched is not None],
        },
    )
    return result


def stow_study_key(*, study_uid: str) -> str:
    """The keyed hash a sender's Study Instance UID is remembered by (never the UID)."""
    return hmac.new(deid_uid_key(), f"stow-study:{study_uid}".encode(), hashlib.sha256).hexdigest()


def _stow_study(
    *, sender: DicomWebSender, study_uid: str, members: list[tuple[int, Part, InstanceOutcome]]
) -> tuple[dict[int, int], StudyReceipt | None]:
    """One study of a STOW-RS request through study_receive: the failure reason of each part
    the intake refused (by request index), and the receipt (None when nothing was filed).
    A study whose last request came within MEDAI_DICOM_STUDY_SETTLE_SECONDS is added to
    what that request filed (a PACS splits a large study over several requests)."""
    calling_ae = f"STOW:{sender.name}"
    # Named by request position, so that the intake's refusals map back to the parts; the
    # sender's own names never reach the intake.
    names = {f"stow-{index + 1:05d}.dcm": index for index, _, _ in members}
    files = [
        received_file(part.file, name=name)
        for name, (_, part, _) in zip(names, members, strict=True)
    ]
    try:
        receipt = _stow_study_receive(sender=sender, study_uid=study_uid, files=files)
    except UploadTooLarge as exc:
        logger.warning("STOW-RS study from %s refused: %s", calling_ae, exc.message)
        return {index: OUT_OF_RESOURCES for index in names.values()}, None
    except Exception:
        # One study that cannot be filed must not cost the request's other studies; its
        # transaction was rolled back, so nothing of it is half-written.
        logger.exception("STOW-RS study from %s could not be filed", calling_ae)
        return {index: PROCESSING_FAILURE for index in names.values()}, None
    failures = {
        names[r.name]: _FAILURE_FOR_REJECTION.get(r.code, PROCESSING_FAILURE)
        for r in receipt.rejected
        if r.name in names
    }
    filed = receipt.upload is not None or receipt.unmatched is not None
    return failures, receipt if filed else None


def _stow_study_receive(
    *, sender: DicomWebSender, study_uid: str, files: list[UploadedFile]
) -> StudyReceipt:
    """study_receive for one study of a STOW-RS request, joined to the same study's previous
    request from this sender when it came within the settle window."""
    settle = float(settings.MEDAI_DICOM_STUDY_SETTLE_SECONDS)
    calling_ae = f"STOW:{sender.name}"
    if not study_uid:
        return study_receive(files=files, calling_ae=calling_ae, job_delay=settle)
    with transaction.atomic():
        # The row lock serialises this sender's concurrent requests for one study (several
        # web workers), so that they file into one upload, not one each.
        row, created = StowStudy.objects.select_for_update().get_or_create(
            sender=sender,
            study_key=stow_study_key(study_uid=study_uid),
            defaults={"last_received_at": timezone.now()},
        )
        joining = not created and row.last_received_at >= timezone.now() - timedelta(seconds=settle)
        receipt = study_receive(
            files=files,
            calling_ae=calling_ae,
            into_upload=row.upload if joining else None,
            into_unmatched=row.unmatched if joining else None,
            job_delay=settle,
        )
        if not joining:
            row.upload, row.unmatched = None, None
        row.upload = receipt.upload or row.upload
        row.unmatched = receipt.unmatched or row.unmatched
        # The window runs from the end of this request's intake, which may take a while.
        row.last_received_at = timezone.now()
        row.save(update_fields=["upload", "unmatched", "last_received_at"])
    return receipt
