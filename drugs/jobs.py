"""Drug-design jobs: import an uploaded molecule file (default queue); train, fine-tune or
sample a generator and evaluate its molecules, and train property predictors (ml queue)."""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.urls import reverse

from drugs.models import GENERATOR_TASK, DesignRun, MoleculeDataset, predictor_task
from drugs.services import (
    ImportedMolecules,
    dataset_import_store,
    dataset_mark_failed,
    dataset_reference_store,
    design_run_record_history,
    design_run_store,
)
from medai_ml.plain import rounded
from medai_site.core.media import media_writes
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from medai_site.registry.loader import load_active_model
from medai_site.registry.models import ModelVersion

# Molecules of the sample shown live on the run page after each epoch.
LIVE_SAMPLE = 12
# Training-set molecules whose properties are drawn beside the generated ones.
REFERENCE_PROPERTIES = 2000
# The MOSES paper scores 30k samples; references larger than this are subsampled for metrics.
METRICS_REFERENCE = 30_000


def _via_file(content: bytes, load: Callable[[Path], Any], suffix: str = ".bin") -> Any:
    """Artifacts are loaded from a path by the ml layer; the registry hands over bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"artifact{suffix}"
        path.write_bytes(content)
        return load(path)


def _artifact_bytes(save: Callable[[Path], Any], suffix: str = ".bin") -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"artifact{suffix}"
        save(path)
        return path.read_bytes()


def load_generator(version: ModelVersion) -> Any:
    """A generator version's GanArtifact (JobError if its file is missing)."""
    from drugs.ml.gan import GanArtifact

    try:
        with version.artifact.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError):
        raise JobError(f"The artifact file of {version} is missing.") from None
    return _via_file(content, GanArtifact.load)


def load_predictor_bytes(content: bytes) -> Any:
    from drugs.ml.predictors import PredictorArtifact

    return _via_file(content, PredictorArtifact.load)


def active_predictor_models() -> list[tuple[str, ModelVersion, Any]]:
    """(endpoint, version, artifact) of each predictor in service, from this worker's cache."""
    from drugs.selectors import active_predictors, endpoint_of

    found = []
    for version in active_predictors():
        loaded = load_active_model(version.task, load_predictor_bytes)
        found.append((endpoint_of(version), loaded.version, loaded.model))
    return found


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
    seen: set[str] = set()
    rows = []
    for molecule in parsed.molecules:
        if molecule.smiles in seen:
            continue
        seen.add(molecule.smiles)
        rows.append((molecule.smiles, molecule.name, dict(molecule.values)))
    imported = ImportedMolecules(
        rows=rows,
        value_columns=list(parsed.value_columns),
        n_lines=len(parsed.molecules) + parsed.error_count,
        n_duplicates=len(parsed.molecules) - len(rows),
        errors=[{"line": e.line, "text": e.text, "message": e.message} for e in parsed.errors],
        n_invalid=parsed.error_count,
    )
    # The stored molecules file goes if the finishing transaction fails after writing it.
    with media_writes(), progress.finishing() as outcome:
        dataset_import_store(dataset=dataset, imported=imported)
        outcome.result = {
            "summary": f"Imported {len(rows):,} molecules"
            + (f"; {parsed.error_count:,} invalid line(s) reported" if parsed.error_count else "")
            + (f"; {imported.n_duplicates:,} duplicate(s) merged" if imported.n_duplicates else "")
            + ".",
            "url": url,
            "dataset": dataset.pk,
        }
    return outcome.result


# ---------------------------------------------------------------------------------------------
# Design runs


def _canonical_training(smiles: list[str]) -> list[str]:
    """Canonical SMILES of the training molecules (novelty compares canonical forms; the
    built-in files were canonicalised by an older RDKit)."""
    from drugs.ml.chem import canonical_smiles

    out = []
    for s in smiles:
        c = canonical_smiles(s)
        if c:
            out.append(c)
    return out


