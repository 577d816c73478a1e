"""Every write in remote care: devices and their tokens, observation ingest with NEWS2 and
server-side alerting, the alert lifecycle, and messages between patients and care teams."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.media import media_writes
from remote_care.models import Alert, Device, Message, Monitoring, Observation, Thread, ThreadRead
from remote_care.physiology.news2 import AlertState, ScoredSet, evaluate_alerts, score_news2
from remote_care.physiology.news2 import Observation as News2Observation

TOKEN_PREFIX = "mdv"  # noqa: S105 (a public marker in every device token, not a secret)
# How many earlier scored sets the trend rule needs to see besides the new batch.
HISTORY_FOR_TREND = 10


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedDevice:
    device: Device
    token: str  # shown once; only its hash is stored


def device_register(
    *, patient: Any, label: str, registered_by: Any, request: Any = None
) -> IssuedDevice:
    """Register a device to a patient and issue its token (returned once, never stored)."""
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        device = Device.objects.create(
            patient=patient,
            label=label.strip()[:100],
            token_prefix=prefix,
            token_hash=_hash(token),
            registered_by=registered_by,
        )
        Monitoring.objects.get_or_create(patient=patient)
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=registered_by,
            request=request,
            obj=device,
            patient=patient,
            detail={"device_registered": device.label},
        )
    return IssuedDevice(device=device, token=token)


def device_revoke(*, device: Device, user: Any, request: Any = None) -> Device:
    """Revoke a device's token at once; idempotent."""
    with transaction.atomic():
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.save(update_fields=["revoked_at"])
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=user,
                request=request,
                obj=device,
                patient=device.patient,
                detail={"device_revoked": True},
            )
    return device


def device_authenticate(token: str) -> Device | None:
    """The active device a token belongs to, or None (unknown, malformed or revoked)."""
    parts = token.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    device = Device.objects.select_related("patient").filter(token_prefix=parts[1]).first()
    if device is None or not hmac.compare_digest(device.token_hash, _hash(token)):
        return None
    return device if device.is_active else None


@dataclass
class IngestResult:
    stored: list[Observation] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _news2_input(values: dict[str, Any], spo2_scale: int) -> News2Observation:
    return News2Observation(
        respiration_rate=values.get("respiratory_rate"),
        spo2=values.get("spo2"),
        on_oxygen=values.get("on_oxygen"),
        systolic_bp=values.get("systolic_bp"),
        pulse=values.get("heart_rate"),
        consciousness=values.get("consciousness") or None,
        temperature=values.get("temperature"),
        spo2_scale=spo2_scale,
    )


def observations_ingest(*, device: Device, items: list[dict[str, Any]]) -> IngestResult:
    """Store already-validated observation sets of one device, skipping any it sent before
    (same device and timestamp), score each with NEWS2 and raise alerts server-side.
    Concurrent batches for one patient are serialised on the patient's monitoring row."""
    result = IngestResult()
    with transaction.atomic():
        monitoring, _ = Monitoring.objects.select_for_update().get_or_create(patient=device.patient)
        times = [item["taken_at"] for item in items]
        seen = set(
            Observation.objects.filter(device=device, taken_at__in=times).values_list(
                "taken_at", flat=True
            )
        )
        fresh: list[tuple[int, dict[str, Any]]] = []
        batch_times: set[datetime] = set()
        for index, item in enumerate(items):
            if item["taken_at"] in seen or item["taken_at"] in batch_times:
                result.duplicates.append(index)
                continue
            batch_times.add(item["taken_at"])
            fresh.append((index, item))
        observations = []
        for _, item in sorted(fresh, key=lambda pair: pair[1]["taken_at"]):
            scored = score_news2(_news2_input(item, monitoring.spo2_scale))
            observations.append(
                Observation(
                    patient=device.patient,
                    device=device,
                    taken_at=item["taken_at"],
                    heart_rate=item.get("heart_rate"),
                    spo2=item.get("spo2"),
                    respiratory_rate=item.get("respiratory_rate"),
                    temperature=item.get("temperature"),
                    systolic_bp=item.get("systolic_bp"),
                    diastolic_bp=item.get("diastolic_bp"),
                    consciousness=item.get("consciousness") or "",
                    on_oxygen=item.get("on_oxygen"),
                    news2_total=scored.total,
                    news2_partial=scored.is_partial,
                    news2={**scored.to_dict(), "label": scored.label},
                )
            )
        result.stored = Observation.objects.bulk_create(observations, batch_size=2000)
        result.alerts = _raise_alerts(monitoring, result.stored)
        Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            username=f"device:{device.token_prefix}",
            obj=device,
            patient=device.patient,
            detail={
                "observations_stored": len(result.stored),
                "duplicates": len(result.duplicates),
                "alerts": len(result.alerts),
            },
        )
    if result.alerts:
        transaction.on_commit(lambda: alerts_notify(alerts=result.alerts))
    return result


