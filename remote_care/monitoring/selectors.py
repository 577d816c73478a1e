"""Reads of monitoring: alerts and recent observations, scoped to the user's care teams."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from medai_site.patients.selectors import patient_list
from remote_care.models import Alert, Observation


def alert_get(*, user: Any, pk: int) -> Alert:
    """An alert about one of the user's patients; Alert.DoesNotExist otherwise."""
    return Alert.objects.select_related("patient").get(pk=pk, patient__in=patient_list(user=user))


def observations_recent(*, patient: Any, limit: int = 20) -> QuerySet[Observation]:
    """The patient's latest observation sets, newest first."""
    return Observation.objects.filter(patient=patient).select_related("device")[:limit]


def alerts_for(*, patient: Any, open_only: bool = False) -> QuerySet[Alert]:
    """The patient's alerts, newest first."""
    alerts = Alert.objects.filter(patient=patient)
    if open_only:
        alerts = alerts.exclude(status=Alert.Status.RESOLVED)
    return alerts.select_related("acknowledged_by", "resolved_by")
