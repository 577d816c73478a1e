"""Shadow mode pages: which versions run in shadow and how each agrees with the version in
service. For model admins and superusers; aggregates only, no patient is named."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from medai_site.core.charts import chart_cards
from medai_site.core.roles import model_admin_or_it_required
from medai_site.registry import charts
from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import model_version_shadow_start, model_version_shadow_stop
from medai_site.registry.shadow_forms import ShadowStartForm, ShadowStopForm
from medai_site.registry.shadow_selectors import (
    shadow_candidates,
    shadow_dashboard,
    shadow_overview,
)


@require_GET
@model_admin_or_it_required
def shadow_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "registry/shadow_list.html",
        {"overview": shadow_overview(), "candidates": shadow_candidates()},
    )


def _dashboard(
    request: HttpRequest,
    version: ModelVersion,
    *,
    start_form: ShadowStartForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    board = shadow_dashboard(version=version)
    active_name = str(board.active) if board.active else "the active version"
    return render(
        request,
        "registry/shadow_dashboard.html",
        {
            "board": board,
            "version": version,
            "start_form": start_form or ShadowStartForm(),
            "stop_form": ShadowStopForm(),
            "error": error,
            "charts": chart_cards(
                [
                    (
                        "shadow-days",
                        "Agreement with the active version by day",
                        charts.shadow_agreement_over_time_figure(board.days),
                    ),
                    (
                        "shadow-confusion",
                        "Shadow answers against the active version's",
                        charts.shadow_confusion_figure(
                            board.labels, board.confusion, shadow=str(version), active=active_name
                        ),
                    ),
                ]
            ),
        },
        status=status,
    )


@require_GET
@model_admin_or_it_required
def shadow_dashboard_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _dashboard(request, get_object_or_404(ModelVersion, pk=pk))


@require_POST
@model_admin_or_it_required
def shadow_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    form = ShadowStartForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, version, start_form=form, status=400)
    try:
        model_version_shadow_start(
            version=version,
            user=request.user,  # type: ignore[arg-type]  # signed in: model_admin_or_it_required
            reason=form.cleaned_data["reason"],
            request=request,
        )
    except ValidationError as exc:
        return _dashboard(
            request, version, start_form=form, error=" ".join(exc.messages), status=409
        )
    messages.success(request, f"{version} now scores live traffic in shadow.")
    return redirect("registry:shadow_dashboard", pk=version.pk)


@require_POST
@model_admin_or_it_required
def shadow_stop_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    form = ShadowStopForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, version, error="The reason is too long.", status=400)
    stopped = model_version_shadow_stop(
        version=version,
        user=request.user,  # type: ignore[arg-type]  # signed in: model_admin_or_it_required
        reason=form.cleaned_data["reason"],
        request=request,
    )
    messages.success(
        request, f"Stopped the shadow of {version}." if stopped else f"{version} was not in shadow."
    )
    return redirect("registry:shadow_dashboard", pk=version.pk)
