from __future__ import annotations

import errno
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis import charts
from diagnosis.applicability import NO_DETECTOR
from diagnosis.fhir import patient_predictions, predictions_bundle, scan_predictions
from diagnosis.forms import (
    DatasetForm,
    DatasetUploadForm,
    MonitoringForm,
    ReviewForm,
    ScanHoldForm,
    ScanUploadForm,
    ScopeOverrideForm,
    TrainingForm,
    WorklistForm,
)
from diagnosis.models import ImageDataset, Prediction, Scan
from diagnosis.pacs.selectors import prediction_sends
from diagnosis.reporting import (
    NoHeatmap,
    dicom_bytes,
    prediction_get,
    prediction_heatmap_capture,
    prediction_sr,
)
from diagnosis.selectors import (
    active_versions,
    agreement_by_version,
    dataset_list,
    diagnosis_versions,
    frame_payload,
    latest_prediction,
    monitoring_scope,
    prediction_history,
    reviews_per_task,
    scan_get,
    scan_held_get,
    scan_held_list,
    scan_held_visible,
    scan_hold_previews,
    scan_jobs_in_flight,
    scan_list,
    scope_trends,
    training_job_get,
    training_jobs,
    upload_outcome,
    version_contract,
    worklist,
    worklist_out_of_scope,
)
from diagnosis.services import (
    DatasetRejected,
    OverrideRefused,
    UploadTooLarge,
    dataset_from_reviews,
    dataset_register,
    dataset_upload,
    prediction_override,
    review_record,
    scan_hold_confirm,
    scan_hold_discard,
    scan_upload,
    training_start,
)
from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.charts import TRAINING_NOT_STARTED, chart_card
from medai_site.core.downloads import attachment, fhir_export
from medai_site.core.pagination import page_of
from medai_site.core.query_params import BadParameter, bad_request, int_param
from medai_site.core.roles import Role, role_required
from medai_site.core.uploads import upload_size_problem
from medai_site.jobs.models import Job
from medai_site.patients.pages import PatientPage, patient_page
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_card, model_version_headline_metrics

#: Image data sets on one page of the training page (each row shows example images).
DATASETS_PER_PAGE = 20


def _scan_or_404(request: HttpRequest, pk: int) -> Scan:
    try:
        return scan_get(user=request.user, pk=pk)
    except Scan.DoesNotExist:
        raise ObjectNotVisible("No such scan among your patients.", model=Scan, pk=pk) from None


def _task_choices() -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """The tasks in service, each named with what its model reads (its input contract), and
    what each contract checks of a PNG/JPEG, for the options' data attributes."""
    from diagnosis.imaging.contract import contract_file_terms

    choices, terms = [], {}
    for version in active_versions():
        contract = version_contract(version)
        reads = f" — reads {contract.summary()}" if contract is not None else ""
        choices.append((version.task, f"{version.task} (v{version.version}){reads}"))
        terms[version.task] = contract_file_terms(contract)
    return choices, terms


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
@patient_page("scans")
def patient_scans_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    patient = page.patient
    tasks, terms = _task_choices()
    form = ScanUploadForm(request.POST or None, request.FILES or None, tasks=tasks, terms=terms)
    outcome = None
    too_large = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                outcome = scan_upload(
                    patient=patient,
                    files=form.cleaned_data["files"],
                    uploaded_by=request.user,
                    task=form.cleaned_data["task"],
                    request=request,
                )
            except UploadTooLarge as exc:
                too_large = exc.message
                form = ScanUploadForm(tasks=tasks, terms=terms)
            if outcome is not None and (outcome.scans or outcome.held):
                # Post/redirect/get: the page reloads itself when the job finishes, which must
                # never send the files again.
                url = reverse("diagnosis:patient_scans", args=[patient.pk])
                return redirect(f"{url}?upload={outcome.upload.pk}#upload-outcome")
            form = ScanUploadForm(tasks=tasks, terms=terms)
        status = 413 if too_large else 400
    elif request.GET.get("upload"):
        try:
            upload_pk = int_param(request.GET, "upload")
        except BadParameter as exc:
            return bad_request(str(exc))
        outcome = upload_outcome(patient=patient, pk=upload_pk)
    page.viewed()
    pager = page_of(
        request, scan_list(user=request.user, patient=patient), per_page=50, noun="scan"
    )
    scans = pager.object_list
    return render(
        request,
        "diagnosis/scan_list.html",
        {
            "patient": patient,
            "form": form,
            "outcome": outcome,
            "too_large": too_large,
            "held": list(scan_held_list(user=request.user, patient=patient)),
            "has_model": bool(tasks),
            "task_count": len(tasks),
            "rows": [(scan, latest_prediction(scan)) for scan in scans],
            "pager": pager,
        },
        status=status,
    )


