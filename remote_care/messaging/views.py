"""Clinicians' side of messaging: the inbox, conversations, photos, portal accounts."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.pagination import page_of
from medai_site.core.query_params import bad_request
from medai_site.core.roles import Role, role_required
from medai_site.patients.models import Patient
from medai_site.patients.pages import PatientPage, patient_page
from medai_site.patients.services import (
    PortalAccountError,
    portal_account_create,
    portal_account_revoke,
    portal_link_issue,
)
from remote_care.messaging.forms import MessageForm, PortalInviteForm, ThreadForm
from remote_care.messaging.selectors import (
    message_get_for_clinician,
    portal_account_for,
    thread_get_for_clinician,
    thread_messages,
    threads_for_clinician,
)
from remote_care.messaging.services import (
    MessageRejected,
    message_photo_to_scan,
    message_send,
    thread_mark_read,
    thread_start,
)
from remote_care.models import Message, Thread

#: Messages on one page of a conversation; it opens on the newest page, above the reply form.
MESSAGES_PER_PAGE = 30


def send_from_form(
    request: HttpRequest,
    form: MessageForm,
    *,
    thread: Thread | None,
    patient: Patient,
    from_patient: bool,
) -> Thread | None:
    """Send what a valid message/thread form holds; the form gets the error on rejection."""
    photo, photo_name = form.photo_bytes()
    try:
        if thread is None:
            return thread_start(
                patient=patient,
                subject=form.cleaned_data["subject"],
                started_by=request.user,
                from_patient=from_patient,
                body=form.cleaned_data["body"],
                photo=photo,
                photo_name=photo_name,
                request=request,
            )
        message_send(
            thread=thread,
            sender=request.user,
            from_patient=from_patient,
            body=form.cleaned_data["body"],
            photo=photo,
            photo_name=photo_name,
            request=request,
        )
        return thread
    except MessageRejected as exc:
        form.add_error("photo" if photo else None, str(exc))
        return None


def photo_response(message: Message) -> HttpResponse:
    if not message.photo:
        raise Http404("This message has no photo.")
    response = FileResponse(message.photo.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _thread_or_404(request: HttpRequest, pk: int) -> Thread:
    try:
        return thread_get_for_clinician(user=request.user, pk=pk)
    except Thread.DoesNotExist:
        raise ObjectNotVisible(
            "No such conversation among your patients.", model=Thread, pk=pk
        ) from None


@require_GET
@role_required(Role.CLINICIAN)
def inbox_view(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    pager = page_of(
        request,
        threads_for_clinician(user=request.user, unread_only=unread_only),
        per_page=50,
        noun="conversation",
    )
    threads = pager.object_list
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={
            "page": "messages inbox",
            "threads": len(threads),
            "page_number": pager.page.number,
        },
    )
    return render(
        request,
        "remote_care/inbox.html",
        {"threads": threads, "pager": pager, "unread_only": unread_only},
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def thread_view(request: HttpRequest, pk: int) -> HttpResponse:
    thread = _thread_or_404(request, pk)
    form = MessageForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and send_from_form(
            request, form, thread=thread, patient=thread.patient, from_patient=False
        ):
            return redirect(reverse("remote_care:thread", args=[thread.pk]) + "#latest")
        status = 400
    pager = page_of(
        request,
        thread_messages(thread=thread),
        per_page=MESSAGES_PER_PAGE,
        noun="message",
        start="last",
    )
    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED,
        request=request,
        obj=thread,
        patient=thread.patient,
        detail={"page": "conversation", "page_number": pager.page.number},
    )
    thread_mark_read(thread=thread, user=request.user)
    from diagnosis.selectors import active_versions

    return render(
        request,
        "remote_care/thread.html",
        {
            "thread": thread,
            "patient": thread.patient,
            "thread_messages": pager.object_list,
            "pager": pager,
            "form": form,
            "diagnosis_tasks": [(v.task, f"{v.task} (v{v.version})") for v in active_versions()],
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
@patient_page("new conversation")
def thread_new_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    patient = page.patient
    form = ThreadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            thread = send_from_form(request, form, thread=None, patient=patient, from_patient=False)
            if thread is not None:
                return redirect("remote_care:thread", pk=thread.pk)
        status = 400
    page.viewed()
    return render(
        request,
        "remote_care/thread_new.html",
        {"patient": patient, "form": form},
        status=status,
    )


def _photo_message_or_404(request: HttpRequest, pk: int) -> Message:
    try:
        return message_get_for_clinician(user=request.user, pk=pk)
    except Message.DoesNotExist:
        raise ObjectNotVisible(
            "No such photo among your patients' messages.",
            model=Message,
            pk=pk,
            patient_lookup="thread__patient",
        ) from None


@require_GET
@role_required(Role.CLINICIAN)
def message_photo_view(request: HttpRequest, pk: int) -> HttpResponse:
    message = _photo_message_or_404(request, pk)
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED,
        request=request,
        obj=message,
        patient=message.thread.patient,
        detail={"photo": message.pk},
    )
    return photo_response(message)


@require_POST
@role_required(Role.CLINICIAN)
def message_photo_to_scan_view(request: HttpRequest, pk: int) -> HttpResponse:
    message = _photo_message_or_404(request, pk)
    from diagnosis.selectors import active_versions

    tasks = {v.task for v in active_versions()}
    task = request.POST.get("task", "")
    if task not in tasks:
        return bad_request("Choose an imaging model in service to classify the photo with.")
    try:
        outcome = message_photo_to_scan(
            message=message, user=request.user, task=task, request=request
        )
    except MessageRejected as exc:
        messages.error(request, str(exc))
        return redirect("remote_care:thread", pk=message.thread_id)
    messages.success(request, "The photo was sent to diagnosis; its classification is running.")
    url = reverse("diagnosis:patient_scans", args=[message.thread.patient_id])
    return redirect(f"{url}?upload={outcome.upload.pk}#upload-outcome")


@require_POST
@role_required(Role.CLINICIAN)
@patient_page()
def portal_access_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    """Open, re-link or revoke the patient's portal account (one POST per action)."""
    patient = page.patient
    action = request.POST.get("action", "")
    link_base = request.build_absolute_uri("/").rstrip("/")
    account = portal_account_for(patient=patient)
    invitation = None
    if action == "create":
        form = PortalInviteForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(e for errs in form.errors.values() for e in errs)
            return bad_request(f"Portal account not created: {errors}")
        try:
            invitation = portal_account_create(
                patient=patient,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                created_by=request.user,
                link_base=link_base,
                request=request,
            )
        except PortalAccountError as exc:
            messages.error(request, str(exc))
    elif action in {"link", "revoke"} and account is not None:
        if action == "link":
            try:
                invitation = portal_link_issue(
                    account=account, issued_by=request.user, link_base=link_base, request=request
                )
            except PortalAccountError as exc:
                return bad_request(f"No sign-in link issued: {exc}")
            if not invitation.activation_path:
                messages.success(
                    request,
                    "A new sign-in link was e-mailed to the patient's address on file. It is "
                    "not shown here because the patient has already activated the account.",
                )
        else:
            portal_account_revoke(account=account, revoked_by=request.user, request=request)
            messages.success(request, "Portal access revoked; the patient can no longer sign in.")
    else:
        return bad_request("Unknown portal action; use create (with a user name), link or revoke.")
    if invitation is not None and invitation.activation_path:
        # Shown once, on the next page only (like a device token), and only while the
        # account has never been activated (portal_link_issue decides).
        request.session["portal_link"] = link_base + invitation.activation_path
    return redirect("remote_care:patient_monitoring", patient_pk=patient.pk)
