"""Pages of the deterioration model: model admins train and compare versions; clinicians
read the facts card of the version in service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from medai_site.core.charts import TRAINING_NOT_STARTED, chart_card
from medai_site.core.downloads import fhir_export
from medai_site.core.pagination import page_of
from medai_site.core.roles import Role, role_required
from medai_site.patients.pages import PatientPage, patient_page
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_active, model_version_release_record
from remote_care.risk.charts import reliability_figure, risk_training_figure
from remote_care.risk.fhir import scores_bundle
from remote_care.risk.forms import RiskTrainingForm
from remote_care.risk.selectors import (
    risk_model_versions,
    risk_scores_for_export,
    risk_training_job_latest,
)
from remote_care.risk.services import (
    RISK_TASK,
    risk_training_start,
    version_cut_offs,
    version_input_contract,
)

#: Model versions on one page of the deterioration model's page, newest first.
VERSIONS_PER_PAGE = 20


def _comparison(version: ModelVersion | None) -> dict[str, Any] | None:
    return (version.metrics or {}).get("comparison") if version else None


def comparison_rows(comparison: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The comparison's reports with their top-20 % operating point lifted out for a table."""
    if not comparison:
        return []
    return [
        {**r, "top20": (r.get("at_rate") or {}).get("top 20%", {})} for r in comparison["reports"]
    ]


def _reliability_chart(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    figure = reliability_figure(comparison["reports"]) if comparison else None
    if figure is None:
        return None
    return chart_card("reliability", "Calibration on held-out stays", figure)


@require_http_methods(["GET", "POST"])
@role_required(Role.MODEL_ADMIN)
def risk_models_view(request: HttpRequest) -> HttpResponse:
    form = RiskTrainingForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            risk_training_start(
                spec=data["spec"],
                members=data["members"],
                max_epochs=data["max_epochs"],
                activate=data["activate"],
                user=request.user,
            )
            messages.success(request, "Training started; its curves appear below as it runs.")
            return redirect("remote_care:risk_models")
        status = 400
    else:
        status = 200
    versions = page_of(
        request, risk_model_versions(), per_page=VERSIONS_PER_PAGE, noun="version", param="versions"
    )
    active = model_version_active(task=RISK_TASK)
    shown = active or risk_model_versions().first()
    job = risk_training_job_latest()
    curves = ((job.live or {}).get("curves") if job else None) or (
        (shown.metrics or {}).get("curves") if shown else None
    )
    return render(
        request,
        "remote_care/risk_models.html",
        {
            "form": form,
            "versions": versions.object_list,
            "versions_pager": versions,
            "active": active,
            "shown": shown,
            "job": job,
            "comparison": _comparison(shown),
            "comparison_rows": comparison_rows(_comparison(shown)),
            "reliability_chart": _reliability_chart(_comparison(shown)),
            "curve_chart": chart_card(
                "risk-curves",
                "Validation AUROC per epoch",
                risk_training_figure(curves or {}),
                empty=TRAINING_NOT_STARTED
                if job is not None and not job.is_finished
                else "No training curves: no deterioration model has been trained here yet.",
            ),
        },
        status=status,
    )


@require_GET
@role_required(Role.CLINICIAN, Role.MODEL_ADMIN, Role.RESEARCHER)
def risk_model_facts_view(request: HttpRequest) -> HttpResponse:
    active = model_version_active(task=RISK_TASK)
    comparison = _comparison(active)
    return render(
        request,
        "remote_care/risk_facts.html",
        {
            "version": active,
            "comparison": comparison,
            "comparison_rows": comparison_rows(comparison),
            "reliability_chart": _reliability_chart(comparison),
            "operating_points": _operating_points(active),
            "contract": version_input_contract(active),
            "release": [model_version_release_record(version=active)] if active else [],
        },
    )


def _operating_points(version: Any) -> dict[str, float] | None:
    """The version's elevated/high risk cut-offs in percent (None when it has none)."""
    cuts = version_cut_offs(version)
    return None if cuts is None else {k: 100 * v for k, v in cuts.items()}


@require_GET
@role_required(Role.CLINICIAN)
@patient_page("risk scores (FHIR)")
def patient_risk_fhir_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    """The patient's deterioration risk scores as a FHIR R4 collection Bundle (RiskAssessment
    and Provenance each); audited as an export."""
    patient = page.patient
    bundle = scores_bundle(risk_scores_for_export(patient=patient))
    return fhir_export(
        request=request,
        bundle=bundle,
        filename=f"patient-{patient.pk}-risk-scores.json",
        obj=patient,
        patient=patient,
    )
