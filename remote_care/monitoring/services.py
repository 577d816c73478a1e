"""Every write of monitoring: alerts raised by the alerting policy, their notices and their
lifecycle (acknowledge, escalate, resolve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from remote_care.models import Alert, Monitoring, Observation
from remote_care.physiology.news2 import AlertState, ScoredSet, evaluate_alerts, score_news2
from remote_care.physiology.news2 import Observation as News2Observation

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# How many earlier scored sets the trend rule needs to see besides the new batch.
HISTORY_FOR_TREND = 10


def alerts_raise(*, monitoring: Monitoring, new: list[Observation]) -> list[Alert]:
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
