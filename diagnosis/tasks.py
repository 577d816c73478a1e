"""Diagnosis jobs on the ml queue: classify an upload's scans, train a model version."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from diagnosis.artifacts import NoModelInService, active_classifier
from diagnosis.charts import training_curves_figure
from diagnosis.models import DicomSend, ImageDataset, Prediction, ScanUpload
from diagnosis.pacs.outbox import predictions_sends_queue
from diagnosis.scope import bundle_contract, scans_gate, series_scope
from diagnosis.services import (
    OVERRIDE_JOB_KIND,
    OverrideRefused,
    ScanAnswer,
    dataset_check_failed,
    dataset_check_passed,
    prediction_override_score,
    predictions_store,
    scans_awaiting_model_queue,
    training_start,
    upload_scans_await_model,
)
from diagnosis.shadow import predictions_shadow_score
from medai_site.celery import app
from medai_site.core.charts import live_figure
from medai_site.core.compute import torch_device
from medai_site.core.media import media_writes
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.kinds import Need
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task


def _what_it_is(answer: Prediction) -> str:
    """The part of a refusal that says what the scan is, without any identifier: "a CT of
    the head", or the learned score against its threshold."""
    if answer.scope_check == Prediction.ScopeCheck.GATE:
        return answer.scope_reason.rsplit("; this is ", 1)[-1]
    return (
        "does not look like the model's training images (out-of-distribution score "
        f"{answer.ood_score:.2f} > {answer.ood_threshold:.2f})"
    )


def upload_summary(*, version: Any, stored: list[Prediction]) -> str:
    """The job's one-line result: how many scans were scored (by class) and how many were
    outside the model's scope and why. Names no file and no patient (staff see job results);
    the upload page lists the file names to the care team."""
    if not stored:
        return "Every scan of this upload was already classified."
    scored = [p for p in stored if p.scored]
    outside = [p for p in stored if not p.scored]
    labels = [p.predicted_class for p in scored]
    parts = [
        f"{len(scored)} scored"
        + (
            " (" + ", ".join(f"{labels.count(c)} {c}" for c in sorted(set(labels))) + ")"
            if labels
            else ""
        )
    ]
    if outside:
        reasons = "; ".join(f"scan #{p.scan_id}: {_what_it_is(p)}" for p in outside)
        parts.append(f"{len(outside)} outside the model's scope ({reasons})")
    unchecked = sum(p.scope == Prediction.Scope.UNCHECKED for p in stored)
    tail = (
        f" {unchecked} not checked for scope: this version has no out-of-distribution detector."
        if unchecked
        else ""
    )
    return f"Classified {len(stored)} scan(s) with {version}: " + ", ".join(parts) + "." + tail


@app.task(
    name="diagnosis.scans_awaiting_model_queue",
    ignore_result=True,
    time_limit=120,
    soft_time_limit=100,
)
def scans_awaiting_model() -> int:
    """Queue the scans that wait for a model, for each one now in service (beat, every
    minute, and on an imaging model's activation); idempotent. Returns the jobs made."""
    return len(scans_awaiting_model_queue())


