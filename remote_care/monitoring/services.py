"""Every write of monitoring: alerts raised by the alerting policy, their notices and their
lifecycle (acknowledge, escalate, resolve); the vital-sign roll-ups that long charts read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from remote_care.models import Alert, Monitoring, Observation, VitalRollup, VitalRollupCursor
from remote_care.monitoring.timeseries import rollup_hours_sql, rollup_minutes_sql
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


# --- Vital-sign roll-ups ------------------------------------------------------------------------

#: The sweep's row in VitalRollupCursor.
SWEEP_CURSOR = "observations"
#: Observations the sweep reads per call (by primary key).
ROLLUP_SWEEP_BATCH = 200_000
# The sweep leaves rows this young for its next run: an ingest transaction still open may hold
# lower primary keys, which would otherwise be passed over once it commits.
ROLLUP_SETTLE = timedelta(seconds=30)


def _minute_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def vitals_rollup_refresh(*, patient_ids: Iterable[int], start: datetime, end: datetime) -> int:
    """Recompute the minute and hour roll-ups of these patients' readings taken in [start, end]
    (widened to whole minutes, then whole hours): each touched bucket from all of its readings,
    replacing what was stored, so it is idempotent and safe to repeat or overlap. Returns the
    number of roll-up rows written. The ingest path calls it after storing observations (with
    the stored sets' earliest and latest taken_at); the sweep catches up whatever it missed."""
    ids = sorted({int(pk) for pk in patient_ids})
    if not ids or end < start:
        return 0
    lo = _minute_floor(start)
    hi = _minute_floor(end) + timedelta(minutes=1)
    hour_lo = lo.replace(minute=0)
    hour_hi = (hi - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)
    hour_hi += timedelta(hours=1)
    quote, ops = connection.ops.quote_name, connection.ops
    rollups = quote(VitalRollup._meta.db_table)
    minutes, repeat = rollup_minutes_sql(
        vendor=connection.vendor,
        rollups=rollups,
        observations=quote(Observation._meta.db_table),
        n_patients=len(ids),
    )
    hours = rollup_hours_sql(vendor=connection.vendor, rollups=rollups, n_patients=len(ids))

    def params(a: datetime, b: datetime) -> list[Any]:
        who: list[Any] = [ids] if connection.vendor == "postgresql" else list(ids)
        return [*who, ops.adapt_datetimefield_value(a), ops.adapt_datetimefield_value(b)]

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(minutes, params(lo, hi) * repeat)
        written = max(cursor.rowcount, 0)
        cursor.execute(hours, params(hour_lo, hour_hi))
        written += max(cursor.rowcount, 0)
    return written


def vitals_rollup_sweep(*, batch: int = ROLLUP_SWEEP_BATCH) -> int:
    """Roll up the observations stored since the last sweep (the next ``batch`` primary keys,
    leaving those younger than ROLLUP_SETTLE) and advance the cursor; idempotent, and a no-op
    while another sweep holds the cursor. Returns how many observations it rolled up."""
    VitalRollupCursor.objects.get_or_create(name=SWEEP_CURSOR)
    with transaction.atomic():
        mark = (
            VitalRollupCursor.objects.select_for_update(skip_locked=True)
            .filter(name=SWEEP_CURSOR)
            .first()
        )
        if mark is None:
            return 0
        after = mark.last_observation
        pending = Observation.objects.filter(pk__gt=after)
        first = pending.aggregate(first=Min("pk"))["first"]
        if first is None:
            return 0
        upto = first - 1 + batch
        young = pending.filter(received_at__gte=timezone.now() - ROLLUP_SETTLE)
        young_first = young.aggregate(first=Min("pk"))["first"]
        if young_first is not None:
            upto = min(upto, young_first - 1)
        spans = list(
            pending.filter(pk__lte=upto)
            .order_by()
            .values("patient_id")
            .annotate(start=Min("taken_at"), end=Max("taken_at"), top=Max("pk"), n=Count("pk"))
        )
        for span in spans:
            vitals_rollup_refresh(
                patient_ids=[span["patient_id"]], start=span["start"], end=span["end"]
            )
        if spans:
            mark.last_observation = max(span["top"] for span in spans)
            mark.save(update_fields=["last_observation", "updated_at"])
    return sum(span["n"] for span in spans)


def vitals_rollup_catch_up(*, patient_id: int) -> int:
    """Roll up the patient's observations the sweep has not reached yet (the vitals chart's
    fallback before it reads roll-ups); idempotent. Returns the roll-up rows written."""
    after = (
        VitalRollupCursor.objects.filter(name=SWEEP_CURSOR)
        .values_list("last_observation", flat=True)
        .first()
    ) or 0
    span = Observation.objects.filter(patient_id=patient_id, pk__gt=after).aggregate(
        start=Min("taken_at"), end=Max("taken_at")
    )
    if span["start"] is None:
        return 0
    return vitals_rollup_refresh(patient_ids=[patient_id], start=span["start"], end=span["end"])
