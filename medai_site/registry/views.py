"""The governance timeline of a model version and its actions (validate again, approve,
activate, roll back). Model admins act; superusers (hospital IT) may read. No patient data."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from medai_site.core.charts import chart_card
from medai_site.core.roles import Role, has_role, model_admin_or_it_required, role_required
from medai_site.registry import charts
from medai_site.registry.forms import ApproveForm, ReasonForm
from medai_site.registry.models import ModelValidation, ModelVersion
from medai_site.registry.selectors import (
    model_approval_latest,
    model_validation_latest,
    model_version_active,
    model_version_get,
    model_version_previous_active,
    model_version_timeline,
)
from medai_site.registry.services import (
    model_task_bootstrappable,
    model_validation_start,
    model_version_activate,
    model_version_approve,
    model_version_rollback,
)


def _version(pk: int) -> ModelVersion:
    try:
        return model_version_get(pk=pk)
    except ModelVersion.DoesNotExist:
        raise Http404("No such model version.") from None


def _page(
    request: HttpRequest,
    version: ModelVersion,
    *,
    status: int = 200,
    forms: dict[str, Any] | None = None,
    error: str = "",
) -> HttpResponse:
    validation = model_validation_latest(version=version)
    figure = charts.validation_comparison_figure(validation)
    forms = forms or {}
    can_act = has_role(request.user, Role.MODEL_ADMIN)
    active = model_version_active(task=version.task)
    return render(
        request,
        "registry/modelversion_governance.html",
        {
            "version": version,
            "timeline": model_version_timeline(version=version),
            "validation": validation,
            "approval": model_approval_latest(version=version),
            "chart": chart_card("validation-chart", "Held-out comparison", figure)
            if figure
            else None,
            "can_act": can_act,
            "is_creator": version.created_by_id == request.user.pk,
            "active": active,
            "bootstrap": model_task_bootstrappable(task=version.task),
            "previous": model_version_previous_active(task=version.task)
            if version.status == ModelVersion.Status.ACTIVE
            else None,
            "validation_pending": validation is not None
            and validation.status == ModelValidation.Status.PENDING,
            "approve_form": forms.get("approve") or ApproveForm(),
            "activate_form": forms.get("activate") or ReasonForm(prefix="activate"),
            "rollback_form": forms.get("rollback") or ReasonForm(prefix="rollback"),
            "error": error,
        },
        status=status,
    )


@require_GET
@model_admin_or_it_required
def governance_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, _version(pk))


@require_POST
@role_required(Role.MODEL_ADMIN)
def validate_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    model_validation_start(version=version, user=request.user, request=request)  # type: ignore[arg-type]  # role_required: signed in
    messages.success(request, f"{version} is being validated on its held-out set.")
    return redirect("registry:governance", pk=version.pk)


@require_POST
@role_required(Role.MODEL_ADMIN)
def approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        return _page(request, version, status=400, forms={"approve": form})
    try:
        approval = model_version_approve(
            version=version,
            user=request.user,  # type: ignore[arg-type]  # role_required: signed in
            reason=form.cleaned_data["reason"],
            override=form.cleaned_data["override"],
            request=request,
        )
    except ValidationError as exc:
        return _page(
            request, version, status=400, forms={"approve": form}, error=" ".join(exc.messages)
        )
    messages.success(
        request, f"Approved {version}" + (" with an override." if approval.override else ".")
    )
    return redirect("registry:governance", pk=version.pk)


@require_POST
@role_required(Role.MODEL_ADMIN)
def activate_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    form = ReasonForm(request.POST, prefix="activate")
    if not form.is_valid():
        return _page(request, version, status=400, forms={"activate": form})
    try:
        model_version_activate(
            version=version,
            user=request.user,  # type: ignore[arg-type]  # role_required: signed in
            reason=form.cleaned_data["reason"],
            request=request,
        )
    except ValidationError as exc:
        return _page(
            request, version, status=400, forms={"activate": form}, error=" ".join(exc.messages)
        )
    messages.success(request, f"{version} is now in service.")
    return redirect("registry:governance", pk=version.pk)


@require_POST
@role_required(Role.MODEL_ADMIN)
def rollback_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    form = ReasonForm(request.POST, prefix="rollback")
    if not form.is_valid():
        return _page(request, version, status=400, forms={"rollback": form})
    if version.status != ModelVersion.Status.ACTIVE:
        return _page(
            request,
            version,
            status=400,
            forms={"rollback": form},
            error=f"{version} is not in service; roll back from the version in service.",
        )
    try:
        restored = model_version_rollback(
            task=version.task,
            user=request.user,  # type: ignore[arg-type]  # role_required: signed in
            reason=form.cleaned_data["reason"],
            request=request,
        )
    except ValidationError as exc:
        return _page(
            request, version, status=400, forms={"rollback": form}, error=" ".join(exc.messages)
        )
    messages.success(request, f"Rolled back: {restored} is in service again.")
    return redirect("registry:governance", pk=restored.pk)