# The CNN runs on torch_device(): a GPU when the worker has one, the CPU otherwise.
@job_task(
    kind="diagnosis.inference",
    label="scan classification",
    queue="ml",
    patient_data=True,
    need=Need.GPU_PREFERRED,
)
def classify_upload(job: Job, progress: Progress) -> dict[str, Any]:
    """Answer for every released scan of an upload not yet answered by the active version:
    the contract's metadata gate on the stored header first (a refused scan never reaches the
    model), then one batched forward pass with the learned out-of-distribution score; an
    out-of-scope answer stores its reason and no probability. Idempotent per scan and version."""
    from diagnosis.ml.predict import predict
    from diagnosis.ml.series import aggregate_series

    upload = job_row(
        ScanUpload.objects, job=job, param="upload_id", missing="The upload no longer exists."
    )
    progress.update(5, "Loading the model in service", force=True)
    task = job.params.get("task") or upload.task
    try:
        loaded = active_classifier(task)
    except NoModelInService:
        # Taken out of service after this job was queued: the scans are kept and queued again
        # as soon as a model that can classify them is in service.
        with progress.finishing() as outcome:
            waiting = upload_scans_await_model(upload=upload, scan_ids=job.params.get("scan_ids"))
            outcome.result = {
                "summary": (
                    f"No model of {task or 'imaging'} is in service: {waiting} scan(s) wait for "
                    "one and are classified as soon as one is put into service."
                ),
                "url": "",
                "predictions": [],
                "out_of_scope": [],
                "awaiting_model": waiting,
            }
        return outcome.result
    contract = bundle_contract(loaded.model)
    # Held scans (possible burned-in text) wait for a clinician's confirmation.
    scans = upload.scans.filter(held=False).exclude(predictions__model_version=loaded.version)
    if job.params.get("scan_ids") is not None:
        # Routed: this job's model answers only for the scans whose header fits it best.
        scans = scans.filter(pk__in=job.params["scan_ids"])
    scans = list(scans.order_by("pk"))
    progress.update(10, f"Checking {len(scans)} scan(s) against the model's input contract")
    gated = scans_gate(scans=scans, contract=contract)
    progress.update(30, f"Classifying {len(gated.images)} image(s) in one batch", force=True)
    # One batched forward pass over every frame of every file the gate let through.
    per_frame = predict(loaded.model, gated.images) if gated.images else []
    progress.update(85, "Saving predictions", force=True)
    common = {
        "model_version": loaded.version,
        "job": job,
        "class_names": list(loaded.model.class_names),
        "threshold": loaded.model.threshold,
    }
    answers = [ScanAnswer(scan=scan, scope=answer) for scan, answer in gated.refused]
    for scan, start, stop in gated.spans:
        series = aggregate_series(loaded.model, per_frame[start:stop])
        answers.append(
            ScanAnswer(
                scan=scan,
                scope=series_scope(series, loaded.model, scan=scan),
                result=series.to_dict(),
                heatmaps=series.heatmaps,
            )
        )
    answers.sort(key=lambda a: a.scan.pk)
    # Heat-maps written before a failure later in the finishing transaction are deleted.
    with media_writes(), progress.finishing() as outcome:
        stored = predictions_store(answers=answers, **common)
        # Results go to the PACS destinations with the job's success (outside the model's
        # scope too: the SR says so).
        predictions_sends_queue(
            predictions=stored, trigger=DicomSend.Trigger.CLASSIFICATION, owner=job.owner
        )
        first = next((p for p in stored if p.scored), stored[0] if stored else None)
        outcome.result = {
            "summary": upload_summary(version=loaded.version, stored=stored),
            "url": reverse("diagnosis:scan_detail", args=[first.scan_id]) if first else "",
            "predictions": [p.pk for p in stored],
            "out_of_scope": [p.pk for p in stored if not p.scored],
        }
    # Only now, with the clinician's results committed: a shadow version (if one runs) scores
    # the same frames; it never fails or changes this job.
    predictions_shadow_score(version=loaded.version, stored=stored, gated=gated)
    return outcome.result


@job_task(
    kind=OVERRIDE_JOB_KIND,
    label="score anyway",
    queue="ml",
    patient_data=True,
    need=Need.GPU_PREFERRED,
)
def score_anyway(job: Job, progress: Progress) -> dict[str, Any]:
    """Score a long series anyway with the version that found it out of scope, for the
    clinician who asked (the job's owner) with the reason kept on the prediction.
    Idempotent: a redelivered task finds the answer overridden and scores nothing twice."""
    prediction = job_row(
        Prediction.objects.select_related("scan", "model_version"),
        job=job,
        param="prediction_id",
        missing="The answer to score no longer exists.",
    )
    url = reverse("diagnosis:scan_detail", args=[prediction.scan_id])
    if not prediction.overridden:
        progress.update(5, f"Loading {prediction.model_version}", force=True)

        def loaded(frames: int) -> None:
            progress.update(20, f"Classifying {frames} frame(s)", force=True)

        try:
            prediction = prediction_override_score(
                prediction=prediction,
                user=job.owner,
                reason=prediction.override_reason,
                on_loaded=loaded,
            )
        except OverrideRefused as exc:
            raise JobError(str(exc)) from None
    return {
        "summary": f"Scored outside the model's scope: {prediction.predicted_class} "
        f"({prediction.confidence:.2f}) over {prediction.scan.frames} frames.",
        "url": url,
        "prediction": prediction.pk,
    }