@require_GET
@role_required(Role.CLINICIAN)
def scan_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        scan = scan_get(user=request.user, pk=pk)
    except Scan.DoesNotExist:
        if scan_held_visible(user=request.user, pk=pk):
            # A held scan is shown only on its confirmation screen.
            return redirect("diagnosis:scan_hold", pk=pk)
        raise ObjectNotVisible("No such scan among your patients.", model=Scan, pk=pk) from None
    prediction = latest_prediction(scan)
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED, request=request, obj=scan, patient=scan.patient
    )
    context = {
        "scan": scan,
        "patient": scan.patient,
        "prediction": prediction,
        "jobs": scan_jobs_in_flight(scan=scan, prediction=prediction),
    }
    if prediction is not None:
        context.update(_prediction_context(prediction))
    return render(request, "diagnosis/scan_detail.html", context)


def _prediction_context(
    prediction: Any, *, override_form: ScopeOverrideForm | None = None
) -> dict[str, Any]:
    review = getattr(prediction, "review", None)
    context: dict[str, Any] = {
        "review": review,
        "metrics": model_version_headline_metrics(prediction.model_version, limit=6),
        # What the version reads and its detector's measured rates, as on the registry's card.
        "card": model_version_card(prediction.model_version),
        "no_detector": NO_DETECTOR,
        "override_form": override_form or ScopeOverrideForm(),
        "sends": prediction_sends(prediction=prediction),
    }
    # Outside the model's scope: no probability is shown (there is none) and no review is
    # taken until a clinician has asked for a score anyway.
    if prediction.scored:
        context.update(
            {
                "review_form": ReviewForm(
                    class_names=prediction.class_names,
                    initial={
                        "label": review.label if review else prediction.predicted_class,
                        "note": review.note if review else "",
                    },
                ),
                "chart": chart_card(
                    "probabilities", "Class probabilities", charts.probabilities_figure(prediction)
                ),
            }
        )
    return context


