"""Drug-design jobs: import an uploaded molecule file (default queue); train, fine-tune or
sample a generator and evaluate its molecules, and train property predictors (ml queue)."""

from __future__ import annotations

import time
from typing import Any

from django.urls import reverse

from drugs.artifacts import active_predictor_models, artifact_bytes
from drugs.design import (
    design_generator_load,
    design_generator_train,
    design_headline,
    design_sample_score,
    design_training_molecules,
)
from drugs.models import GENERATOR_TASK, DesignRun, MoleculeDataset
from drugs.services import (
    ImportedMolecules,
    dataset_import_store,
    dataset_mark_failed,
    design_run_store,
)
from drugs.shadow import run_predictors_shadow_score
from medai_site.core.media import media_writes
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.kinds import Need
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task

# ---------------------------------------------------------------------------------------------
# Data set import


@job_task(kind="drugs.dataset_import", label="molecule import", queue="default", time_limit=3600)
def import_dataset(job: Job, progress: Progress) -> dict[str, Any]:
    from drugs.ml.chem import MoleculeFileError, parse_molecule_file

    dataset = job_row(
        MoleculeDataset.objects,
        job=job,
        param="dataset_id",
        missing="The data set no longer exists.",
    )
    url = reverse("drugs:dataset_detail", args=[dataset.pk])
    if dataset.is_ready:
        return {"summary": "Already imported.", "url": url}
    progress.update(5, f"Reading {dataset.original_name}", force=True)
    with dataset.upload.open("rb") as handle:
        data = handle.read()
    progress.update(10, "Checking every line with RDKit", force=True)
    try:
        parsed = parse_molecule_file(
            data, dataset.original_name, smiles_column=dataset.smiles_column or None
        )
    except MoleculeFileError as exc:
        dataset_mark_failed(dataset=dataset)
        raise JobError(f"The file could not be imported: {exc}") from None
    progress.update(80, "Storing the canonical molecules", force=True)
    imported = ImportedMolecules.from_parsed(parsed)
    # The stored molecules file goes if the finishing transaction fails after writing it.
    with media_writes(), progress.finishing() as outcome:
        dataset_import_store(dataset=dataset, imported=imported)
        outcome.result = {
            "summary": f"Imported {len(imported.rows):,} molecules"
            + (f"; {parsed.error_count:,} invalid line(s) reported" if parsed.error_count else "")
            + (f"; {imported.n_duplicates:,} duplicate(s) merged" if imported.n_duplicates else "")
            + ".",
            "url": url,
            "dataset": dataset.pk,
        }
    return outcome.result


# ---------------------------------------------------------------------------------------------
# Design runs


def _goal_comparison(
    *, run: DesignRun, generated: Any, scored: Any, seed: int, progress: Progress
) -> dict[str, Any]:
    """The run's goal-directed comparison; a failure to compute it (a baseline file that
    cannot be read) is recorded with its reason and does not fail the run."""
    from drugs.goal import design_goal_compare

    try:
        return design_goal_compare(
            run=run,
            generated=generated,
            run_smiles=[row["smiles"] for row in scored.rows],
            seed=seed,
            progress=progress,
        )
    except (OSError, ValueError, JobError) as exc:
        return {"status": "failed", "reason": str(exc)}


