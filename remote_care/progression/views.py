"""Disease-progression analyses for researchers: models compared by cross-validation, and one
patient's trajectory with its forecast band."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.charts import chart_card
from medai_site.core.pagination import page_of
from medai_site.core.query_params import bad_request
from medai_site.core.roles import Role, role_required
from remote_care.progression.charts import progression_figure, progression_scatter_figure
from remote_care.progression.forms import ProgressionForm
from remote_care.progression.selectors import progression_analysis_get, progression_analysis_list
from remote_care.progression.services import progression_analysis_start

ANALYSES_PER_PAGE = 30
MODEL_LABELS = {
    "persistence": "Persistence (next value = last value)",
    "linear": "Linear regression",
    "decision_tree": "Decision tree",
    "mlp": "Neural network (MLP)",
    "gradient_boosting": "Gradient boosting",
}


@require_http_methods(["GET", "POST"])
@role_required(Role.RESEARCHER, Role.MODEL_ADMIN)
def progression_view(request: HttpRequest) -> HttpResponse:
    form = ProgressionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            analysis = progression_analysis_start(
                dataset=form.cleaned_data["dataset"],
                level=form.cleaned_data["level"],
                folds=form.cleaned_data["folds"],
                user=request.user,
            )
            messages.success(request, "Analysis started.")
            return redirect("remote_care:progression_detail", pk=analysis.pk)
        status = 400
    analyses = page_of(
        request,
        progression_analysis_list(),
        per_page=ANALYSES_PER_PAGE,
        noun="analysis",
        plural="analyses",
    )
    return render(
        request,
        "remote_care/progression.html",
        {"form": form, "analyses": analyses.object_list, "pager": analyses},
        status=status,
    )


@require_GET
@role_required(Role.RESEARCHER, Role.MODEL_ADMIN)
def progression_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    analysis = progression_analysis_get(pk=pk)
    if analysis is None:
        raise Http404("No such analysis.")
    results = analysis.results or {}
    patients = results.get("patients") or {}
    selected = request.GET.get("patient") or (next(iter(patients), None))
    if selected is not None and selected not in patients:
        # Plain text that does not quote the value: it came from the query string.
        return bad_request("No such patient in this data set; choose one from the list.")
    chart = None
    if selected and analysis.dataset == "pbcseq":
        chart = chart_card(
            "trajectory",
            f"Patient {selected}: bilirubin and forecast",
            progression_figure(patients[selected], target=results.get("target", "")),
        )
    elif selected:
        chart = chart_card(
            "trajectory",
            "Predicted against observed progression",
            progression_scatter_figure(patients, selected),
        )
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED,
        request=request,
        obj=analysis,
        detail={"page": "progression analysis", "research_patient": selected},
    )
    cv = [
        {**row, "label": MODEL_LABELS.get(row["model"], row["model"])}
        for row in results.get("cv", [])
    ]
    return render(
        request,
        "remote_care/progression_detail.html",
        {
            "analysis": analysis,
            "results": results,
            "cv": cv,
            "best_label": MODEL_LABELS.get(results.get("best", ""), ""),
            "patient_ids": sorted(patients, key=lambda k: int(k)),
            "selected": selected,
            "patient": patients.get(selected) if selected else None,
            "chart": chart,
        },
    )