def _reference_sets() -> tuple[list[str], list[str]]:
    """The MOSES test and scaffold-test molecules the metrics compare with (the shipped 10k
    subsets, cut to DRUGS_METRICS_TEST_SIZE)."""
    from django.conf import settings

    from drugs import sources
    from drugs.ml.datasets import load_smiles_file

    size = settings.DRUGS_METRICS_TEST_SIZE
    return (
        load_smiles_file(sources.moses_test_10k(), limit=size),
        load_smiles_file(sources.moses_test_scaffolds_10k(), limit=size),
    )


def reference_statistics(smiles: list[str], device: str = "cpu") -> Any:
    """metrics.ReferenceStats of a test set, kept on disk under MEDIA_ROOT after the first
    computation: for the 10k subsets it takes minutes on a CPU (ChemNet activations, filters,
    fragments), and every worker process would otherwise pay it again."""
    import hashlib
    import pickle

    from django.conf import settings

    from drugs.ml.metrics import reference_stats

    key = hashlib.sha256("\n".join(smiles).encode()).hexdigest()[:20]
    path = Path(settings.MEDIA_ROOT) / "drugs" / "cache" / f"reference-{key}.pkl"
    if path.is_file():
        try:
            # Written only by this function, under a name no upload can take.
            return pickle.loads(path.read_bytes())  # noqa: S301
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            path.unlink(missing_ok=True)
    stats = reference_stats(smiles, n_jobs=1, device=device)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(stats, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)
    return stats


def _property_lists(props: list[Any]) -> dict[str, list[float]]:
    from drugs.charts import PROPERTIES

    return {
        key: [rounded(getattr(p, key), 3) for p in props if p is not None] for key, _ in PROPERTIES
    }


def dataset_reference(
    dataset: MoleculeDataset,
    train: list[str],
    test: Any,
    scaffolds: Any,
    device: str = "cpu",
    size: int = 10_000,
) -> dict[str, Any]:
    """The training-set row of the MOSES table (``size`` training molecules scored as if
    generated) and the training-set property sample, computed once per data set and cached."""
    from drugs.ml.chem import properties_many
    from drugs.ml.metrics import moses_metrics

    if dataset.reference_metrics.get("metrics"):
        return dataset.reference_metrics
    rng = random.Random(0)
    sample = rng.sample(train, min(len(train), size))
    # Scored against an empty training set: a training molecule is not "novel" against itself,
    # so the row's novelty is left blank rather than shown as 0.
    metrics = moses_metrics(
        sample, frozenset(), test, test_scaffolds=scaffolds, n_jobs=1, device=device
    )
    metrics["novelty"] = None
    reference = {
        "metrics": {k: rounded(v) for k, v in metrics.items()},
        "n": len(sample),
        "properties": _property_lists(properties_many(sample[:REFERENCE_PROPERTIES])),
    }
    dataset_reference_store(dataset=dataset, metrics=reference)
    return reference


