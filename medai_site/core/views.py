from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.forms import SecondFactorForm
from medai_site.core.query_params import next_path
from medai_site.core.roles import Role, has_role
from medai_site.core.two_factor import (
    SecondFactorRejected,
    SecondFactorThrottled,
    recovery_codes_regenerate,
    second_factor_verify,
    totp_device_confirm,
    totp_device_confirmed,
    totp_device_start,
    totp_qr_svg,
    totp_secret_text,
    two_factor_required,
    two_factor_verified,
)
from medai_site.jobs.selectors import job_list
from medai_site.patients.selectors import patient_list, patient_recent
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_list

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from medai_site.core.roles import AuthenticatedHttpRequest

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict:
        context = super().get_context_data(**kwargs)
        context["idle_signed_out"] = self.request.session.pop("medai_idle_signed_out", False)
        return context


@require_GET
def home_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    context: dict[str, Any] = {
        "jobs": job_list(user=user)[:8],
        "is_clinician": has_role(user, Role.CLINICIAN),
        "is_model_admin": has_role(user, Role.MODEL_ADMIN),
        "is_researcher": has_role(user, Role.RESEARCHER),
    }
    if context["is_clinician"]:
        patients = patient_list(user=user)
        context["patient_count"] = patients.count()
        context["patients"] = patient_recent(user=user)
    if context["is_model_admin"]:
        context["model_versions"] = model_version_list(status=ModelVersion.Status.ACTIVE)
    context["jobs"] = jobs = list(context["jobs"])
    shown_patients = [p.pk for p in context.get("patients", [])]
    patient_jobs = [job.pk for job in jobs if job.patient_id]
    if context["is_clinician"] or patient_jobs:
        # The dashboard lists patients (and jobs named after them): audited like the list.
        audit_record(
            action=AuditEvent.Action.PATIENT_LIST_VIEWED,
            request=request,
            detail={"page": "home", "shown": shown_patients, "jobs": patient_jobs},
        )
    return render(request, "core/home.html", context)


@login_not_required
@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: database reachable; reveals nothing about patients."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        logger.exception("health check: database unreachable")
        checks["database"] = "unreachable"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


def permission_denied_view(
    request: HttpRequest, exception: Exception | None = None
) -> HttpResponse:
    message = str(exception) if exception and str(exception) else ""
    return render(request, "403.html", {"message": message}, status=403)


# --- Two-factor sign-in -------------------------------------------------------------------------


def _next_url(request: HttpRequest) -> str:
    return next_path(request, default=reverse("home"))


def _two_factor_user_required(request: HttpRequest) -> User:
    user = request.user
    if not user.is_authenticated or not two_factor_required(user=user):
        raise PermissionDenied("Two-factor sign-in is not required for your account.")
    return user


def _rejected_status(error: SecondFactorRejected) -> int:
    return 429 if isinstance(error, SecondFactorThrottled) else 400


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_verify_view(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in: a code from the authenticator app or a recovery code."""
    _two_factor_user_required(request)
    next_url = _next_url(request)
    if two_factor_verified(request=request):
        return redirect(next_url)
    if totp_device_confirmed(user=request.user) is None:
        return redirect(f"{reverse('two_factor_enrol')}?{urlencode({'next': next_url})}")
    form = SecondFactorForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            result = second_factor_verify(request=request, token=form.cleaned_data["code"])
        except SecondFactorRejected as error:
            form.add_error("code", str(error))
            status = _rejected_status(error)
        else:
            if result.recovery_code_used:
                messages.warning(
                    request,
                    f"You signed in with a recovery code ({result.recovery_codes_left} left). "
                    "If your phone is lost, set up a new authenticator and new codes.",
                )
            return redirect(next_url)
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "registration/two_factor_verify.html",
        {"form": form, "next": next_url},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_enrol_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Set up an authenticator: QR code and secret, confirmed by one code; then the recovery
    codes, shown once. Replacing an enrolled authenticator needs a verified session."""
    user = _two_factor_user_required(request)
    next_url = _next_url(request)
    if totp_device_confirmed(user=user) and not two_factor_verified(request=request):
        # A password alone must never replace the second factor.
        return redirect(f"{reverse('two_factor_verify')}?{urlencode({'next': next_url})}")
    device = totp_device_start(user=user)
    form = SecondFactorForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            codes = totp_device_confirm(
                request=request, device=device, token=form.cleaned_data["code"]
            )
        except SecondFactorRejected as error:
            form.add_error("code", str(error))
            status = _rejected_status(error)
        else:
            return render(
                request,
                "registration/two_factor_recovery_codes.html",
                {"codes": codes, "next": next_url, "enrolled": True},
            )
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "registration/two_factor_enrol.html",
        {
            "form": form,
            "next": next_url,
            "qr_svg": totp_qr_svg(device=device),
            "secret": totp_secret_text(device=device),
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_recovery_codes_view(request: HttpRequest) -> HttpResponse:
    """Regenerate the recovery codes (the old ones stop working); shown once."""
    user = _two_factor_user_required(request)
    codes = None
    if request.method == "POST":
        codes = recovery_codes_regenerate(user=user, request=request)
    return render(
        request,
        "registration/two_factor_recovery_codes.html",
        {"codes": codes, "next": reverse("home"), "enrolled": False},
    )
