"""Reads of monitoring: alerts (scoped to the user's care teams) and NEWS2 history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from medai_site.patients.selectors import patient_list
from remote_care.models import Alert

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


def alert_get(*, user: AnyUser, pk: int) -> Alert:
    """An alert about one of the user's patients; Alert.DoesNotExist otherwise."""
    return Alert.objects.select_related("patient").get(pk=pk, patient__in=patient_list(user=user))


def alerts_for(*, patient: Any, open_only: bool = False) -> QuerySet[Alert]:
    """The patient's alerts, newest first."""
    alerts = Alert.objects.filter(patient=patient)
    if open_only:
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    return alerts.select_related("acknowledged_by", "resolved_by")


def news2_history(*, patient: Any, since: datetime) -> list[tuple[datetime, int]]:
    """(taken at, NEWS2 total) of the patient's scored sets since ``since``, oldest first (at
    most 5,000)."""
    # Plain tuples: model instances from .only() through the related manager re-read their
    # deferred patient_id one query per reading (672 queries for a week at 15 minutes).
    return list(
        patient.observations.filter(taken_at__gte=since, news2_total__isnull=False)
        .order_by("taken_at")
        .values_list("taken_at", "news2_total")[:5000]
    )
