"""Sending one DicomSend: build its objects (the SR revision, plus the heat-map capture when
the prediction has one) in the destination's target study, then C-STORE or STOW-RS them,
trying again with a growing wait on a network failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from pydicom.dataset import Dataset

from diagnosis.models import DicomDestination, DicomSend
from diagnosis.pacs.outbox import (
    MODEL_REVISION,
    dicom_send_attempted,
    dicom_send_failed,
    sr_revision,
)
from diagnosis.pacs.scu import SendFailed, StowAuth, cstore_send, stow_send
from diagnosis.reporting import (
    DicomTarget,
    NoHeatmap,
    dicom_bytes,
    original_target,
    prediction_heatmap_capture,
    prediction_sr,
    stored_target,
)
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record


def _target(send: DicomSend) -> tuple[DicomTarget, bool]:
    """The destination's source gets the study under its original UIDs; any other study is
    sent as MedAI stores it (de-identified)."""
    scan = send.prediction.scan
    source = send.destination.source_ae_title
    original = original_target(scan, source=source) if source else None
    if original is not None:
        return original, True
    return stored_target(scan), False


def _predecessor(send: DicomSend) -> str | None:
    """The revision this destination last received before this one (None: the model's)."""
    earlier = (
        DicomSend.objects.filter(
            prediction=send.prediction,
            destination=send.destination,
            status=DicomSend.Status.SENT,
        )
        .exclude(pk=send.pk)
        .exclude(revision=send.revision)
        .order_by("-sent_at")
        .values_list("revision", flat=True)
        .first()
    )
    return earlier


def send_objects(send: DicomSend) -> tuple[list[tuple[str, Dataset]], bool]:
    """The row's objects as (SR | SC, dataset) in its target, and whether the target holds
    the original UIDs. SendFailed when the row's revision was replaced by a later review
    (only the current review can be rebuilt)."""
    prediction = send.prediction
    current = sr_revision(getattr(prediction, "review", None))
    unreviewed = send.revision == MODEL_REVISION
    if not unreviewed and send.revision != current:
        raise SendFailed(
            "A later review replaced this revision of the report; the later one is sent.",
            transient=False,
        )
    target, original = _target(send)
    objects = [
        (
            "SR",
            prediction_sr(
                prediction=prediction,
                target=target,
                unreviewed=unreviewed,
                predecessor=_predecessor(send),
            ),
        )
    ]
    try:
        objects.append(("SC", prediction_heatmap_capture(prediction=prediction, target=target)))
    except NoHeatmap:
        pass  # outside the model's scope: the SR says so, and there is no heat-map
    return objects, original


def _deliver(destination: DicomDestination, datasets: list[Dataset]) -> None:
    timeout = float(settings.MEDAI_DICOM_SEND_TIMEOUT)
    if destination.kind == DicomDestination.Kind.STOW:
        stow_send(
            parts=[dicom_bytes(ds) for ds in datasets],
            url=destination.stow_url,
            auth=StowAuth(
                kind=destination.auth, username=destination.username, secret=destination.secret
            ),
            timeout=timeout,
        )
        return
    cstore_send(
        datasets=datasets,
        host=destination.host,
        port=int(destination.port or 104),
        called_ae=destination.called_ae_title,
        calling_ae=destination.calling_ae_title,
        timeout=timeout,
    )


def destination_failing(*, send: DicomSend) -> bool:
    """True when another send to ``send``'s destination failed less than
    MEDAI_DICOM_SEND_FAIL_FAST_SECONDS ago and none has reached it since."""
    window = float(settings.MEDAI_DICOM_SEND_FAIL_FAST_SECONDS)
    if window <= 0:
        return False
    others = DicomSend.objects.filter(destination_id=send.destination_id).exclude(pk=send.pk)
    failed_at = (
        others.filter(
            status=DicomSend.Status.FAILED,
            updated_at__gte=timezone.now() - timedelta(seconds=window),
        )
        .order_by("-updated_at")
        .values_list("updated_at", flat=True)
        .first()
    )
    if failed_at is None:
        return False
    return not others.filter(status=DicomSend.Status.SENT, sent_at__gt=failed_at).exists()


def dicom_send_run(*, send: DicomSend, sleep: Callable[[float], None] = time.sleep) -> DicomSend:
    """Send the row's objects to its destination, up to MEDAI_DICOM_SEND_ATTEMPTS tries on a
    network failure with a wait that grows x4 (MEDAI_DICOM_SEND_BACKOFF_SECONDS first);
    marks it sent (with the SOP Instance UIDs, audited as an export) or failed with the
    message. Idempotent: a row already sent is returned unchanged, and the objects' UIDs are
    fixed, so sending again replaces them at the PACS rather than adding copies."""
    send = DicomSend.objects.select_related(
        "destination", "prediction__scan__patient", "prediction__model_version"
    ).get(pk=send.pk)
    if send.status == DicomSend.Status.SENT:
        return send
    if not send.destination.enabled:
        dicom_send_failed(send=send, error=f"{send.destination.name} was disabled; not sent.")
        return send
    try:
        objects, original = send_objects(send)
    except SendFailed as exc:
        dicom_send_failed(send=send, error=exc.message)
        return send
    datasets = [ds for _, ds in objects]
    tries = max(1, int(settings.MEDAI_DICOM_SEND_ATTEMPTS))
    # While the destination is failing, one try and no waits: a PACS that is down must not
    # hold a default worker for the whole backoff of every send queued for it.
    failing = tries > 1 and destination_failing(send=send)
    if failing:
        tries = 1
    wait = float(settings.MEDAI_DICOM_SEND_BACKOFF_SECONDS)
    for attempt in range(1, tries + 1):
        try:
            _deliver(send.destination, datasets)
        except SendFailed as exc:
            dicom_send_attempted(send=send, error=exc.message)
            if not exc.transient or attempt == tries:
                suffix = f" Tried {attempt} times." if attempt > 1 else ""
                if failing:
                    suffix = (
                        " Tried once, without waiting: another send to it failed in the last "
                        f"{int(settings.MEDAI_DICOM_SEND_FAIL_FAST_SECONDS)} s."
                    )
                dicom_send_failed(send=send, error=exc.message + suffix)
                return send
            sleep(wait * 4 ** (attempt - 1))
            continue
        sent = [
            {"object": kind, "sop_instance_uid": str(ds.SOPInstanceUID)} for kind, ds in objects
        ]
        send.original_uids = original
        DicomSend.objects.filter(pk=send.pk).update(original_uids=original)
        dicom_send_attempted(send=send, objects=sent)
        audit_record(
            action=AuditEvent.Action.EXPORTED,
            username="dicom-send",
            obj=send.prediction,
            patient=send.prediction.scan.patient,
            detail={
                "sent_to": send.destination.name,
                "objects": sent,
                "original_uids": original,
            },
        )
        return send
    return send
