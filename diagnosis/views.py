from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis import charts
from diagnosis.forms import DatasetForm, ReviewForm, ScanUploadForm, TrainingForm, WorklistForm
from diagnosis.models import ImageDataset, Scan
from diagnosis.selectors import (
    active_versions,
    agreement_by_version,
    frame_payload,
    latest_prediction,
    monitoring_scope,
    prediction_history,
    reviews_per_task,
    scan_get,
    scan_list,
    upload_outcome,
    worklist,
)
from diagnosis.services import (
    DatasetNameTaken,
    dataset_from_reviews,
    dataset_register,
    review_record,
    scan_upload,
    training_start,
)
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.query_params import BadParameter, bad_request, int_param
from medai_site.core.roles import Role, role_required
from medai_site.jobs.models import Job
from medai_site.patients.models import Patient
from medai_site.patients.selectors import patient_get
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_headline_metrics


def _patient_or_404(request: HttpRequest, pk: int) -> Patient:
    try:
        return patient_get(user=request.user, pk=pk)
    except Patient.DoesNotExist:
        raise Http404("No such patient in your care teams.") from None


def _scan_or_404(request: HttpRequest, pk: int) -> Scan:
    try:
        return scan_get(user=request.user, pk=pk)
    except Scan.DoesNotExist:
        raise Http404("No such scan among your patients.") from None


def _task_choices() -> list[tuple[str, str]]:
    return [(v.task, f"{v.task} (v{v.version})") for v in active_versions()]


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def patient_scans_view(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = _patient_or_404(request, patient_pk)
    tasks = _task_choices()
    form = ScanUploadForm(request.POST or None, request.FILES or None, tasks=tasks)
    outcome = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            outcome = scan_upload(
                patient=patient,
                files=form.cleaned_data["files"],
                uploaded_by=request.user,
                task=form.cleaned_data["task"],
                request=request,
            )
            if outcome.scans:
                # Post/redirect/get: the page reloads itself when the job finishes, which must
                # never send the files again.
                url = reverse("diagnosis:patient_scans", args=[patient.pk])
                return redirect(f"{url}?upload={outcome.upload.pk}#upload-outcome")
            form = ScanUploadForm(tasks=tasks)
        status = 400
    elif request.GET.get("upload"):
        try:
            upload_pk = int_param(request.GET, "upload")
        except BadParameter as exc:
            return bad_request(str(exc))
        outcome = upload_outcome(patient=patient, pk=upload_pk)
    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED,
        request=request,
        patient=patient,
        obj=patient,
        detail={"page": "scans"},
    )
    scans = list(scan_list(user=request.user, patient=patient)[:100])
    return render(
        request,
        "diagnosis/scan_list.html",
        {
            "patient": patient,
            "form": form,
            "outcome": outcome,
            "has_model": bool(tasks),
            "rows": [(scan, latest_prediction(scan)) for scan in scans],
        },
        status=status,
    )


@require_GET
@role_required(Role.CLINICIAN)
def scan_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    scan = _scan_or_404(request, pk)
    prediction = latest_prediction(scan)
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED, request=request, obj=scan, patient=scan.patient
    )
    context = {
        "scan": scan,
        "patient": scan.patient,
        "prediction": prediction,
        "jobs": Job.objects.filter(
            kind="diagnosis.inference",
            target_id=scan.upload_id,
            target_type__model="scanupload",
            status__in=["queued", "running"],
        ),
    }
    if prediction is not None:
        review = getattr(prediction, "review", None)
        context.update(
            {
                "review": review,
                "review_form": ReviewForm(
                    class_names=prediction.class_names,
                    initial={
                        "label": review.label if review else prediction.predicted_class,
                        "note": review.note if review else "",
                    },
                ),
                "metrics": model_version_headline_metrics(prediction.model_version, limit=6),
                "chart": {
                    "id": "probabilities",
                    "figure": charts.probabilities_figure(prediction),
                    "label": "Class probabilities",
                },
            }
        )
    return render(request, "diagnosis/scan_detail.html", context)


@require_GET
@role_required(Role.CLINICIAN)
def scan_frame_view(request: HttpRequest, pk: int, index: int) -> JsonResponse:
    scan = _scan_or_404(request, pk)
    try:
        payload = frame_payload(scan=scan, index=index, prediction=latest_prediction(scan))
    except IndexError:
        raise Http404("No such frame.") from None
    # The pixels are patient data too; each frame the viewer fetches is a view of them.
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED,
        request=request,
        obj=scan,
        patient=scan.patient,
        detail={"frame": index},
    )
    response = JsonResponse(payload)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@role_required(Role.CLINICIAN)
