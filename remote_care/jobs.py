"""Background jobs of remote care: analysis of a posted ECG/PPG recording, training of the
deterioration model, scoring monitored patients, disease-progression analyses."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse

from medai_ml.plain import rounded
from medai_site.celery import app
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from remote_care.charts import risk_training_figure
from remote_care.models import Waveform
from remote_care.risk import RISK_TASK, risk_model_to_bytes, risk_scores_refresh
from remote_care.serializers import RANGES
from remote_care.services import observations_ingest
from remote_care.signals import Quality, analyse
from remote_care.waveforms import JOB_KIND, samples_unpack

RISK_TRAINING_KIND = "remote_care.risk_training"


@job_task(kind=JOB_KIND, label="waveform analysis", queue="default", patient_data=True)
def waveform_analyse(job: Job, progress: Progress) -> dict[str, Any]:
    """Beat detection, HR/HRV and quality for one Waveform; stores them on the recording and,
    when the quality allows an HR, a heart-rate Observation at the recording's midpoint."""
    waveform = job_row(
        Waveform.objects.select_related("device", "patient"),
        job=job,
        param="waveform_id",
        missing="The recording to analyse no longer exists.",
    )
    progress.update(10, "detecting beats", force=True)
    analysis = analyse(samples_unpack(waveform.samples), waveform.fs, waveform.kind)
    summary = analysis.summary
    derived = {
        "hr_bpm": summary.hr_bpm,
        "hr_mean_bpm": summary.hr_mean_bpm,
        "sdnn_ms": summary.sdnn_ms,
        "rmssd_ms": summary.rmssd_ms,
        "n_beats": summary.n_beats,
        "duration_s": summary.duration_s,
        "artefact_fraction": summary.artefact_fraction,
        "quality": str(summary.quality),
        "reasons": list(summary.reasons),
    }
    progress.update(80, "storing results", force=True)
    low, high, _ = RANGES["heart_rate"]
    hr = summary.hr_bpm
    usable = summary.quality != Quality.UNUSABLE and hr is not None and low <= hr <= high
    with progress.finishing() as outcome:
        waveform.derived = derived
        fields = ["derived"]
        if usable:
            midpoint = waveform.started_at + timedelta(seconds=waveform.n_samples / waveform.fs / 2)
            result = observations_ingest(
                device=waveform.device,
                items=[{"taken_at": midpoint, "heart_rate": round(float(hr), 1)}],
            )
            if result.stored:
                waveform.observation = result.stored[0]
                fields.append("observation")
        waveform.save(update_fields=fields)
        outcome.result = {
            **derived,
            "waveform_id": waveform.pk,
            "observation_id": waveform.observation_id,
        }
    return outcome.result


# ---------------------------------------------------------------- deterioration risk model


def physionet_paths() -> tuple[Path, Path]:
    """Set A of the PhysioNet/CinC 2012 challenge (archive, outcomes) under the shared data
    folder; JobError naming the missing file."""
    folder = Path(settings.MEDAI_PHYSIONET2012_DIR)
    archive, outcomes = folder / "set-a.tar.gz", folder / "Outcomes-a.txt"
    for path in (archive, outcomes):
        if not path.is_file():
            raise JobError(
                f"PhysioNet 2012 set A is not installed: {path} is missing "
                "(set MEDAI_PHYSIONET2012_DIR)."
            )
    return archive, outcomes


