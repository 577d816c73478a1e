"""Treatment on the patient page: a panel linking to the options, and plans on the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import reverse

from medai_site.patients.models import Patient
from medai_site.patients.timeline import Panel, TimelineEntry, register_entries, register_panel
from treatment.models import TreatmentPlan


@register_panel
def treatment_panel(patient: Patient, user: Any) -> Panel:
    plans = list(
        TreatmentPlan.objects.filter(patient=patient).select_related("assessment__model_version")[
            :3
        ]
    )
    return Panel(
        title="Treatment options",
        template="treatment/partials/patient_panel.html",
        context={"plans": plans},
        order=20,
    )


@register_entries
def treatment_entries(patient: Patient, user: Any) -> Iterator[TimelineEntry]:
    for plan in TreatmentPlan.objects.filter(patient=patient).select_related(
        "created_by", "assessment__model_version"
    )[:50]:
        who = plan.created_by.get_full_name() or plan.created_by.get_username()
        yield TimelineEntry(
            when=plan.created_at,
            title=f"Treatment plan: {plan.arm_label}",
            detail=f"{who}; model {plan.assessment.model_version}",
            section="Treatment",
            url=reverse("treatment:assessment", args=[patient.pk, plan.assessment_id]),
        )
