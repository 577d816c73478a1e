"""The platform's own contributions to the patient timeline: registration, care team, jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.urls import reverse

from medai_site.jobs.models import Job
from medai_site.patients.models import Patient
from medai_site.patients.timeline import TimelineEntry, register_entries

if TYPE_CHECKING:
    from medai_site.core.roles import AnyUser


@register_entries
def registration_entries(patient: Patient, user: AnyUser) -> Iterator[TimelineEntry]:
    detail = f"Source: {patient.source}" if patient.source else ""
    yield TimelineEntry(when=patient.created_at, title="Registered in MedAI", detail=detail)
    for membership in patient.memberships.select_related("user"):
        name = membership.user.get_full_name() or membership.user.get_username()
        yield TimelineEntry(
            when=membership.added_at,
            title=f"{name} joined the care team",
            detail=membership.get_role_display(),
            section="Care team",
        )


@register_entries
def job_entries(patient: Patient, user: AnyUser) -> Iterator[TimelineEntry]:
    for job in Job.objects.filter(patient=patient).order_by("-created_at")[:50]:
        yield TimelineEntry(
            when=job.created_at,
            title=job.title,
            detail=job.get_status_display(),
            url=reverse("jobs:detail", args=[job.pk]),
            section="Jobs",
        )