@require_POST
@role_required(Role.CLINICIAN)
def scan_override_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Score an out-of-scope scan anyway (a clinician of the care team, with a reason)."""
    scan = _scan_or_404(request, pk)
    prediction = latest_prediction(scan)
    if prediction is None:
        return HttpResponse("This scan has no answer from a model yet.", status=409)
    form = ScopeOverrideForm(request.POST)
    if form.is_valid():
        try:
            answer = prediction_override(
                prediction=prediction,
                user=request.user,
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except OverrideRefused as exc:
            return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
        if isinstance(answer, Job):
            messages.info(
                request,
                f"This series has {scan.frames} frames: it is being scored as a job, shown "
                "below. The override is recorded on the result and in the audit trail.",
            )
        else:
            messages.success(
                request,
                f"Scored outside the model's scope at your request: {answer.predicted_class}. "
                "The override is recorded on the result and in the audit trail.",
            )
        return redirect("diagnosis:scan_detail", pk=scan.pk)
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED, request=request, obj=scan, patient=scan.patient
    )
    context = {"scan": scan, "patient": scan.patient, "prediction": prediction, "jobs": []}
    context.update(_prediction_context(prediction, override_form=form))
    return render(request, "diagnosis/scan_detail.html", context, status=400)


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
def scan_hold_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The care team's confirmation screen for a scan held for possible burned-in text."""
    try:
        scan = scan_held_get(user=request.user, pk=pk)
    except Scan.DoesNotExist:
        raise ObjectNotVisible(
            "No such held scan among your patients.", model=Scan, pk=pk
        ) from None
    form = ScanHoldForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            if form.cleaned_data["decision"] == "confirm":
                scan_hold_confirm(scan=scan, user=request.user, request=request)
                messages.success(request, f"{scan.original_name} released: it is being classified.")
                return redirect("diagnosis:scan_detail", pk=scan.pk)
            scan_hold_discard(scan=scan, user=request.user, request=request)
            messages.success(request, f"{scan.original_name} discarded and deleted.")
            return redirect("diagnosis:patient_scans", patient_pk=scan.patient_id)
    # Showing the pixels is a view of patient data.
    audit_record(
        action=AuditEvent.Action.RECORD_VIEWED,
        request=request,
        obj=scan,
        patient=scan.patient,
        detail={"page": "burned-in text confirmation"},
    )
    return render(
        request,
        "diagnosis/scan_hold.html",
        {
            "scan": scan,
            "patient": scan.patient,
            "form": form,
            "previews": scan_hold_previews(scan=scan),
        },
        status=400 if form.errors else 200,
    )


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
    if not prediction.scored:
        return HttpResponse(
            "This scan is outside the model's scope and was not scored; ask for a score "
            "anyway first (the override is recorded), then review it.",
            status=409,
        )
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
    versions = diagnosis_versions()
    form = WorklistForm(request.GET or None, versions=versions)
    filters = form.filters()
    pager = page_of(request, worklist(user=request.user, filters=filters), per_page=50, noun="scan")
    outside_pager = page_of(
        request,
        worklist_out_of_scope(user=request.user, filters=filters),
        per_page=50,
        noun="scan",
        param="outside_page",
    )
    items, outside = pager.object_list, outside_pager.object_list
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={"page": "imaging worklist", "shown": [p.scan_id for p in items + outside]},
    )
    return render(
        request,
        "diagnosis/worklist.html",
        {
            "form": form,
            "items": items,
            "outside": outside,
            "pager": pager,
            "outside_pager": outside_pager,
            "only_outside": filters.status == "out_of_scope",
        },
    )


@require_GET
@role_required(Role.CLINICIAN, Role.MODEL_ADMIN)
def monitoring_view(request: HttpRequest) -> HttpResponse:
    form = MonitoringForm(request.GET or None)
    if request.GET and not form.is_valid():
        return bad_request(" ".join(e for errors in form.errors.values() for e in errors))
    period = form.period_value()
    predictions = monitoring_scope(user=request.user)
    agreements = agreement_by_version(predictions=predictions)
    trends = scope_trends(predictions=predictions, period=period)
    history = list(prediction_history(predictions=predictions)[:5000])
    chart_list = [
        chart_card(
            f"confusion-{a.version.pk}",
            f"Confusion matrix for {a.version}",
            charts.confusion_figure(a),
        )
        for a in agreements
    ]
    for key, figure in (
        ("scope-time", charts.scope_over_time_figure(trends, period=period)),
        ("risk-time", charts.risk_over_time_figure(history)),
        ("risk-hist", charts.risk_histogram_figure(history)),
    ):
        if figure:
            # The drift chart gets the page's width: one line per version and period.
            chart_list.append(chart_card(key, key, figure, wide=key == "scope-time"))
    return render(
        request,
        "diagnosis/monitoring.html",
        {
            "agreements": agreements,
            "charts": chart_list,
            "prediction_count": len(history),
            "form": form,
            "period": period,
            "trends": trends,
            # What each version shown reads and how it flags the rest (its model card).
            "cards": [
                (version, model_version_card(version))
                for version in _versions_shown(agreements, trends)
            ],
        },
    )


def _versions_shown(agreements: list[Any], trends: list[Any]) -> list[ModelVersion]:
    seen: dict[int, ModelVersion] = {}
    for item in [*trends, *agreements]:
        seen.setdefault(item.version.pk, item.version)
    return sorted(seen.values(), key=lambda v: (v.task, -v.version))


