"""Remote monitoring on the patient page: latest NEWS2, open alerts, and alert events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import reverse

from medai_site.patients.models import Patient
from medai_site.patients.timeline import Panel, TimelineEntry, register_entries, register_panel
from remote_care.models import Alert, Observation


@register_panel
def monitoring_panel(patient: Patient, user: Any) -> Panel:
    latest = Observation.objects.filter(patient=patient).order_by("-taken_at").first()
    open_alerts = Alert.objects.filter(patient=patient).exclude(status="resolved").count()
    return Panel(
        title="Remote monitoring",
        template="remote_care/partials/patient_panel.html",
        context={
            "latest": latest,
            "open_alerts": open_alerts,
            "devices": patient.devices.filter(revoked_at__isnull=True).count(),
        },
        order=20,
    )


@register_entries
def alert_entries(patient: Patient, user: Any) -> Iterator[TimelineEntry]:
    url = reverse("remote_care:patient_monitoring", args=[patient.pk])
    for alert in Alert.objects.filter(patient=patient)[:50]:
        yield TimelineEntry(
            when=alert.raised_at,
            title=f"Alert: {alert.get_level_display()}",
            detail=f"NEWS2 {alert.news2_total}; {alert.get_status_display()}",
            section="Remote care",
            url=url,
        )
