from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.core.charts import chart_cards
from medai_site.core.downloads import fhir_export
from medai_site.core.pagination import page_of
from medai_site.core.roles import Role, role_required
from medai_site.patients.models import Patient
from medai_site.patients.pages import PatientPage, patient_page
from medai_site.registry.selectors import (
    model_version_headline_metrics,
    model_version_release_record,
)
from treatment import charts
from treatment.fhir import assessments_bundle
from treatment.forms import (
    AssessmentForm,
    CohortForm,
    PlanForm,
    TrainingForm,
    TrialChoiceForm,
)
from treatment.ml.trials import TRIALS, PatientValidationError
from treatment.models import CohortAnalysis, TreatmentAssessment
from treatment.selectors import (
    assessment_export_list,
    assessment_get,
    assessment_list,
    assessment_plans,
    cohort_analysis_get,
    cohort_analysis_list,
    plan_list,
    prefill_from_facts,
    training_jobs,
    trials_in_service,
)
from treatment.services import (
    assessment_start,
    cohort_analysis_start,
    genomics_analysis_start,
    model_train_start,
    plan_record,
)


def _assessment_or_404(patient: Patient, pk: int) -> TreatmentAssessment:
    try:
        return assessment_get(patient=patient, pk=pk)
    except TreatmentAssessment.DoesNotExist:
        raise ObjectNotVisible(
            "No such assessment for this patient.", model=TreatmentAssessment, pk=pk
        ) from None


def _chosen_trial(request: HttpRequest, patient: Patient, keys: list[str]) -> str | None:
    # An explicit choice wins; else the trial the patient's record came from; else the first.
    asked = request.POST.get("trial") or request.GET.get("trial")
    if asked in keys:
        return asked
    source = str(patient.clinical_facts.get("dataset", "")).lower()
    if source in keys:
        return source
    return keys[0] if keys else None


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
@patient_page("treatment options")
def patient_options_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    patient = page.patient
    in_service = trials_in_service()
    trial = _chosen_trial(request, patient, [d.key for d, _ in in_service])
    form = None
    status = 200
    if trial is not None:
        definition = TRIALS[trial]
        form = AssessmentForm(
            request.POST if request.method == "POST" else None,
            definition=definition,
            initial=prefill_from_facts(definition, patient.clinical_facts),
        )
        if request.method == "POST":
            if form.is_valid():
                try:
                    assessment = assessment_start(
                        patient=patient,
                        trial=trial,
                        inputs=form.inputs(),
                        horizon=form.cleaned_data.get("horizon"),
                        user=request.user,
                        request=request,
                    )
                except PatientValidationError as exc:
                    for name, message in exc.errors.items():
                        form.add_error(name if name in form.fields else None, message)
                else:
                    # Post/redirect/get: the results page reloads itself when the job ends.
                    return redirect("treatment:assessment", patient.pk, assessment.pk)
            status = 400
    elif request.method == "POST":
        status = 400
    page.viewed()
    return render(
        request,
        "treatment/patient_options.html",
        {
            "patient": patient,
            "form": form,
            "trial": TRIALS.get(trial) if trial else None,
            "version": dict((d.key, v) for d, v in in_service).get(trial),
            "trial_form": TrialChoiceForm(initial={"trial": trial}, in_service=in_service),
            "several_trials": len(in_service) > 1,
            "assessments": list(assessment_list(patient=patient)[:20]),
            "plans": list(plan_list(patient=patient)[:50]),
        },
        status=status,
    )


def _charts(assessment: TreatmentAssessment) -> list[dict[str, Any]]:
    result = assessment.result
    found = [
        (
            "survival-curves",
            "Predicted survival curves per treatment",
            charts.survival_curves_figure(result, result.get("bands")),
        ),
        ("benefit", "Difference between treatments with intervals", charts.benefit_figure(result)),
        (
            "contributions",
            "Feature contributions to the predicted benefit",
            charts.contributions_figure(assessment.explanation),
        ),
    ]
    return chart_cards(found)


def _points(x: float | None, signed: bool = True) -> str:
    # Differences in probability read as percentage points, as in the model's own statement.
    if x is None:
        return "—"
    return f"{100 * x:+.1f} pp" if signed else f"{100 * x:.1f}%"


def _tables(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "arms": [
            {"label": a["label"], "value": _points(a["value"], False)} for a in result["arms"]
        ],
        "differences": [
            {
                "label": f"{d['label']} vs {d['versus_label']}",
                "difference": _points(d["difference"]),
                "interval": f"{_points(d['low'])} to {_points(d['high'])}"
                if d.get("low") is not None
                else "—",
                "includes_no_difference": d.get("includes_no_difference", True),
            }
            for d in result.get("differences", [])
        ],
    }


