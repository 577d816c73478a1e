"""Diagnosis on the patient page: an imaging panel and scan events on the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import reverse

from diagnosis.models import Prediction, Review, Scan
from medai_site.patients.models import Patient
from medai_site.patients.timeline import Panel, TimelineEntry, register_entries, register_panel


@register_panel
def imaging_panel(patient: Patient, user: Any) -> Panel:
    # Held scans (possible burned-in text) appear only on the scans page, awaiting confirmation.
    shown = Scan.objects.filter(patient=patient, held=False)
    scans = list(shown.prefetch_related("predictions__review")[:5])
    rows = []
    for scan in scans:
        predictions = sorted(scan.predictions.all(), key=lambda p: p.created_at, reverse=True)
        rows.append((scan, predictions[0] if predictions else None))
    return Panel(
        title="Imaging",
        template="diagnosis/partials/patient_panel.html",
        context={"rows": rows, "count": shown.count()},
        order=10,
    )


@register_entries
def imaging_entries(patient: Patient, user: Any) -> Iterator[TimelineEntry]:
    for scan in Scan.objects.filter(patient=patient, held=False)[:50]:
        yield TimelineEntry(
            when=scan.created_at,
            title=f"{scan.get_kind_display()} scan uploaded",
            detail=scan.modality or "",
            section="Imaging",
            url=reverse("diagnosis:scan_detail", args=[scan.pk]),
        )
    for prediction in Prediction.objects.filter(scan__patient=patient).select_related(
        "model_version"
    )[:50]:
        url = reverse("diagnosis:scan_detail", args=[prediction.scan_id])
        if prediction.scope == Prediction.Scope.OUT_OF_SCOPE:
            yield TimelineEntry(
                when=prediction.created_at,
                title="Model: outside its scope, not scored",
                detail=f"{prediction.model_version}: {prediction.scope_reason}",
                section="Imaging",
                url=url,
            )
            if prediction.overridden:
                yield TimelineEntry(
                    when=prediction.override_at,
                    title=f"Model, scored outside the model's scope: {_said(prediction)}",
                    detail=f"{prediction.model_version}; asked for: {prediction.override_reason}",
                    section="Imaging",
                    url=url,
                )
            continue
        yield TimelineEntry(
            when=prediction.created_at,
            title=f"Model: {_said(prediction)}",
            detail=str(prediction.model_version),
            section="Imaging",
            url=url,
        )
    for review in Review.objects.filter(prediction__scan__patient=patient).select_related(
        "reviewer", "prediction"
    )[:50]:
        yield TimelineEntry(
            when=review.reviewed_at,
            title=f"Review: {review.get_verdict_display().lower()} — {review.label}",
            detail=review.reviewer.get_full_name() or review.reviewer.get_username(),
            section="Imaging",
            url=reverse("diagnosis:scan_detail", args=[review.prediction.scan_id]),
        )


def _said(prediction: Prediction) -> str:
    return f"{prediction.predicted_class} ({prediction.confidence:.0%})"