@job_task(kind=RISK_TRAINING_KIND, label="deterioration model training", queue="ml")
def risk_model_train(job: Job, progress: Progress) -> dict[str, Any]:
    """Train the recurrent deterioration model on PhysioNet 2012 set A (seeded 60/20/20 split),
    compare it with the baselines on the same held-out stays, register the version (and
    activate it when asked). Live curve: validation AUROC per epoch of each ensemble member."""
    from medai_site.registry.services import model_version_activate, model_version_register
    from remote_care.ml.physionet import load_set_a, stratified_split
    from remote_care.ml.report import compare_on_test
    from remote_care.ml.train import EpochReport, TrainConfig, train_risk_model

    params = job.params
    try:
        config = TrainConfig(
            spec=params.get("spec", "vitals"),
            seeds=tuple(range(int(params.get("members", 3)))),
            max_epochs=int(params.get("max_epochs", 40)),
            threads=0,  # the worker process set torch's threads for its share of the cores
        )
    except (TypeError, ValueError) as exc:
        raise JobError(f"The training settings are not valid: {exc}") from None
    archive, outcomes = physionet_paths()
    progress.update(2, "Reading PhysioNet 2012 set A", force=True)
    stays = load_set_a(archive, outcomes, cache_dir=settings.MEDAI_CACHE_DIR)
    limit = params.get("limit_stays")
    if limit:
        stays = stays[: int(limit)]
    split = stratified_split([s.death for s in stays], seed=int(params.get("split_seed", 2012)))
    train = [stays[i] for i in split.train]
    val = [stays[i] for i in split.val]
    curves: dict[str, list] = {"epoch": [], "val_auroc": [], "member": []}
    total = len(config.seeds) * config.max_epochs

    def on_epoch(report: EpochReport) -> None:
        curves["epoch"].append(len(curves["epoch"]) + 1)
        curves["val_auroc"].append(round(report.val_auroc, 4))
        curves["member"].append(report.member + 1)
        done = report.member * config.max_epochs + report.epoch
        progress.update(
            5 + 75 * min(done / total, 1.0),
            f"Member {report.member + 1}/{report.n_members}, epoch {report.epoch}: "
            f"validation AUROC {report.val_auroc:.3f}",
            live={"curves": curves, "figure": risk_training_figure(curves)},
        )

    model = train_risk_model(train, val, config, on_epoch=on_epoch)
    progress.update(82, "Comparing with the baselines on the held-out stays", force=True)
    name = f"GRU ({config.spec} inputs)"
    comparison = compare_on_test(
        stays, split, {name: (model, config.spec == "vitals")}, n_boot=200
    ).to_dict()
    ours = next(r for r in comparison["reports"] if r["name"] == name)
    model.metrics.update({"test_auroc": ours["auroc"], "test_auprc": ours["auprc"]})
    content = risk_model_to_bytes(model)
    progress.update(95, "Registering the model version", force=True)
    with progress.finishing() as outcome:
        version = model_version_register(
            task=RISK_TASK,
            artifact=content,
            created_by=job.owner,
            params={"config": config.to_dict(), "inputs": config.spec},
            training_data={
                "dataset": "PhysioNet/CinC Challenge 2012, set A",
                "citation": "Silva et al., Computing in Cardiology 2012 (ODC-BY 1.0)",
                "population": "ICU stays of at least 48 h (Beth Israel Deaconess, MIMIC-II)",
                "outcome": "in-hospital death",
                "n_stays": len(stays),
                "split": comparison["split"],
            },
            metrics={
                "auroc": ours["auroc"],
                "auprc": ours["auprc"],
                "brier": ours["brier"],
                "ece": ours["ece"],
                "val_auroc": model.metrics.get("val_auroc"),
                "train_seconds": model.metrics.get("train_seconds"),
                "alert_thresholds": model.metrics.get("alert_thresholds"),
                "input_contract": {
                    **(model.input_contract or {}),
                    # How often the contract refuses the training population itself (whole
                    # 48-h ICU stays): its false "insufficient data" rate.
                    "flagged_share_of_stays": _flagged_share(model, stays),
                },
                "comparison": comparison,
                "curves": curves,
            },
            notes=f"Trained by job #{job.pk}.",
        )
        if params.get("activate"):
            model_version_activate(version=version, user=job.owner)
        outcome.result = {
            "summary": f"Trained {version}: held-out AUROC {ours['auroc']:.3f}"
            + (" (now in service)." if params.get("activate") else "."),
            "url": reverse("remote_care:risk_models"),
            "model_version": version.pk,
        }
    return outcome.result


@app.task(
    name="remote_care.risk_refresh",
    ignore_result=True,
    time_limit=300,
    soft_time_limit=270,
)
def risk_refresh() -> int:
    """Score monitored patients whose latest vital signs lack a score from the active
    deterioration model (beat, every 15 s); idempotent."""
    return risk_scores_refresh()