# The generator trains and samples on torch_device(): a GPU when the worker has one.
@job_task(kind="drugs.design", label="molecule design run", queue="ml", need=Need.GPU_PREFERRED)
def run_design(job: Job, progress: Progress) -> dict[str, Any]:
    """Train, fine-tune or sample a run's generator, score its molecules and store them with
    the job's success (a trained generator is registered then); a done run is left as it is."""
    from medai_site.registry.services import model_version_publish

    run = job_row(
        DesignRun.objects.select_related("dataset"),
        job=job,
        param="run_id",
        missing="The design run no longer exists.",
    )
    url = reverse("drugs:run_detail", args=[run.pk])
    if run.is_done:
        return {"summary": "Already done.", "url": url}
    seed = int(run.config.get("gan", {}).get("seed", 0))
    train = design_training_molecules(run=run, seed=seed, progress=progress)
    started = time.monotonic()
    if run.kind == DesignRun.Kind.SAMPLE:
        generated = design_generator_load(run=run)
    else:
        generated = design_generator_train(run=run, train=train, progress=progress)
    scored = design_sample_score(
        run=run, generated=generated, train=train, seed=seed, started=started, progress=progress
    )
    scored.result["goal"] = _goal_comparison(
        run=run, generated=generated, scored=scored, seed=seed, progress=progress
    )
    content = artifact_bytes(generated.artifact.save) if generated.version is None else b""
    with progress.finishing() as outcome:
        generator = generated.version
        if generator is None:
            generator = model_version_publish(
                task=GENERATOR_TASK,
                artifact=content,
                created_by=job.owner,
                activate=bool(run.config.get("activate")),
                params=run.config,
                training_data={
                    "dataset": run.dataset.name,
                    "dataset_id": run.dataset.pk,
                    "n": len(train),
                    "sha256": run.dataset.sha256,
                    "base_version": run.base_version_id,
                },
                metrics={
                    **design_headline(scored.metrics),
                    "moses": scored.metrics,
                    "history": generated.history,
                },
                notes=f"Trained by design run #{run.pk} (job #{job.pk}).",
            )
        design_run_store(
            run=run,
            generator=generator,
            history=generated.history,
            metrics=scored.metrics,
            result=scored.result,
            molecules=scored.rows,
            counts=scored.counts,
            collapse=scored.collapse,
        )
        counts = scored.counts
        summary = (
            f"{counts['unique']:,} unique valid molecules of {counts['sampled']:,} sampled "
            f"({counts['novel']:,} novel) with {generator}"
        )
        if scored.collapse:
            summary += "; warning: mode collapse"
        outcome.result = {"summary": summary + ".", "url": url, "run": run.pk}
    # With the run stored, a shadow predictor (if one runs) predicts the same molecules; it
    # never fails or changes this run. Only the predictors that scored this run are shadowed.
    used = {item["version_id"] for item in scored.result.get("predictors", {}).values()}
    run_predictors_shadow_score(
        run_id=run.pk,
        predictors=[p for p in active_predictor_models() if p[1].pk in used],
    )
    return outcome.result


# ---------------------------------------------------------------------------------------------
# Property predictors


@job_task(kind="drugs.predictor_training", label="property predictor training", queue="ml")
def train_predictor(job: Job, progress: Progress) -> dict[str, Any]:
    """Fit a property predictor of the job's endpoint and register it with the job's success
    (in service at once when asked or when the endpoint has none)."""
    from drugs.training import predictor_train
    from medai_site.registry.selectors import model_version_active
    from medai_site.registry.services import model_version_publish, model_version_trained_summary

    trained = predictor_train(
        endpoint=job.params.get("endpoint", ""),
        kind=job.params.get("kind", "random_forest"),
        cv_folds=int(job.params.get("cv_folds", 5)),
        progress=progress,
        task=job.params.get("task") or "",
    )
    progress.update(94, "Registering the model version", force=True)
    with progress.finishing() as outcome:
        # The first version of an endpoint goes into service, so its predictions appear at
        # once; later ones wait for a model admin unless asked.
        task = trained.task
        activate = bool(job.params.get("activate")) or model_version_active(task=task) is None
        version = model_version_publish(
            task=task,
            artifact=trained.content,
            created_by=job.owner,
            activate=activate,
            params={**trained.params, "cv_folds": job.params.get("cv_folds", 5)},
            training_data=trained.training_data,
            metrics=trained.metrics,
            notes=f"Trained by job #{job.pk}.",
        )
        outcome.result = {
            "summary": model_version_trained_summary(version=version, finding=trained.finding),
            "url": reverse("drugs:predictors"),
            "model_version": version.pk,
        }
    return outcome.result