@require_GET
@role_required(Role.CLINICIAN)
@patient_page("treatment assessment")
def assessment_view(request: HttpRequest, page: PatientPage, pk: int) -> HttpResponse:
    patient = page.patient
    assessment = _assessment_or_404(patient, pk)
    page.viewed(obj=assessment)
    done = assessment.status == TreatmentAssessment.Status.DONE
    context: dict[str, Any] = {
        "patient": patient,
        "assessment": assessment,
        "trial": TRIALS.get(assessment.trial),
        "done": done,
        "plans": assessment_plans(assessment=assessment),
    }
    if done:
        recommended = assessment.result.get("recommendation", {}).get("arm", 0)
        context.update(
            {
                **_tables(assessment.result),
                "charts": _charts(assessment),
                "metrics": model_version_headline_metrics(assessment.model_version, limit=6),
                "release": [model_version_release_record(version=assessment.model_version)]
                if assessment.model_version
                else [],
                "plan_form": PlanForm(
                    arm_labels=assessment.arm_labels, initial={"arm": recommended}
                ),
            }
        )
    return render(request, "treatment/assessment_detail.html", context)


@require_GET
@role_required(Role.CLINICIAN)
@patient_page("treatment results (FHIR)")
def patient_fhir_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    """The patient's done treatment assessments as a FHIR R4 collection Bundle (RiskAssessment
    and Provenance each); audited as an export."""
    patient = page.patient
    bundle = assessments_bundle(assessment_export_list(patient=patient))
    return fhir_export(
        request=request,
        bundle=bundle,
        filename=f"patient-{patient.pk}-treatment-results.json",
        obj=patient,
        patient=patient,
    )