# ---------------------------------------------------------------- disease progression

PROGRESSION_KIND = "remote_care.progression"


def _pbc_visits() -> dict[int, list[dict[str, Any]]]:
    from remote_care.ml.progression import load_pbcseq

    frame = load_pbcseq()
    visits: dict[int, list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        visits.setdefault(int(row["id"]), []).append(row)
    return visits


@job_task(kind=PROGRESSION_KIND, label="disease-progression analysis", queue="ml")
def progression_analyse(job: Job, progress: Progress) -> dict[str, Any]:
    """Cross-validate the regression, decision-tree, neural-network (and boosting) models on
    the analysis's data set with conformal prediction intervals, refit the best, and forecast
    every patient (pbcseq: one-visit-ahead along each trajectory, then the next six months)."""
    from remote_care.ml.progression import (
        cross_validate,
        diabetes_dataset,
        fit_progression_model,
        forecast_trajectories,
        pbc_next_visit_dataset,
    )
    from remote_care.models import ProgressionAnalysis

    analysis = job_row(
        ProgressionAnalysis.objects,
        job=job,
        param="analysis_id",
        missing="The analysis to run no longer exists.",
    )
    level = float(analysis.settings.get("level", 0.9))
    folds = int(analysis.settings.get("folds", 5))
    progress.update(5, "Loading the data set", force=True)
    data = pbc_next_visit_dataset() if analysis.dataset == "pbcseq" else diabetes_dataset()
    progress.update(15, f"{folds}-fold cross-validation of every model", force=True)
    cv = [r.to_dict() for r in cross_validate(data, n_splits=folds, level=level)]
    learned = [r for r in cv if r["model"] != "persistence"]
    best = min(learned, key=lambda r: r["rmse"])["model"]
    progress.update(70, f"Refitting {best} on every patient", force=True)
    model = fit_progression_model(data, best, level=level)
    results: dict[str, Any] = {
        "target": data.target,
        "n_rows": int(len(data.y)),
        "n_patients": int(len(set(data.groups.tolist()))) if data.groups is not None else None,
        "features": list(data.feature_names),
        "cv": cv,
        "best": best,
        "level": level,
    }
    if analysis.dataset == "pbcseq":
        patients: dict[str, Any] = {}
        visits = _pbc_visits()
        for pid, (trajectory, nxt) in forecast_trajectories(visits, model).items():
            first = min(visits[pid], key=lambda r: float(r["day"]))
            patients[str(pid)] = {
                **trajectory.to_dict(),
                "next": nxt.to_dict(),
                "baseline": {k: rounded(first.get(k)) for k in ("age", "sex", "trt", "stage")},
            }
        results["patients"] = patients
    else:
        # Each patient's held-out forecast would need the CV models; the refit model's interval
        # for every patient is shown beside the observed value instead.
        point, lower, upper = model.predict_interval(data.x)
        results["patients"] = {
            str(i): {
                "observed": float(data.y[i]),
                "point": float(point[i]),
                "lower": float(lower[i]),
                "upper": float(upper[i]),
                "features": {n: float(v) for n, v in zip(data.feature_names, data.x[i])},
            }
            for i in range(len(data.y))
        }
    with progress.finishing() as outcome:
        analysis.results = results
        analysis.save(update_fields=["results"])
        best_row = next(r for r in cv if r["model"] == best)
        outcome.result = {
            "summary": f"Best model {best}: cross-validated RMSE {best_row['rmse']:.3f}, "
            f"{int(level * 100)} % intervals cover {best_row['coverage']:.0%}.",
            "url": reverse("remote_care:progression_detail", args=[analysis.pk]),
        }
    return outcome.result


def _flagged_share(model: Any, stays: list[Any]) -> float | None:
    """Share of PhysioNet stays the model's input contract would answer 'insufficient data'."""
    from remote_care.ml.applicability import check_inputs

    if not stays:
        return None
    flagged = sum(not check_inputs(s, model.input_contract)["sufficient"] for s in stays)
    return round(flagged / len(stays), 4)
