"""The work of a design run, done outside any transaction: the training molecules, the
generator trained, fine-tuned or loaded, and its sample scored (properties, predictions, the
MOSES metrics against the reference sets) and mapped into chemical space."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drugs.artifacts import active_predictor_models, activity_function, load_generator
from drugs.models import DesignRun, MoleculeDataset
from drugs.services import dataset_reference_store, design_run_record_history
from medai_ml.plain import rounded
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.runtime import Progress
from medai_site.registry.models import ModelVersion

# Molecules of the sample shown live on the run page after each epoch.
LIVE_SAMPLE = 12
# Training-set molecules whose properties are drawn beside the generated ones.
REFERENCE_PROPERTIES = 2000
# The MOSES paper scores 30k samples; references larger than this are subsampled for metrics.
METRICS_REFERENCE = 30_000
# A run's data set needs at least this many valid molecules to train on.
MIN_TRAINING_MOLECULES = 100


@dataclass
class Generated:
    """A run's generator: a freshly trained artifact (``version`` None until it is
    registered) or the loaded artifact of the version a sample run draws from. ``prior`` is
    the generator before any objective was optimised (the base version of a fine-tune, a
    from-scratch run's own generator after maximum-likelihood pre-training), described by
    ``prior_label``."""

    artifact: Any
    version: ModelVersion | None
    temperature: float
    history: list[dict[str, Any]] = field(default_factory=list)
    collapse: bool = False
    stopped: str = ""
    prior: Any = None
    prior_label: str = ""


@dataclass
class Scored:
    """A run's sample, evaluated: one row per unique valid molecule, the counts, the MOSES
    metrics, the run's result (space map, predictors, timings) and the collapse verdict."""

    rows: list[dict[str, Any]]
    counts: dict[str, int]
    metrics: dict[str, Any]
    result: dict[str, Any]
    collapse: bool


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


def _moses_cache() -> Any:
    """The folder of statistics computed once per file content (drugs.ml.benchmark.Cache)."""
    from django.conf import settings

    from drugs.ml.benchmark import Cache

    return Cache(Path(settings.MEDIA_ROOT) / "drugs" / "cache")


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


def design_headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar MOSES metrics a generator version's card leads with, in display order."""
    order = ("valid", "unique@10k", "novelty", "fcd", "snn", "intdiv", "filters")
    return {k: metrics[k] for k in order if isinstance(metrics.get(k), (int, float))}


def design_training_molecules(*, run: DesignRun, seed: int, progress: Progress) -> list[str]:
    """The run's canonical training molecules; JobError when the data set cannot be read or
    has too few valid molecules."""
    from drugs.selectors import dataset_smiles

    progress.update(2, f"Loading {run.dataset.name}", force=True)
    limit = run.config.get("train_limit")
    try:
        if limit is None and run.dataset.path and not run.dataset.file:
            # A whole built-in set (the prior's 1.58M molecules): canonicalised once, cached.
            train = sorted(_moses_cache().canonical_train(Path(run.dataset.path)))
        else:
            train = _canonical_training(dataset_smiles(run.dataset, limit=limit, seed=seed))
    except (OSError, ValueError) as exc:
        raise JobError(f"The data set {run.dataset.name} could not be read: {exc}") from None
    if len(train) < MIN_TRAINING_MOLECULES:
        raise JobError(
            f"{run.dataset.name} has only {len(train)} valid molecules; "
            f"{MIN_TRAINING_MOLECULES} needed."
        )
    return train


def design_generator_load(*, run: DesignRun) -> Generated:
    """A sample run's generator: the registered version it draws from, loaded."""
    return Generated(
        artifact=load_generator(run.generator),
        version=run.generator,
        temperature=float(run.config.get("temperature", 1.0)),
    )


class _EpochReporter:
    """Keeps each epoch's statistics on the run and reports them as the job's progress,
    with a live sample and the collapse warning."""

    def __init__(self, *, run: DesignRun, progress: Progress, total: int) -> None:
        self.run, self.progress, self.total = run, progress, total
        self.history: list[dict[str, Any]] = []
        self.percent = 5.0
        self.collapse = False

    def on_epoch(self, stats: Any) -> None:
        from drugs.ml.chem import canonical_smiles
        from drugs.ml.metrics import uniqueness_collapse

        entry = stats.to_dict()
        sample = [s for s in entry.pop("samples", []) if canonical_smiles(s)][:LIVE_SAMPLE]
        self.history.append(entry)
        self.collapse = bool(
            self.collapse
            or entry.get("collapse_warning")
            or uniqueness_collapse([h.get("uniqueness") for h in self.history])
        )
        self.percent = 5 + 75 * len(self.history) / self.total
        # The curves are read from the run's history; the job carries the latest sample.
        design_run_record_history(run=self.run, history=self.history)
        self.progress.update(
            self.percent,
            f"{entry['phase'].capitalize()} epoch {entry['epoch']}: valid "
            f"{entry['validity']:.0%}, unique {entry['uniqueness']:.0%}, "
            f"novel {entry['novelty']:.0%}",
            live={"sample": sample, "collapse": self.collapse},
        )

    def should_stop(self) -> bool:
        # A progress report is also the cancellation check: it raises JobCancelled, which
        # ends training at once and marks the job cancelled.
        self.progress.update(self.percent)
        return False


def design_generator_train(*, run: DesignRun, train: list[str], progress: Progress) -> Generated:
    """Train the run's generator (from its base version when fine-tuning), reporting every
    epoch; JobError on invalid settings or a missing activity predictor."""
    from drugs.ml.gan import GanConfig, train_gan
    from medai_site.core.compute import torch_device

    try:
        config = GanConfig.from_dict(run.config.get("gan", {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise JobError(f"The generator settings are not valid: {exc}") from None
    total = max(1, config.pretrain_epochs + config.adversarial_epochs)
    activity_fn = activity_function(run.config.get("activity_endpoint", ""))
    reporter = _EpochReporter(run=run, progress=progress, total=total)
    base = load_generator(run.base_version) if run.base_version_id else None
    progress.update(5, f"Training on {len(train):,} molecules", force=True)
    kwargs: dict[str, Any] = {}
    pretrained: list[Any] = []
    if base is not None:
        kwargs["init"] = base
    else:
        kwargs["on_pretrained"] = pretrained.append
    artifact = train_gan(
        config,
        train,
        on_epoch=reporter.on_epoch,
        should_stop=reporter.should_stop,
        activity_fn=activity_fn,
        device=str(torch_device()),
        **kwargs,
    )
    collapsed = artifact.stopped_reason == "mode_collapse"
    prior = base if base is not None else (pretrained[0] if pretrained else None)
    return Generated(
        artifact=artifact,
        version=None,
        temperature=float(config.temperature),
        history=reporter.history,
        collapse=reporter.collapse or collapsed,
        stopped=(
            f"Training stopped after {len(reporter.history)} epochs: the generator's samples "
            "collapsed (uniqueness fell)."
            if collapsed
            else ""
        ),
        prior=prior,
        prior_label=(
            str(run.base_version)
            if base is not None
            else "this run's generator after maximum-likelihood pre-training"
        ),
    )


def _design_metrics(
    *, run: DesignRun, sampled: list[str], train: list[str], seed: int, progress: Progress
) -> tuple[dict[str, Any], int]:
    """The sample's MOSES metrics (and the data set's own reference row, cached once) and the
    size of the test set they compare with."""
    from drugs.ml.metrics import moses_metrics
    from medai_site.core.compute import torch_device

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
    # Novelty against every training molecule (canonical already), not the 30k sample.
    metrics = {
        k: rounded(v)
        for k, v in moses_metrics(
            sampled, frozenset(train), test, test_scaffolds=scaffolds, n_jobs=1, device=device
        ).items()
    }
    dataset_reference(
        run.dataset, reference_train, test, scaffolds, device=device, size=run.n_samples
    )
    return metrics, len(test_smiles)


def _design_result(
    *,
    rows: list[dict[str, Any]],
    train: list[str],
    seed: int,
    predictors: list[tuple[str, ModelVersion, Any]],
    generated: Generated,
    test_size: int,
    started: float,
) -> dict[str, Any]:
    """The run's result: the chemical-space map (its coordinates also go on ``rows``), the
    predictors that scored it and the run's facts."""
    from drugs.ml.space import chemical_space

    unique = [r["smiles"] for r in rows]
    space = chemical_space(train, unique, seed=seed) if unique else None
    if space is not None:
        for row, (x, y) in zip(rows, space.generated_xy):
            row["x"], row["y"] = rounded(x), rounded(y)
    return {
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
        "test_size": test_size,
        "stopped": generated.stopped,
        "seconds": round(time.monotonic() - started, 1),
        "temperature": generated.temperature,
    }


def design_sample_score(
    *,
    run: DesignRun,
    generated: Generated,
    train: list[str],
    seed: int,
    started: float,
    progress: Progress,
) -> Scored:
    """Sample the run's molecules from ``generated`` and evaluate them (properties,
    predictions, MOSES metrics, chemical space); writes only the data set's cached reference
    row. ``started`` is the run's monotonic start, for its timing."""
    from medai_site.core.compute import torch_device

    progress.update(82, f"Sampling {run.n_samples:,} molecules", force=True)
    sampled = generated.artifact.sample(
        run.n_samples, temperature=generated.temperature, seed=seed, device=str(torch_device())
    )
    progress.update(85, "Computing properties and predicted activity", force=True)
    predictors = active_predictor_models()
    rows, counts = evaluate_sample(sampled, train, predictors)
    metrics, test_size = _design_metrics(
        run=run, sampled=sampled, train=train, seed=seed, progress=progress
    )
    collapse = generated.collapse
    if run.kind == DesignRun.Kind.SAMPLE and isinstance(metrics.get("unique@1k"), float):
        # A sample run has no epochs; a collapsed generator shows in its uniqueness.
        collapse = metrics["unique@1k"] < 0.5
    progress.update(95, "Mapping the chemical space", force=True)
    result = _design_result(
        rows=rows,
        train=train,
        seed=seed,
        predictors=predictors,
        generated=generated,
        test_size=test_size,
        started=started,
    )
    return Scored(rows=rows, counts=counts, metrics=metrics, result=result, collapse=collapse)
