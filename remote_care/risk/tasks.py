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
from remote_care.risk.services import RISK_TRAINING_KIND, risk_scores_refresh


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
    from remote_care.ml.train import EpochReport, TrainConfig
    from remote_care.risk.training import SPLIT_SEED
    from remote_care.risk.training import risk_model_train as train_model

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
    total = len(config.seeds) * config.max_epochs

    def on_epoch(report: EpochReport, curves: dict[str, list]) -> None:
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

    trained = train_model(
        archive=archive,
        outcomes=outcomes,
        cache_dir=settings.MEDAI_CACHE_DIR,
        config=config,
        on_stage=lambda percent, stage: progress.update(percent, stage, force=True),
        on_epoch=on_epoch,
        limit_stays=params.get("limit_stays"),
        split_seed=int(params.get("split_seed", SPLIT_SEED)),
    )
    progress.update(95, "Registering the model version", force=True)
    with progress.finishing() as outcome:
        version = model_version_publish(
            task=trained.task,
            artifact=trained.content,
            created_by=job.owner,
            activate=bool(params.get("activate")),
            params=trained.params,
            training_data=trained.training_data,
            metrics=trained.metrics,
            notes=f"Trained by job #{job.pk}.",
        )
        outcome.result = {
            "summary": model_version_trained_summary(version=version, finding=trained.finding),
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
