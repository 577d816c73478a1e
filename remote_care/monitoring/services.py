"""Every write of monitoring: alerts raised by the alerting policy, their notices and their
lifecycle (acknowledge, escalate, resolve)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from remote_care.models import Alert, Monitoring, Observation
from remote_care.physiology.news2 import AlertState, ScoredSet, score_news2
from remote_care.physiology.news2 import Observation as News2Observation
from remote_care.physiology.news2_batch import SetLevel, replay_alerts_batch

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# How many earlier scored sets the trend rule needs to see besides the new batch.
HISTORY_FOR_TREND = 10


@dataclass(frozen=True, slots=True)
class StoredSet:
    """An observation set the ingest has just inserted, as it hands it on: its row id, time,
    validated values (device names) and NEWS2 numbers."""

    pk: int
    taken_at: datetime
    values: Mapping[str, Any]
    news2_total: int
    news2_partial: bool
    any_single_three: bool


def alerts_raise(*, monitoring: Monitoring, new: Sequence[StoredSet]) -> list[Alert]:
    """Run the alerting policy over the new sets in time order, after the patient's latest
    earlier sets, create the alerts it raises and persist its state; call inside the ingest's
    transaction, with the monitoring row locked."""
    if not new:
        return []
    first = new[0].taken_at
    earlier = list(
        Observation.objects.filter(patient=monitoring.patient, taken_at__lt=first).order_by(
            "-taken_at"
        )[:HISTORY_FOR_TREND]
    )[::-1]
    scale = monitoring.spo2_scale
    state = AlertState.from_dict(monitoring.alert_state) if monitoring.alert_state else AlertState()

    def full(index: int) -> ScoredSet:
        values = new[index].values
        scored = score_news2(News2Observation.from_vitals(values, spo2_scale=scale))
        return ScoredSet(taken_at=new[index].taken_at, result=scored)

    decided, state = replay_alerts_batch(
        history=[_scored_from_row(o, scale) for o in earlier],
        new=[SetLevel(s.taken_at, s.news2_total, s.any_single_three, s.news2_partial) for s in new],
        full=full,
        state=state,
        window=HISTORY_FOR_TREND + 1,
    )
    raised = [
        Alert(
            patient=monitoring.patient,
            observation_id=new[index].pk,
            level=alert.kind.name,
            news2_total=alert.total,
            reason=alert.reason,
            response=alert.response,
            raised_at=alert.raised_at,
        )
        for index, alert in decided
    ]
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
        taken_at=observation.taken_at,
        result=score_news2(News2Observation.from_vitals(values, spo2_scale=spo2_scale)),
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


def alert_transition(*, alert: Alert, action: str, user: User, request: Any = None) -> Alert:
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