def evaluate_sample(
    sampled: list[str],
    train: list[str],
    predictors: list[tuple[str, ModelVersion, Any]],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One row per unique valid molecule (canonical SMILES, times sampled, novelty,
    properties, predictions) and the counts of the sample."""
    from drugs.ml.chem import canonical_smiles, properties_many

    canonical = [canonical_smiles(s) for s in sampled]
    valid = [c for c in canonical if c]
    counts = Counter(valid)
    unique = list(counts)
    known = set(train)
    props = properties_many(unique)
    predicted: dict[str, Any] = {}
    domains: dict[str, list[dict[str, Any]]] = {}
    for endpoint, _, model in predictors:
        predicted[endpoint] = model.predict(unique) if unique else []
        # Artifacts loaded from before the domain existed lack the method's data: "unknown".
        domains[endpoint] = model.applicability(unique) if unique else []
    rows = []
    for i, smiles in enumerate(unique):
        p = props[i]
        row: dict[str, Any] = {
            "smiles": smiles,
            "count": counts[smiles],
            "novel": smiles not in known,
            "predictions": {e: rounded(values[i]) for e, values in predicted.items()},
            "applicability": {e: verdicts[i] for e, verdicts in domains.items()},
        }
        if p is not None:
            row.update({k: v for k, v in p.to_dict().items() if k not in {"lipinski_violations"}})
        rows.append(row)
    return rows, {
        "sampled": len(sampled),
        "valid": len(valid),
        "unique": len(unique),
        "novel": sum(1 for r in rows if r["novel"]),
    }


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    # Scalars first: they head the registry's cards.
    order = ("valid", "unique@10k", "novelty", "fcd", "snn", "intdiv", "filters")
    return {k: metrics[k] for k in order if isinstance(metrics.get(k), (int, float))}


def _activity_function(endpoint: str) -> Callable[[list[str]], Any] | None:
    """The active predictor of ``endpoint`` as the GAN's activity reward in [0, 1] (for an
    endpoint where lower is better, such as toxicity, lower predictions score higher);
    JobError if none is in service."""
    from drugs.ml.predictors import ENDPOINTS

    if not endpoint:
        return None
    spec = ENDPOINTS.get(endpoint)
    for name, _, model in active_predictor_models():
        if name == endpoint and spec is not None:
            return lambda smiles: model.reward(smiles, higher_is_better=spec.higher_is_better)
    raise JobError(
        f"No {endpoint} predictor is in service, so the activity objective cannot be scored. "
        "Train one on the drug-design page first."
    )


@job_task(kind="drugs.design", label="molecule design run", queue="ml")
def run_design(job: Job, progress: Progress) -> dict[str, Any]:
    from drugs.ml.chem import canonical_smiles
    from drugs.ml.gan import GanConfig, train_gan
    from drugs.ml.metrics import moses_metrics, uniqueness_collapse
    from drugs.ml.space import chemical_space
    from drugs.selectors import dataset_smiles
    from medai_site.core.compute import torch_device
    from medai_site.registry.services import model_version_activate, model_version_register

    run = job_row(
        DesignRun.objects.select_related("dataset"),
        job=job,
        param="run_id",
        missing="The design run no longer exists.",
    )
    url = reverse("drugs:run_detail", args=[run.pk])
    if run.is_done:
        return {"summary": "Already done.", "url": url}
    config_data = run.config.get("gan", {})
    seed = int(config_data.get("seed", 0))
    progress.update(2, f"Loading {run.dataset.name}", force=True)
    try:
        raw_train = dataset_smiles(run.dataset, limit=run.config.get("train_limit"), seed=seed)
    except (OSError, ValueError) as exc:
        raise JobError(f"The data set {run.dataset.name} could not be read: {exc}") from None
    train = _canonical_training(raw_train)
    if len(train) < 100:
        raise JobError(f"{run.dataset.name} has only {len(train)} valid molecules; 100 needed.")
    history: list[dict[str, Any]] = []
    collapse = False
    stopped = ""
    started = time.monotonic()

    if run.kind == DesignRun.Kind.SAMPLE:
        artifact = load_generator(run.generator)
        generator = run.generator
        temperature = float(run.config.get("temperature", 1.0))
    else:
        try:
            config = GanConfig.from_dict(config_data)
        except (TypeError, ValueError, KeyError) as exc:
            raise JobError(f"The generator settings are not valid: {exc}") from None
        temperature = float(config.temperature)
        total = max(1, config.pretrain_epochs + config.adversarial_epochs)
        activity_fn = _activity_function(run.config.get("activity_endpoint", ""))
        state = {"percent": 5.0, "collapse": False}

        def on_epoch(stats: Any) -> None:
            entry = stats.to_dict()
            sample = [s for s in entry.pop("samples", []) if canonical_smiles(s)][:LIVE_SAMPLE]
            history.append(entry)
            state["collapse"] = bool(
                state["collapse"]
                or entry.get("collapse_warning")
                or uniqueness_collapse([h.get("uniqueness") for h in history])
            )
            state["percent"] = 5 + 75 * len(history) / total
            # The curves are read from the run's history; the job carries the latest sample.
            design_run_record_history(run=run, history=history)
            progress.update(
                state["percent"],
                f"{entry['phase'].capitalize()} epoch {entry['epoch']}: valid "
                f"{entry['validity']:.0%}, unique {entry['uniqueness']:.0%}, "
                f"novel {entry['novelty']:.0%}",
                live={"sample": sample, "collapse": state["collapse"]},
            )

        def should_stop() -> bool:
            # A progress report is also the cancellation check: it raises JobCancelled, which
            # ends training at once and marks the job cancelled.
            progress.update(state["percent"])
            return False

        base = load_generator(run.base_version) if run.base_version_id else None
        progress.update(5, f"Training on {len(train):,} molecules", force=True)
        kwargs: dict[str, Any] = {}
        if base is not None:
            kwargs["init"] = base
        artifact = train_gan(
            config,
            train,
            on_epoch=on_epoch,
            should_stop=should_stop,
            activity_fn=activity_fn,
            device=str(torch_device()),
            **kwargs,
        )
        collapse = bool(state["collapse"]) or artifact.stopped_reason == "mode_collapse"
        if artifact.stopped_reason == "mode_collapse":
            stopped = (
                f"Training stopped after {len(history)} epochs: the generator's samples "
                "collapsed (uniqueness fell)."
            )
        generator = None

    progress.update(82, f"Sampling {run.n_samples:,} molecules", force=True)
    sampled = artifact.sample(
        run.n_samples, temperature=temperature, seed=seed, device=str(torch_device())
    )
    progress.update(85, "Computing properties and predicted activity", force=True)
    predictors = active_predictor_models()
    rows, counts = evaluate_sample(sampled, train, predictors)
    progress.update(88, "Loading the MOSES test-set statistics", force=True)
    device = str(torch_device())
    test_smiles, scaffold_smiles = _reference_sets()
    test = reference_statistics(test_smiles, device)
    scaffolds = reference_statistics(scaffold_smiles, device)
    progress.update(90, "Computing the MOSES metrics", force=True)
    reference_train = (
        random.Random(seed).sample(train, METRICS_REFERENCE)
        if len(train) > METRICS_REFERENCE
        else train
    )
    metrics = {
        k: rounded(v)
        for k, v in moses_metrics(
            sampled,
            reference_train,
            test,
            test_scaffolds=scaffolds,
            n_jobs=1,
            device=str(torch_device()),
        ).items()
    }
    dataset_reference(
        run.dataset,
        reference_train,
        test,
        scaffolds,
        device=str(torch_device()),
        size=run.n_samples,
    )
    if run.kind == DesignRun.Kind.SAMPLE and isinstance(metrics.get("unique@1k"), float):
        # A sample run has no epochs; a collapsed generator shows in its uniqueness.
        collapse = metrics["unique@1k"] < 0.5
    progress.update(95, "Mapping the chemical space", force=True)
    unique = [r["smiles"] for r in rows]
    space = chemical_space(train, unique, seed=seed) if unique else None
    if space is not None:
        for row, (x, y) in zip(rows, space.generated_xy):
            row["x"], row["y"] = rounded(x), rounded(y)
    result = {
        "predictors": {
            endpoint: {"version_id": version.pk, "label": str(version)}
            for endpoint, version, _ in predictors
        },
        "space": {
            "method": space.method if space is not None else "",
            "explained": [rounded(v) for v in space.explained_variance] if space else [],
            "train": [[rounded(x), rounded(y)] for x, y in space.train_xy]
            if space is not None
            else [],
        },
        "train_size": len(train),
        "test_size": len(test_smiles),
        "stopped": stopped,
        "seconds": round(time.monotonic() - started, 1),
        "temperature": temperature,
    }
    content = _artifact_bytes(artifact.save) if generator is None else b""
    with progress.finishing() as outcome:
        if generator is None:
            generator = model_version_register(
                task=GENERATOR_TASK,
                artifact=content,
                created_by=job.owner,
                params=run.config,
                training_data={
                    "dataset": run.dataset.name,
                    "dataset_id": run.dataset.pk,
                    "n": len(train),
                    "sha256": run.dataset.sha256,
                    "base_version": run.base_version_id,
                },
                metrics={**_headline(metrics), "moses": metrics, "history": history},
                notes=f"Trained by design run #{run.pk} (job #{job.pk}).",
            )
            if run.config.get("activate"):
                model_version_activate(version=generator, user=job.owner)
        design_run_store(
            run=run,
            generator=generator,
            history=history,
            metrics=metrics,
            result=result,
            molecules=rows,
            counts=counts,
            collapse=collapse,
        )
        summary = (
            f"{counts['unique']:,} unique valid molecules of {counts['sampled']:,} sampled "
            f"({counts['novel']:,} novel) with {generator}"
        )
        if collapse:
            summary += "; warning: mode collapse"
        outcome.result = {"summary": summary + ".", "url": url, "run": run.pk}
    return outcome.result


# ---------------------------------------------------------------------------------------------
# Property predictors


@job_task(kind="drugs.predictor_training", label="property predictor training", queue="ml")
def train_predictor(job: Job, progress: Progress) -> dict[str, Any]:
    from drugs import sources
    from drugs.ml.predictors import ENDPOINTS, fit_predictor, load_endpoint
    from drugs.selectors import predictor_summary
    from medai_site.registry.selectors import model_version_active
    from medai_site.registry.services import model_version_activate, model_version_register

    endpoint = job.params.get("endpoint", "")
    kind = job.params.get("kind", "random_forest")
    if endpoint not in ENDPOINTS:
        raise JobError(f"Unknown endpoint {endpoint!r}.")
    task = job.params.get("task") or predictor_task(endpoint)
    progress.update(3, f"Loading the {endpoint} data set", force=True)
    spec = ENDPOINTS[endpoint]
    shipped = sources.moleculenet_dir()
    try:
        smiles, y, task_type = load_endpoint(
            endpoint, shipped if (shipped / spec.file).is_file() else None
        )
    except (OSError, ValueError) as exc:
        raise JobError(f"The {endpoint} data could not be read: {exc}") from None

    def on_progress(fraction: float, stage: str = "") -> None:
        progress.update(5 + 85 * float(fraction), stage or None)

    progress.update(5, f"Cross-validating a {kind.replace('_', ' ')} on {len(smiles):,} molecules")
    try:
        artifact, metrics = fit_predictor(
            smiles,
            y,
            task_type,
            kind=kind,
            cv_folds=int(job.params.get("cv_folds", 5)),
            seed=0,
            endpoint=endpoint,
            on_progress=on_progress,
        )
    except ValueError as exc:
        raise JobError(f"The {endpoint} predictor could not be trained: {exc}") from None
    progress.update(94, "Registering the model version", force=True)
    content = _artifact_bytes(artifact.save)
    metrics = dict(metrics)
    with progress.finishing() as outcome:
        version = model_version_register(
            task=task,
            artifact=content,
            created_by=job.owner,
            params={"kind": kind, "cv_folds": job.params.get("cv_folds", 5), "seed": 0},
            training_data={
                "endpoint": endpoint,
                "task_type": task_type,
                "n": len(smiles),
                "description": spec.description,
                "units": spec.units,
                "file": spec.file,
            },
            metrics=metrics,
            notes=f"Trained by job #{job.pk}.",
        )
        # The first version of an endpoint goes into service, so its predictions appear at
        # once; later ones wait for a model admin unless asked.
        activated = bool(job.params.get("activate")) or model_version_active(task=task) is None
        if activated:
            model_version_activate(version=version, user=job.owner)
        outcome.result = {
            "summary": f"Trained {version}: {predictor_summary(metrics)}"
            + (" (now in service)." if activated else "."),
            "url": reverse("drugs:predictors"),
            "model_version": version.pk,
        }
    return outcome.result
