"""Writes that queue results for the PACS destinations: one DicomSend row per revision of a
prediction's SR and destination, sent by a ``diagnosis.dicom_send`` job (diagnosis/pacs/
tasks.py). Imports nothing of the intake, so the classification and review services can call
it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from diagnosis.models import DicomDestination, DicomSend, Prediction, Review
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create

DICOM_SEND_KIND = "diagnosis.dicom_send"
MODEL_REVISION = "not_reviewed::None"


def sr_revision(review: Review | None) -> str:
    """The key of the SR revision a review makes (MODEL_REVISION before any review); the
    SR's SOP Instance UID is derived from it."""
    if review is None:
        return MODEL_REVISION
    return f"{review.verdict}:{review.label}:{review.reviewed_at}"


def _send_job(*, send: DicomSend, owner: Any) -> Job:
    return job_create(
        kind=DICOM_SEND_KIND,
        owner=owner,
        patient=send.prediction.scan.patient,
        # No patient identifier: staff see job titles.
        title=f"Send an imaging result to {send.destination.name}"[:200],
        params={"send_id": send.pk},
        target=send,
    )


@transaction.atomic
def prediction_sends_queue(*, prediction: Prediction, trigger: str, owner: Any) -> list[DicomSend]:
    """Queue the prediction's current SR revision (and heat-map capture) for every enabled
    destination whose rules send after ``trigger`` (classification or review), one job each.
    Idempotent: a revision already queued or sent to a destination is not queued again."""
    if trigger == DicomSend.Trigger.CLASSIFICATION:
        destinations = DicomDestination.objects.filter(enabled=True, send_after_classification=True)
    else:
        destinations = DicomDestination.objects.filter(enabled=True, send_after_review=True)
    # Fresh from the database: the caller's row may hold a review it has since replaced.
    prediction = Prediction.objects.select_related("review", "scan__patient").get(pk=prediction.pk)
    revision = sr_revision(getattr(prediction, "review", None))
    queued = []
    for destination in destinations:
        send, created = DicomSend.objects.get_or_create(
            prediction=prediction,
            destination=destination,
            revision=revision,
            defaults={"trigger": trigger, "queued_at": timezone.now()},
        )
        if created:
            send.job = _send_job(send=send, owner=owner)
            send.save(update_fields=["job"])
            queued.append(send)
    return queued


def predictions_sends_queue(
    *, predictions: list[Prediction], trigger: str, owner: Any
) -> list[DicomSend]:
    """prediction_sends_queue for each of a job's predictions, asking for the destinations
    once: with none enabled for ``trigger`` (the embedded default), no query per prediction.
    Idempotent as prediction_sends_queue."""
    flag = (
        "send_after_classification"
        if trigger == DicomSend.Trigger.CLASSIFICATION
        else "send_after_review"
    )
    if (
        not predictions
        or not DicomDestination.objects.filter(enabled=True, **{flag: True}).exists()
    ):
        return []
    queued: list[DicomSend] = []
    for prediction in predictions:
        queued += prediction_sends_queue(prediction=prediction, trigger=trigger, owner=owner)
    return queued


class SendRefused(ValueError):
    """A send-again request that cannot be honoured, with the clinician's message."""


def dicom_send_again(*, send: DicomSend, user: Any, request: Any = None) -> DicomSend:
    """Queue one send again at a clinician's request (audited). Idempotent: a send still
    queued or running is returned as it is. SendRefused when its destination is disabled."""
    with transaction.atomic():
        locked = (
            DicomSend.objects.select_for_update()
            .select_related("destination", "prediction__scan__patient")
            .get(pk=send.pk)
        )
        if not locked.destination.enabled:
            raise SendRefused(f"{locked.destination.name} is disabled; ask hospital IT.")
        running = locked.job is not None and locked.job.status in (
            Job.Status.QUEUED,
            Job.Status.RUNNING,
        )
        if running:
            return locked
        locked.status = DicomSend.Status.QUEUED
        locked.trigger = DicomSend.Trigger.MANUAL
        locked.queued_at = timezone.now()
        locked.last_error = ""
        locked.job = _send_job(send=locked, owner=user)
        locked.save(update_fields=["status", "trigger", "queued_at", "last_error", "job"])
        audit_record(
            action=AuditEvent.Action.EXPORTED,
            actor=user,
            request=request,
            obj=locked.prediction,
            patient=locked.prediction.scan.patient,
            detail={"send_again": locked.pk, "destination": locked.destination.name},
        )
    return locked


def dicom_send_attempted(*, send: DicomSend, error: str = "", objects: list | None = None) -> None:
    """Record one try: sent with the objects' SOP Instance UIDs, or the error (still queued
    while tries remain)."""
    fields = {"attempts": send.attempts + 1, "updated_at": timezone.now()}
    if objects is not None:
        fields.update(
            status=DicomSend.Status.SENT,
            objects_sent=objects,
            sent_at=timezone.now(),
            last_error="",
        )
    else:
        fields["last_error"] = error
    DicomSend.objects.filter(pk=send.pk).update(**fields)
    for name, value in fields.items():
        setattr(send, name, value)


def dicom_send_failed(*, send: DicomSend, error: str) -> None:
    """Mark the send failed with the message people see."""
    DicomSend.objects.filter(pk=send.pk).update(
        status=DicomSend.Status.FAILED, last_error=error, updated_at=timezone.now()
    )
    send.status, send.last_error = DicomSend.Status.FAILED, error