@job_task(kind="diagnosis.dataset_check", label="data-set check", queue="ml")
def check_dataset(job: Job, progress: Progress) -> dict[str, Any]:
    from diagnosis.imaging.contract import contract_for_training
    from diagnosis.training import dataset_digest, dataset_preview, load_dataset

    dataset = job_row(
        ImageDataset.objects, job=job, param="dataset_id", missing="The data set no longer exists."
    )
    if dataset.status != ImageDataset.Status.CHECKING:
        return {"summary": f"{dataset.name} was already checked ({dataset.get_status_display()})."}
    progress.update(5, f"Loading {dataset.name}", force=True)
    try:
        data = load_dataset(dataset)
        digest = dataset_digest(dataset)
        # A contract that contradicts the images would make every model of it refuse its
        # own kind of input: refused here, before anything trains on it.
        contract_for_training(
            dataset.contract,
            source=dataset.path or dataset.name,
            channels=data.channels,
            image_size=data.image_size,
        )
    except (OSError, ValueError) as exc:
        message = f"The data could not be used: {exc}"
        dataset_check_failed(dataset=dataset, message=message)
        raise JobError(f"{dataset.name}: {message}") from None
    progress.update(80, "Making the preview", force=True)
    preview = dataset_preview(data)
    plan = job.params.get("train")
    with progress.finishing() as outcome:
        dataset_check_passed(dataset=dataset, data=data, preview=preview, sha256=digest)
        dataset.refresh_from_db()
        if plan:
            training_start(
                dataset=dataset,
                config=plan["config"],
                activate=bool(plan.get("activate")),
                user=job.owner,
            )
        outcome.result = {
            "summary": f"{dataset.name} is ready: classes {', '.join(dataset.class_names)}; "
            + " / ".join(str(dataset.split_sizes[s]) for s in ("train", "val", "test"))
            + " train / val / test images.",
            "url": reverse("diagnosis:training"),
        }
    return outcome.result


@job_task(kind="diagnosis.training", label="model training", queue="ml", need=Need.GPU_PREFERRED)
def train_classifier(job: Job, progress: Progress) -> dict[str, Any]:
    """Train a classifier on the job's checked data set, showing a live curve, and register
    it with the job's success (activated when asked)."""
    from diagnosis.training import classifier_train, training_inputs
    from medai_site.registry.services import (
        model_artifacts_guard,
        model_version_publish,
        model_version_trained_summary,
    )

    inputs = training_inputs(job=job, progress=progress)
    dataset = inputs.dataset
    history: list[dict[str, Any]] = []

    def on_epoch(report: Any) -> None:
        history.append(report.to_dict())
        progress.update(
            5 + 90 * report.epoch / report.epochs,
            f"Epoch {report.epoch}/{report.epochs}: val AUC {report.val_auc:.3f}",
            live={
                "history": history,
                "figure": live_figure(training_curves_figure(history), label="Training curves"),
            },
        )

    content, metrics, result = classifier_train(
        data=inputs.data,
        config=inputs.config,
        contract=inputs.contract,
        on_epoch=on_epoch,
        on_stage=lambda stage: progress.update(96, stage, force=True),
        device=torch_device(),
    )
    # The version row commits with the job's success; if that rolls back, so does the file.
    with model_artifacts_guard(), progress.finishing() as outcome:
        version = model_version_publish(
            task=dataset.task,
            artifact=content,
            created_by=job.owner,
            activate=bool(job.params.get("activate")),
            params=inputs.config.to_dict(),
            training_data={
                "dataset": dataset.name,
                "dataset_id": dataset.pk,
                "kind": dataset.kind,
                "sha256": dataset.sha256,
                "splits": dataset.split_sizes,
                "classes": dataset.class_names,
            },
            metrics=metrics,
            notes=f"Trained by job #{job.pk}.",
        )
        test = result.test.to_dict()
        outcome.result = {
            "summary": model_version_trained_summary(
                version=version,
                finding=f"test AUC {test.get('auc', float('nan')):.3f}, "
                f"accuracy {test.get('accuracy', float('nan')):.3f}",
            ),
            "url": reverse("admin:registry_modelversion_change", args=[version.pk]),
            "model_version": version.pk,
        }
    return outcome.result
