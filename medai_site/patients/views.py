from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.roles import Role, role_required
from medai_site.patients.forms import PatientForm, PatientImportForm, PatientSearchForm
from medai_site.patients.pages import PatientPage, patient_page
from medai_site.patients.selectors import patient_care_team, patient_list
from medai_site.patients.services import PatientExists, patient_create, patient_import_start
from medai_site.patients.sources import CsvRejected
from medai_site.patients.timeline import patient_panels, patient_timeline

if TYPE_CHECKING:
    from medai_site.core.roles import AuthenticatedHttpRequest


@require_GET
@role_required(Role.CLINICIAN)
def patient_list_view(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    page = Paginator(patient_list(user=request.user, query=query), 25).get_page(
        request.GET.get("page")
    )
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={"query": query, "page": page.number, "shown": [p.pk for p in page]},
    )
    return render(
        request, "patients/patient_list.html", {"form": form, "page": page, "query": query}
    )


@require_GET
@role_required(Role.CLINICIAN)
@patient_page(kwarg="pk")
def patient_detail_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    patient = page.patient
    page.viewed()
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "care_team": patient_care_team(patient=patient),
            "panels": patient_panels(patient=patient, user=request.user),
            "timeline": patient_timeline(patient=patient, user=request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def patient_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                patient = patient_create(
                    created_by=request.user, request=request, **form.cleaned_data
                )
            except PatientExists as exc:
                form.add_error("mrn", str(exc))
            else:
                return redirect("patients:detail", pk=patient.pk)
        status = 400
    return render(request, "patients/patient_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def patient_import_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PatientImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data.get("file")
            source = form.cleaned_data["source"]
            try:
                job = patient_import_start(
                    user=request.user,
                    source=source,
                    upload=upload.read() if (upload and source == "csv") else None,
                    filename=upload.name if (upload and source == "csv") else "",
                    limit=form.cleaned_data.get("limit"),
                    request=request,
                )
            except (CsvRejected, ValueError) as exc:
                form.add_error("file" if source == "csv" else "source", str(exc))
            else:
                return redirect("jobs:detail", pk=job.pk)
        status = 400
    return render(request, "patients/patient_import.html", {"form": form}, status=status)
