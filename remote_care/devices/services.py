"""Every write of devices: registration, tokens and their revocation, and the ingest of
observation sets (scored with NEWS2, alerts raised server-side)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from remote_care.models import Alert, Device, Monitoring, Observation
from remote_care.monitoring.services import alerts_notify, alerts_raise
from remote_care.physiology.news2 import Observation as News2Observation
from remote_care.physiology.news2 import score_news2

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TOKEN_PREFIX = "mdv"  # noqa: S105 (a public marker in every device token, not a secret)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedDevice:
    device: Device
    token: str  # shown once; only its hash is stored


def device_register(
    *, patient: Any, label: str, registered_by: User, request: Any = None
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


def device_revoke(*, device: Device, user: User, request: Any = None) -> Device:
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
            scored = score_news2(
                News2Observation.from_vitals(item, spo2_scale=monitoring.spo2_scale)
            )
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
        result.alerts = alerts_raise(monitoring=monitoring, new=result.stored)
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


# Devices whose clock was never set report 1970 (Unix epoch) or their clock chip's default
# (1980, 2000); no reading from before this is a real one, and dates centuries back also
# fall outside what time zones and RFC 3339 can express.
OBSERVATIONS_FROM = datetime(2001, 1, 1, tzinfo=UTC)


def observation_future_limit() -> datetime:
    """Device clocks drift; observations more than 5 minutes in the future are refused."""
    return timezone.now() + timedelta(minutes=5)