def _training_page(
    request: HttpRequest,
    *,
    form: TrainingForm | None = None,
    upload_form: DatasetUploadForm | None = None,
    status: int = 200,
) -> HttpResponse:
    jobs = training_jobs()
    from diagnosis.imaging.contract import contract_form_defaults, contract_summary

    every_dataset = dataset_list()
    pager = page_of(
        request, every_dataset, per_page=DATASETS_PER_PAGE, noun="data set", param="datasets"
    )
    datasets = [(d, check, contract_summary(d.contract)) for d, check in pager.object_list]
    return render(
        request,
        "diagnosis/training.html",
        {
            "form": form or TrainingForm(),
            "upload_form": upload_form or DatasetUploadForm(),
            "jobs": jobs,
            "datasets": datasets,
            "datasets_pager": pager,
            "ready_count": sum(d.status == ImageDataset.Status.READY for d, _ in every_dataset),
            "review_counts": reviews_per_task(),
            "upload_limit_mb": settings.MEDAI_DATASET_UPLOAD_MAX_BYTES // (1 << 20),
            "contract_defaults": contract_form_defaults(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.MODEL_ADMIN)
def training_view(request: HttpRequest) -> HttpResponse:
    form = TrainingForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = dict(form.cleaned_data)
            dataset, activate = data.pop("dataset"), data.pop("activate")
            try:
                job = training_start(
                    dataset=dataset,
                    config=data,
                    activate=activate,
                    user=request.user,
                    request=request,
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("diagnosis:training_job", pk=job.pk)
        return _training_page(request, form=form, status=400)
    return _training_page(request, form=form)


class _UploadCap(FileUploadHandler):
    """Stops reading an upload once it passes the data-set cap, so an oversized body is never
    written to the server's temporary folder in full."""

    def __init__(self, request: HttpRequest, cap: int) -> None:
        super().__init__(request)
        self.cap, self.received, self.exceeded = cap, 0, False

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # noqa: N803  (Django's parameter name)
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        # Fields before the file (the CSRF token among them) are still read; the file's
        # first chunk then stops the upload.
        self.exceeded = bool(content_length and content_length > self.cap + 64 * 1024)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.exceeded or self.received > self.cap:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@csrf_exempt  # the body must not be read (by the CSRF check) before the cap is in place
@require_POST
@role_required(Role.MODEL_ADMIN)
def dataset_upload_view(request: HttpRequest) -> HttpResponse:
    cap = _UploadCap(request, settings.MEDAI_DATASET_UPLOAD_MAX_BYTES)
    request.upload_handlers.insert(0, cap)
    try:
        return _dataset_upload(request, cap)
    except OSError as exc:
        # The body is received into a temporary file before any view code runs; a full disk
        # there is the server's condition, not the user's input, but it gets an answer.
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        messages.error(
            request,
            "The server ran out of disk space while receiving the file; nothing was kept. "
            "Ask your MedAI administrator to free space, then upload it again.",
        )
        return _training_page(request, status=507)


@csrf_protect
def _dataset_upload(request: HttpRequest, cap: _UploadCap) -> HttpResponse:
    form = DatasetUploadForm(request.POST, request.FILES)
    if cap.exceeded:
        form = DatasetUploadForm(request.POST)
        form.add_error(
            None,
            upload_size_problem(
                None, cap=settings.MEDAI_DATASET_UPLOAD_MAX_BYTES, purpose=" for data sets"
            ),
        )
        return _training_page(request, upload_form=form, status=413)
    if not form.is_valid():
        return _training_page(request, upload_form=form, status=400)
    data = dict(form.cleaned_data)
    try:
        dataset = dataset_upload(
            file=data.pop("file"), created_by=request.user, request=request, **data
        )
    except DatasetRejected as exc:
        form.add_error("file", exc.message)
        return _training_page(request, upload_form=form, status=exc.status)
    messages.success(
        request,
        f"Uploaded {dataset.name}; a job is checking it (classes, shapes, counts). It can be "
        "trained on once it shows Ready.",
    )
    return redirect(f"{reverse('diagnosis:training')}#datasets")


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
    job = training_job_get(pk=pk)
    if job is None:
        raise Http404("No such training run.")
    history = (job.live or {}).get("history") or []
    return render(
        request,
        "diagnosis/training_job.html",
        {
            "job": job,
            "chart": chart_card(
                "training-curves",
                "Training curves",
                charts.training_curves_figure(history),
                empty=TRAINING_NOT_STARTED,
            ),
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
                dataset = dataset_register(
                    created_by=request.user, request=request, **form.cleaned_data
                )
            except DatasetRejected as exc:
                form.add_error(exc.field, exc.message)
            else:
                messages.success(
                    request,
                    f"Registered {dataset.name}; a job is loading and checking it. It can be "
                    "trained on once it shows Ready.",
                )
                return redirect(f"{reverse('diagnosis:training')}#datasets")
        status = 400
    from diagnosis.imaging.contract import contract_form_defaults

    return render(
        request,
        "diagnosis/dataset_form.html",
        {"form": form, "contract_defaults": contract_form_defaults()},
        status=status,
    )


# --- results leaving MedAI: DICOM SR and heat-map capture, FHIR -----------------------------


def _prediction_or_404(request: HttpRequest, pk: int) -> Prediction:
    try:
        return prediction_get(user=request.user, pk=pk)
    except Prediction.DoesNotExist:
        raise ObjectNotVisible(
            "No such prediction among your patients.",
            model=Prediction,
            pk=pk,
            patient_lookup="scan__patient",
        ) from None


def _export_audit(request: HttpRequest, obj: Any, patient: Any, detail: dict[str, Any]) -> None:
    audit_record(
        action=AuditEvent.Action.EXPORTED, request=request, obj=obj, patient=patient, detail=detail
    )


def _dicom_download(content: bytes, filename: str) -> HttpResponse:
    return attachment(HttpResponse(content, content_type="application/dicom"), filename)


@require_GET
@role_required(Role.CLINICIAN)
def prediction_sr_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The prediction as a DICOM Comprehensive SR (in the stored study); audited as an export."""
    prediction = _prediction_or_404(request, pk)
    dataset = prediction_sr(prediction=prediction)
    _export_audit(
        request,
        prediction,
        prediction.scan.patient,
        {"format": "DICOM Comprehensive SR", "sop_instance_uid": str(dataset.SOPInstanceUID)},
    )
    return _dicom_download(dicom_bytes(dataset), f"prediction-{prediction.pk}-sr.dcm")


@require_GET
@role_required(Role.CLINICIAN)
def prediction_sc_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The prediction's heat-map as a DICOM Secondary Capture; 404 when it has none."""
    prediction = _prediction_or_404(request, pk)
    try:
        dataset = prediction_heatmap_capture(prediction=prediction)
    except NoHeatmap as exc:
        raise Http404(str(exc)) from None
    _export_audit(
        request,
        prediction,
        prediction.scan.patient,
        {"format": "DICOM Secondary Capture", "sop_instance_uid": str(dataset.SOPInstanceUID)},
    )
    return _dicom_download(dicom_bytes(dataset), f"prediction-{prediction.pk}-heatmap.dcm")


@require_GET
@role_required(Role.CLINICIAN)
def scan_fhir_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The scan's predictions as a FHIR R4 collection Bundle; audited as an export."""
    scan = _scan_or_404(request, pk)
    bundle = predictions_bundle(scan_predictions(scan=scan))
    return fhir_export(
        request=request,
        bundle=bundle,
        filename=f"scan-{scan.pk}-results.json",
        obj=scan,
        patient=scan.patient,
    )


@require_GET
@role_required(Role.CLINICIAN)
@patient_page("imaging results (FHIR)")
def patient_fhir_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    """The patient's imaging predictions as a FHIR R4 collection Bundle; audited as an export."""
    patient = page.patient
    bundle = predictions_bundle(patient_predictions(user=request.user, patient=patient))
    return fhir_export(
        request=request,
        bundle=bundle,
        filename=f"patient-{patient.pk}-imaging-results.json",
        obj=patient,
        patient=patient,
    )