def scan_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    scan = _scan_or_404(request, pk)
    prediction = latest_prediction(scan)
    if prediction is None:
        return HttpResponse("This scan has no prediction to review yet.", status=409)
    form = ReviewForm(request.POST, class_names=prediction.class_names)
    if not form.is_valid():
        messages.error(request, "Choose one of the model's classes as your reading.")
        return redirect("diagnosis:scan_detail", pk=scan.pk)
    review = review_record(
        prediction=prediction,
        reviewer=request.user,
        label=form.cleaned_data["label"],
        note=form.cleaned_data["note"],
        request=request,
    )
    messages.success(
        request, f"Review saved: {review.get_verdict_display().lower()} ({review.label})."
    )
    if request.POST.get("next") == "worklist":
        return redirect("diagnosis:worklist")
    return redirect("diagnosis:scan_detail", pk=scan.pk)


@require_GET
@role_required(Role.CLINICIAN)
def worklist_view(request: HttpRequest) -> HttpResponse:
    versions = ModelVersion.objects.filter(task__startswith="diagnosis.")
    form = WorklistForm(request.GET or None, versions=versions)
    items = list(worklist(user=request.user, filters=form.filters())[:200])
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={"page": "imaging worklist", "shown": [p.scan_id for p in items]},
    )
    return render(request, "diagnosis/worklist.html", {"form": form, "items": items})


@require_GET
@role_required(Role.CLINICIAN, Role.MODEL_ADMIN)
def monitoring_view(request: HttpRequest) -> HttpResponse:
    predictions = monitoring_scope(user=request.user)
    agreements = agreement_by_version(predictions=predictions)
    history = list(prediction_history(predictions=predictions)[:5000])
    chart_list = [
        {
            "id": f"confusion-{a.version.pk}",
            "figure": charts.confusion_figure(a),
            "label": f"Confusion matrix for {a.version}",
        }
        for a in agreements
    ]
    for key, figure in (
        ("risk-time", charts.risk_over_time_figure(history)),
        ("risk-hist", charts.risk_histogram_figure(history)),
    ):
        if figure:
            chart_list.append({"id": key, "figure": figure, "label": key})
    return render(
        request,
        "diagnosis/monitoring.html",
        {"agreements": agreements, "charts": chart_list, "prediction_count": len(history)},
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.MODEL_ADMIN)
def training_view(request: HttpRequest) -> HttpResponse:
    form = TrainingForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            dataset, activate = data.pop("dataset"), data.pop("activate")
            job = training_start(
                dataset=dataset, config=data, activate=activate, user=request.user, request=request
            )
            return redirect("diagnosis:training_job", pk=job.pk)
        status = 400
    jobs = Job.objects.filter(kind="diagnosis.training").select_related("owner")[:20]
    return render(
        request,
        "diagnosis/training.html",
        {
            "form": form,
            "jobs": jobs,
            "datasets": ImageDataset.objects.all(),
            "review_counts": reviews_per_task(),
        },
        status=status,
    )


@require_POST
@role_required(Role.MODEL_ADMIN)
def dataset_from_reviews_view(request: HttpRequest) -> HttpResponse:
    task = request.POST.get("task", "")
    try:
        dataset = dataset_from_reviews(task=task, created_by=request.user)
    except ValueError as exc:
        messages.error(request, f"No data set made: {exc}")
        return redirect("diagnosis:training")
    messages.success(
        request,
        f"{dataset.name}: {sum(dataset.split_sizes.values())} reviewed scans, ready to train on.",
    )
    return redirect("diagnosis:training")


@require_GET
@role_required(Role.MODEL_ADMIN)
def training_job_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = Job.objects.filter(pk=pk, kind="diagnosis.training").first()
    if job is None:
        raise Http404("No such training run.")
    history = (job.live or {}).get("history") or []
    return render(
        request,
        "diagnosis/training_job.html",
        {
            "job": job,
            "chart": {
                "id": "training-curves",
                "label": "Training curves",
                "figure": charts.training_curves_figure(history),
            },
        },
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.MODEL_ADMIN)
def dataset_create_view(request: HttpRequest) -> HttpResponse:
    form = DatasetForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                dataset = dataset_register(created_by=request.user, **form.cleaned_data)
            except DatasetNameTaken as exc:
                form.add_error("name", str(exc))
            except (OSError, ValueError) as exc:
                form.add_error("path", f"The data could not be used: {exc}")
            else:
                messages.success(
                    request, f"Registered {dataset.name}: classes {', '.join(dataset.class_names)}."
                )
                return redirect("diagnosis:training")
        status = 400
    return render(request, "diagnosis/dataset_form.html", {"form": form}, status=status)