def _raise_alerts(monitoring: Monitoring, new: list[Observation]) -> list[Alert]:
    """Run the alerting policy over the new sets in time order, after the patient's latest
    earlier sets, and persist the policy's state."""
    if not new:
        return []
    first = new[0].taken_at
    earlier = list(
        Observation.objects.filter(patient=monitoring.patient, taken_at__lt=first).order_by(
            "-taken_at"
        )[:HISTORY_FOR_TREND]
    )[::-1]
    state = AlertState.from_dict(monitoring.alert_state) if monitoring.alert_state else AlertState()
    series = [_scored_from_row(o, monitoring.spo2_scale) for o in earlier]
    raised: list[Alert] = []
    for observation in new:
        if state.last_evaluated_at and observation.taken_at <= state.last_evaluated_at:
            # Late-arriving older data is stored and scored but does not re-open history.
            continue
        series.append(_scored_from_row(observation, monitoring.spo2_scale))
        decision = evaluate_alerts(series[-(HISTORY_FOR_TREND + 1) :], state)
        state = decision.state
        for alert in decision.alerts:
            raised.append(
                Alert(
                    patient=monitoring.patient,
                    observation=observation,
                    level=alert.kind.name,
                    news2_total=alert.total,
                    reason=alert.reason,
                    response=alert.response,
                    raised_at=alert.raised_at,
                )
            )
    Alert.objects.bulk_create(raised)
    monitoring.alert_state = state.to_dict()
    monitoring.save(update_fields=["alert_state"])
    return raised


def _scored_from_row(observation: Observation, spo2_scale: int) -> ScoredSet:
    values = {
        "respiratory_rate": observation.respiratory_rate,
        "spo2": observation.spo2,
        "on_oxygen": observation.on_oxygen,
        "systolic_bp": observation.systolic_bp,
        "heart_rate": observation.heart_rate,
        "consciousness": observation.consciousness,
        "temperature": observation.temperature,
    }
    return ScoredSet(
        taken_at=observation.taken_at, result=score_news2(_news2_input(values, spo2_scale))
    )


def alerts_notify(*, alerts: list[Alert]) -> None:
    """E-mail the care team of each alert's patient (the in-app list needs no sending)."""
    for alert in alerts:
        team = alert.patient.memberships.select_related("user")
        recipients = [m.user.email for m in team if m.user.email]
        if not recipients:
            continue
        # Mail leaves the hospital's systems (and is often previewed on lock screens): no MRN
        # or name, only enough for the team to sign in and open the patient's alerts.
        send_mail(
            subject=f"MedAI alert: {alert.get_level_display()}",
            message=(
                f"{alert.reason}\n\nRecommended response: {alert.response}\n\n"
                "Sign in to MedAI (Monitoring) to see the patient.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )


_TRANSITIONS = {
    "acknowledge": ({Alert.Status.OPEN, Alert.Status.ESCALATED}, Alert.Status.ACKNOWLEDGED),
    "escalate": ({Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED}, Alert.Status.ESCALATED),
    "resolve": (
        {Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED, Alert.Status.ESCALATED},
        Alert.Status.RESOLVED,
    ),
}


def alert_transition(*, alert: Alert, action: str, user: Any, request: Any = None) -> Alert:
    """Acknowledge, escalate or resolve an alert (audited); ValueError on a transition that
    its current status does not allow."""
    allowed, target = _TRANSITIONS[action]
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.status not in allowed:
            raise ValueError(
                f"An alert that is {alert.get_status_display().lower()} cannot be {action}d."
            )
        now = timezone.now()
        alert.status = target
        fields = ["status"]
        if action == "acknowledge":
            alert.acknowledged_by, alert.acknowledged_at = user, now
            fields += ["acknowledged_by", "acknowledged_at"]
        elif action == "resolve":
            alert.resolved_by, alert.resolved_at = user, now
            fields += ["resolved_by", "resolved_at"]
        alert.save(update_fields=fields)
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=alert,
            patient=alert.patient,
            detail={"alert": action},
        )
    return alert


# Devices whose clock was never set report 1970 (Unix epoch) or their clock chip's default
# (1980, 2000); no reading from before this is a real one, and dates centuries back also
# fall outside what time zones and RFC 3339 can express.
OBSERVATIONS_FROM = datetime(2001, 1, 1, tzinfo=UTC)


def observation_future_limit() -> datetime:
    """Device clocks drift; observations more than 5 minutes in the future are refused."""
    return timezone.now() + timedelta(minutes=5)


# ---------------------------------------------------------------- messaging

MAX_MESSAGE_CHARS = 5000


class MessageRejected(ValueError):
    """A message that cannot be sent; the message says why."""


def _message_notify(*, message: Message) -> None:
    # Tell the other side there is something to read; e-mail carries no clinical content.
    thread = message.thread
    if message.from_patient:
        team = thread.patient.memberships.select_related("user")
        recipients = [m.user.email for m in team if m.user.email and m.user.is_active]
        subject = "MedAI: new message from a patient in your care team"
        body = "A patient in your care team has sent a message. Sign in to MedAI to read it.\n"
    else:
        account = getattr(thread.patient, "portal_account", None)
        user = account.user if account and account.is_active else None
        recipients = [user.email] if user and user.email else []
        subject = "MedAI: a new message from your care team"
        body = "Your care team has replied. Sign in to the MedAI patient portal to read it.\n"
    if recipients:
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )


def message_send(
    *,
    thread: Thread,
    sender: Any,
    from_patient: bool,
    body: str = "",
    photo: bytes | None = None,
    photo_name: str = "",
    request: Any = None,
) -> Message:
    """Add a message (text and/or a photo) to a thread; MessageRejected for an empty or
    oversized message or a file that is not a photo. The photo is stored metadata-free; the
    sender's own read mark moves past it; the other side is notified after commit."""
    from remote_care.messaging.photos import PhotoRejected, photo_normalise

    body = body.strip()
    if not body and not photo:
        raise MessageRejected("Write a message or attach a photo.")
    if len(body) > MAX_MESSAGE_CHARS:
        raise MessageRejected(
            f"Messages are limited to {MAX_MESSAGE_CHARS} characters; this one has {len(body)}."
        )
    normalised = None
    if photo is not None:
        try:
            normalised = photo_normalise(photo)
        except PhotoRejected as exc:
            raise MessageRejected(str(exc)) from None
    now = timezone.now()
    # No photo, not even a partial one, outlives a failed send (ENOSPC, a rollback).
    with media_writes() as writes, transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        message = Message(
            thread=thread,
            sender=sender,
            from_patient=from_patient,
            body=body,
            sent_at=now,
            photo_name=(photo_name or "photo")[:255] if normalised else "",
        )
        if normalised is not None:
            writes.save(message.photo, "photo.jpg", ContentFile(normalised.data))
        message.save()
        thread.last_message_at = now
        thread.save(update_fields=["last_message_at"])
        ThreadRead.objects.update_or_create(
            thread=thread, user=sender, defaults={"last_read_at": now}
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=sender,
            request=request,
            obj=message,
            patient=thread.patient,
            detail={"message_sent": thread.pk, "photo": bool(normalised)},
        )
        transaction.on_commit(lambda: _message_notify(message=message))
    return message


def thread_start(
    *,
    patient: Any,
    subject: str,
    started_by: Any,
    from_patient: bool,
    body: str = "",
    photo: bytes | None = None,
    photo_name: str = "",
    request: Any = None,
) -> Thread:
    """Open a conversation with its first message; nothing is stored when that message is
    rejected (MessageRejected)."""
    subject = subject.strip()
    if not subject:
        raise MessageRejected("Give the conversation a subject.")
    with media_writes(), transaction.atomic():
        thread = Thread.objects.create(
            patient=patient,
            subject=subject[:200],
            started_by=started_by,
            last_message_at=timezone.now(),
        )
        message_send(
            thread=thread,
            sender=started_by,
            from_patient=from_patient,
            body=body,
            photo=photo,
            photo_name=photo_name,
            request=request,
        )
    return thread


def thread_mark_read(*, thread: Thread, user: Any) -> None:
    """Everything in the thread up to now counts as read by ``user``; idempotent."""
    ThreadRead.objects.update_or_create(
        thread=thread, user=user, defaults={"last_read_at": timezone.now()}
    )


def message_photo_to_scan(*, message: Message, user: Any, task: str, request: Any = None) -> Any:
    """Send a message's photo on to diagnosis as a scan of the thread's patient (classified by
    ``task``'s active model). Returns the diagnosis UploadOutcome; MessageRejected when the
    message has no photo or was forwarded already (one photo, one scan)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services import scan_upload

    with transaction.atomic():
        message = (
            Message.objects.select_for_update().select_related("thread__patient").get(pk=message.pk)
        )
        if not message.photo:
            raise MessageRejected("This message has no photo.")
        if message.scan_id is not None:
            raise MessageRejected("This photo has already been sent to diagnosis.")
        with message.photo.open("rb") as handle:
            data = handle.read()
        upload = SimpleUploadedFile(
            message.photo_name or "photo.jpg", data, content_type="image/jpeg"
        )
        outcome = scan_upload(
            patient=message.thread.patient,
            files=[upload],
            uploaded_by=user,
            task=task,
            request=request,
        )
        if not outcome.scans:
            reason = outcome.rejected[0].message if outcome.rejected else "it was not accepted"
            raise MessageRejected(f"Diagnosis did not accept the photo: {reason}")
        message.scan = outcome.scans[0]
        message.save(update_fields=["scan"])
    return outcome