@require_POST
@role_required(Role.CLINICIAN)
@patient_page()
def plan_create_view(request: HttpRequest, page: PatientPage, pk: int) -> HttpResponse:
    patient = page.patient
    assessment = _assessment_or_404(patient, pk)
    form = PlanForm(request.POST, arm_labels=assessment.arm_labels)
    if not form.is_valid():
        messages.error(request, "Choose one of the trial's treatments for the plan.")
        return redirect("treatment:assessment", patient.pk, assessment.pk)
    try:
        plan = plan_record(
            assessment=assessment,
            arm=form.cleaned_data["arm"],
            note=form.cleaned_data["note"],
            user=request.user,
            request=request,
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("treatment:assessment", patient.pk, assessment.pk)
    messages.success(request, f"Plan recorded: {plan.arm_label}.")
    return redirect("treatment:patient_options", patient.pk)


@require_http_methods(["GET", "POST"])
@role_required(Role.MODEL_ADMIN)
def training_view(request: HttpRequest) -> HttpResponse:
    form = TrainingForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            model_train_start(
                trial=data["trial"],
                kind=data["kind"],
                activate=data["activate"],
                config={"n_bootstrap": data["n_bootstrap"]},
                user=request.user,
                request=request,
            )
            messages.success(request, "Training queued; its progress is shown below.")
            return redirect("treatment:training")
        status = 400
    return render(
        request,
        "treatment/training.html",
        {"form": form, "jobs": training_jobs(), "in_service": trials_in_service()},
        status=status,
    )


RESEARCH_ROLES = (Role.RESEARCHER, Role.MODEL_ADMIN)
ANALYSES_PER_PAGE = 20


@require_http_methods(["GET", "POST"])
@role_required(*RESEARCH_ROLES)
def cohort_view(request: HttpRequest) -> HttpResponse:
    in_service = trials_in_service()
    keys = [d.key for d, _ in in_service]
    asked = request.POST.get("trial") or request.GET.get("trial")
    trial = asked if asked in keys else (keys[0] if keys else None)
    form = None
    status = 200
    if trial is not None:
        form = CohortForm(
            request.POST if request.method == "POST" else None, definition=TRIALS[trial]
        )
        if request.method == "POST":
            if form.is_valid():
                try:
                    analysis = cohort_analysis_start(
                        trial=trial,
                        covariate=form.cleaned_data["covariate"],
                        horizon=form.cleaned_data.get("horizon"),
                        user=request.user,
                        request=request,
                    )
                except ValueError as exc:
                    form.add_error("horizon" if "horizon" in str(exc) else None, str(exc))
                else:
                    return redirect("treatment:cohort_detail", analysis.pk)
            status = 400
    elif request.method == "POST":
        status = 400
    analyses = page_of(
        request,
        cohort_analysis_list(),
        per_page=ANALYSES_PER_PAGE,
        noun="analysis",
        plural="analyses",
    )
    return render(
        request,
        "treatment/cohort.html",
        {
            "form": form,
            "trial": TRIALS.get(trial) if trial else None,
            "version": dict((d.key, v) for d, v in in_service).get(trial),
            "trial_form": TrialChoiceForm(initial={"trial": trial}, in_service=in_service),
            "several_trials": len(in_service) > 1,
            "analyses": analyses.object_list,
            "pager": analyses,
        },
        status=status,
    )


@require_POST
@role_required(*RESEARCH_ROLES)
def genomics_start_view(request: HttpRequest) -> HttpResponse:
    analysis = genomics_analysis_start(user=request.user)
    return redirect("treatment:cohort_detail", analysis.pk)


def _share(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _cohort_context(result: dict[str, Any]) -> dict[str, Any]:
    found: list[tuple[str, str, dict[str, Any] | None]] = []
    sentences = []
    qini_by_arm = {q["arm"]: q for q in result.get("qini", [])}
    for i, contrast in enumerate(result.get("contrasts", [])):
        found.append(
            (
                f"cohort-benefit-{i}",
                f"Predicted benefit of {contrast['label']} vs {result['covariate_label']}",
                charts.cohort_benefit_figure(result, contrast),
            )
        )
        q = qini_by_arm.get(contrast["label"])
        if q:
            found.append((f"qini-{i}", "Qini curve vs random targeting", charts.qini_figure(q)))
        text = (
            f"{contrast['label']} vs {contrast['versus']}: the model predicts a benefit for "
            f"{_share(contrast['share_favouring'])} of the {result['n']} trial patients"
        )
        if contrast.get("has_interval"):
            text += (
                f"; for {_share(contrast['share_excluding_zero'])} the "
                f"{100 * result['level']:.0f}% interval excludes no difference"
            )
        text += "."
        if q:
            verdict = (
                "better than random targeting"
                if q["qini_coefficient"] > 0
                else "no better than random targeting"
            )
            text += (
                f" Ranking the {q['n']} held-out patients of these two arms by predicted benefit "
                f"gives a Qini coefficient of {q['qini_coefficient']:+.3f} ({verdict})."
            )
        sentences.append(text)
    charts_ = chart_cards(found)
    survival = result.get("outcome") == "survival"
    bin_rows = [
        [
            b["bin"],
            b["n"],
            *(
                _points(b.get(c["label"])) if survival else f"{b.get(c['label'], 0):+.3g}"
                for c in result.get("contrasts", [])
            ),
        ]
        for b in result.get("bins", [])
    ]
    return {
        "charts": charts_,
        "sentences": sentences,
        "bins": result.get("bins", []),
        "bin_rows": bin_rows,
    }


def _genomics_context(result: dict[str, Any]) -> dict[str, Any]:
    comparison = result["comparison"]
    found = [
        (
            "genomics-comparison",
            "C-index clinical-only vs clinical plus genes",
            charts.genomics_comparison_figure(comparison),
        ),
        ("genomics-drivers", "Drivers of risk", charts.genomics_drivers_figure(result["drivers"])),
    ]
    diff, sd = comparison["difference_mean"], comparison["difference_sd"]
    better = comparison["folds_genes_better"]
    plainly = (
        f"Adding the {result['n_genes']} genes to the clinical variables changes Harrell's C by "
        f"{diff:+.3f} on average (SD {sd:.3f} across {comparison['n_folds']} folds); the genes "
        f"did better in {better} of {comparison['n_folds']} folds. "
    )
    plainly += (
        "The spread is as large as the gain, so the added value is uncertain."
        if abs(diff) <= sd
        else "The gain is larger than its spread across folds (folds overlap, so the spread "
        "understates the true uncertainty)."
    )
    return {
        "charts": chart_cards(found),
        "sentences": [plainly],
        "drivers": result["drivers"][:15],
    }


@require_GET
@role_required(*RESEARCH_ROLES)
def cohort_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        analysis = cohort_analysis_get(pk=pk)
    except CohortAnalysis.DoesNotExist:
        raise Http404("No such analysis.") from None
    done = analysis.status == CohortAnalysis.Status.DONE
    genomics = analysis.kind == CohortAnalysis.Kind.GENOMICS
    context: dict[str, Any] = {
        "analysis": analysis,
        "done": done,
        "genomics": genomics,
        "trial": TRIALS.get(analysis.trial),
    }
    if done:
        context.update(
            _genomics_context(analysis.result) if genomics else _cohort_context(analysis.result)
        )
    return render(request, "treatment/cohort_detail.html", context)
