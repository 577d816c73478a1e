"""The patient portal: a patient's own readings and their conversations with the care team."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_GET, require_http_methods

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.pagination import page_of
from medai_site.core.roles import Role, role_required
from medai_site.patients.activation import portal_activation_tokens
from medai_site.patients.models import PortalAccount
from medai_site.patients.selectors import portal_account_for_activation
from medai_site.patients.services import portal_account_activate
from remote_care.devices.selectors import observations_recent
from remote_care.messaging.forms import MessageForm, ThreadForm
from remote_care.messaging.selectors import (
    message_get_for_patient,
    portal_patient,
    thread_get_for_patient,
    thread_messages,
    threads_for_patient,
)
from remote_care.messaging.services import thread_mark_read
from remote_care.messaging.views import MESSAGES_PER_PAGE, photo_response, send_from_form
from remote_care.models import Message, Thread


def portal_view(view: Callable) -> Callable:
    """Patient role required; the view receives the patient whose account this is."""

    @wraps(view)
    @role_required(Role.PATIENT)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            patient = portal_patient(user=request.user)
        except PortalAccount.DoesNotExist:
            raise Http404("This portal account is closed; ask your care team.") from None
        return view(request, patient, *args, **kwargs)

    return wrapped


def _audit(request: HttpRequest, patient: Any, page: str, obj: Any = None) -> None:
    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED,
        request=request,
        obj=obj or patient,
        patient=patient,
        detail={"page": f"portal {page}"},
    )


@require_GET
@portal_view
def home_view(request: HttpRequest, patient: Any) -> HttpResponse:
    _audit(request, patient, "home")
    threads = list(threads_for_patient(patient=patient, user=request.user)[:5])
    return render(
        request,
        "portal/home.html",
        {
            "patient": patient,
            "observations": observations_recent(patient=patient, limit=10),
            "threads": threads,
            "unread": sum(t.unread for t in threads),
        },
    )


@require_GET
@portal_view
def messages_view(request: HttpRequest, patient: Any) -> HttpResponse:
    _audit(request, patient, "messages")
    return render(
        request,
        "portal/messages.html",
        {"patient": patient, "threads": threads_for_patient(patient=patient, user=request.user)},
    )


@require_http_methods(["GET", "POST"])
@portal_view
def thread_new_view(request: HttpRequest, patient: Any) -> HttpResponse:
    form = ThreadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            thread = send_from_form(request, form, thread=None, patient=patient, from_patient=True)
            if thread is not None:
                return redirect("portal:thread", pk=thread.pk)
        status = 400
    return render(request, "portal/thread_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@portal_view
def thread_view(request: HttpRequest, patient: Any, pk: int) -> HttpResponse:
    try:
        thread = thread_get_for_patient(patient=patient, pk=pk)
    except Thread.DoesNotExist:
        raise ObjectNotVisible("No such conversation.", model=Thread, pk=pk) from None
    form = MessageForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid() and send_from_form(
            request, form, thread=thread, patient=patient, from_patient=True
        ):
            return redirect(reverse("portal:thread", args=[thread.pk]) + "#latest")
        status = 400
    _audit(request, patient, "conversation", obj=thread)
    thread_mark_read(thread=thread, user=request.user)
    pager = page_of(
        request,
        thread_messages(thread=thread),
        per_page=MESSAGES_PER_PAGE,
        noun="message",
        start="last",
    )
    return render(
        request,
        "portal/thread.html",
        {
            "thread": thread,
            "thread_messages": pager.object_list,
            "pager": pager,
            "form": form,
        },
        status=status,
    )


@require_GET
@portal_view
def photo_view(request: HttpRequest, patient: Any, pk: int) -> HttpResponse:
    try:
        message = message_get_for_patient(patient=patient, pk=pk)
    except Message.DoesNotExist:
        raise ObjectNotVisible(
            "No such photo.", model=Message, pk=pk, patient_lookup="thread__patient"
        ) from None
    _audit(request, patient, "photo", obj=message)
    return photo_response(message)


@method_decorator(login_not_required, name="dispatch")
class ActivateView(auth_views.PasswordResetConfirmView):
    """The link a clinician hands the patient: choose a password, then straight in.

    Only portal accounts can be activated here, and only with a token of the account's
    newest link; anything else (a staff or clinician reset token, a deactivated user, an
    older link) gets the same generic "link no longer works" page."""

    template_name = "portal/activate.html"
    token_generator = portal_activation_tokens
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("portal:home")

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        if user is None or portal_account_for_activation(user=user) is None:
            return None
        return user

    def form_valid(self, form: Any) -> HttpResponse:
        # The password and the activation record are written together or not at all.
        with transaction.atomic():
            response = super().form_valid(form)
            portal_account_activate(user=form.user, request=self.request)
        return response
