from __future__ import annotations

import logging

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.roles import Role, has_role
from medai_site.jobs.selectors import job_list
from medai_site.patients.selectors import patient_list
from medai_site.registry.selectors import model_version_list

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
    context: dict[str, object] = {
        "jobs": job_list(user=user)[:8],
        "is_clinician": has_role(user, Role.CLINICIAN),
        "is_model_admin": has_role(user, Role.MODEL_ADMIN),
        "is_researcher": has_role(user, Role.RESEARCHER),
    }
    if context["is_clinician"]:
        patients = patient_list(user=user)
        context["patient_count"] = patients.count()
        context["patients"] = list(patients.order_by("-created_at")[:8])
    if context["is_model_admin"]:
        context["model_versions"] = model_version_list().filter(status="active")
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
