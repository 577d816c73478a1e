"""Background jobs of the deterioration model: training it, and scoring monitored patients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.urls import reverse

from medai_site.celery import app
from medai_site.core.charts import live_figure
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_task
from remote_care.risk.charts import risk_training_figure
from remote_care.risk.services import (
    RISK_TASK,
    RISK_TRAINING_KIND,
    risk_model_to_bytes,
    risk_scores_refresh,
)


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
    from medai_site.registry.services import model_version_publish, model_version_trained_summary
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
            live={
                "curves": curves,
                "figure": live_figure(
                    risk_training_figure(curves), label="Validation AUROC per epoch"
                ),
            },
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
        version = model_version_publish(
            task=RISK_TASK,
            artifact=content,
            created_by=job.owner,
            activate=bool(params.get("activate")),
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
        outcome.result = {
            "summary": model_version_trained_summary(
                version=version, finding=f"held-out AUROC {ours['auroc']:.3f}"
            ),
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


def _flagged_share(model: Any, stays: list[Any]) -> float | None:
    """Share of PhysioNet stays the model's input contract would answer 'insufficient data'."""
    from remote_care.ml.applicability import check_inputs

    if not stays:
        return None
    flagged = sum(not check_inputs(s, model.input_contract)["sufficient"] for s in stays)
    return round(flagged / len(stays), 4)
