"""The unmatched-studies inbox: studies received over DICOM that no patient matched with
certainty, and the form a clinician assigns one with."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from diagnosis.models import DicomSend, UnmatchedStudy
from diagnosis.pacs.forms import UnmatchedAssignForm
from diagnosis.pacs.outbox import SendRefused, dicom_send_again
from diagnosis.pacs.selectors import (
    dicom_send_get,
    hospital_it,
    unmatched_study_get,
    unmatched_study_list,
    unmatched_study_unclaimed_get,
    unmatched_study_unclaimed_list,
)
from diagnosis.pacs.services import (
    AssignRefused,
    DiscardRefused,
    unmatched_study_assign,
    unmatched_study_discard,
)
from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.pagination import page_of
from medai_site.core.roles import Role, role_required


@require_http_methods(["GET"])
@role_required(Role.CLINICIAN)
def inbox_view(request: HttpRequest) -> HttpResponse:
    """The studies waiting for a patient, newest first."""
    pager = page_of(
        request,
        unmatched_study_list(user=request.user).prefetch_related("instances"),
        per_page=50,
        noun="study",
        plural="studies",
    )
    studies = pager.object_list
    # The list shows the identifiers the sender put in the studies.
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={
            "page": "unmatched studies",
            "page_number": pager.page.number,
            "shown": [s.pk for s in studies],
        },
    )
    return render(
        request, "diagnosis/unmatched_study_list.html", {"studies": studies, "pager": pager}
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def inbox_assign_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One waiting study and the form that assigns it to a patient of the user's care teams."""
    try:
        study = unmatched_study_get(user=request.user, pk=pk)
    except UnmatchedStudy.DoesNotExist:
        raise ObjectNotVisible(
            "No such study waiting for a patient.", model=UnmatchedStudy, pk=pk
        ) from None
    form = UnmatchedAssignForm(request.POST or None, user=request.user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            patient = form.cleaned_data["patient"]
            try:
                unmatched_study_assign(
                    study=study, patient=patient, user=request.user, request=request
                )
            except AssignRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Study assigned; its classification job is queued.")
                url = reverse("diagnosis:patient_scans", args=[patient.pk])
                return redirect(f"{url}?upload={study.upload_id}#upload-outcome")
        status = 400
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED,
        request=request,
        obj=study,
        detail={"page": "unmatched study"},
    )
    return render(
        request,
        "diagnosis/unmatched_study_assign.html",
        {"study": study, "form": form, "instances": study.instances.count()},
        status=status,
    )


@require_POST
@role_required(Role.CLINICIAN)
def send_again_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a result to its PACS destination again (a clinician of the patient; audited)."""
    try:
        send = dicom_send_get(user=request.user, pk=pk)
    except DicomSend.DoesNotExist:
        raise ObjectNotVisible(
            "No such result sent for your patients.",
            model=DicomSend,
            pk=pk,
            patient_lookup="prediction__scan__patient",
        ) from None
    try:
        send = dicom_send_again(send=send, user=request.user, request=request)
    except SendRefused as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    messages.success(request, f"Queued to be sent again to {send.destination.name}.")
    return redirect("diagnosis:scan_detail", pk=send.prediction.scan_id)


def _hospital_it_only(request: HttpRequest) -> None:
    if not hospital_it(request.user):
        raise PermissionDenied("This page is for hospital IT (superusers).")


@require_http_methods(["GET"])
def unclaimed_view(request: HttpRequest) -> HttpResponse:
    """Hospital IT: waiting studies that resemble no care team's patient, with what is needed
    to route them (sender, identifiers) and a discard action."""
    _hospital_it_only(request)
    return _unclaimed_page(request)


def _unclaimed_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    studies = unmatched_study_unclaimed_list(user=request.user)
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={"page": "unclaimed studies", "shown": [s.pk for s in studies]},
    )
    context = {"studies": studies, "error": error}
    return render(request, "diagnosis/unmatched_study_unclaimed.html", context, status=status)


@require_POST
def unclaimed_discard_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Hospital IT discards one unclaimed study (audited, files deleted)."""
    _hospital_it_only(request)
    try:
        study = unmatched_study_unclaimed_get(user=request.user, pk=pk)
    except UnmatchedStudy.DoesNotExist:
        raise ObjectNotVisible(
            "No such study waiting unclaimed.", model=UnmatchedStudy, pk=pk
        ) from None
    if request.POST.get("confirm") != "on":
        # Discarding deletes the files for good: the box says the study was checked first.
        error = f"Tick the box beside study #{study.pk} to confirm it may be discarded."
        return _unclaimed_page(request, error=error, status=400)
    try:
        deleted = unmatched_study_discard(study=study, user=request.user, request=request)
    except DiscardRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Study #{study.pk} discarded; {deleted} file{'s' if deleted != 1 else ''} deleted.",
        )
    return redirect("diagnosis:inbox_unclaimed")
