"""Every read in drugs. Research data (no patient in it) is shared by every researcher;
shortlists are each researcher's own."""

from __future__ import annotations

import csv
import gzip
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db.models import F, FloatField, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from drugs.models import (
    GENERATOR_TASK,
    PREDICTOR_TASK_PREFIX,
    DesignRun,
    GeneratedMolecule,
    MoleculeDataset,
    ShortlistEntry,
)
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def dataset_list() -> QuerySet[MoleculeDataset]:
    # pk breaks ties between equal names, so a page boundary is stable.
    return MoleculeDataset.objects.select_related("created_by", "job").order_by("name", "pk")


def dataset_ready_list() -> QuerySet[MoleculeDataset]:
    return dataset_list().filter(status=MoleculeDataset.Status.READY)


def dataset_get(*, pk: int) -> MoleculeDataset:
    return dataset_list().get(pk=pk)


def dataset_smiles(
    dataset: MoleculeDataset, *, limit: int | None = None, seed: int = 0
) -> list[str]:
    """The data set's canonical SMILES; with ``limit``, a seeded random subset of that size
    (for the 1.58M-molecule MOSES set a run trains on a subset)."""
    from drugs.ml.datasets import load_smiles_file

    if dataset.file:
        with dataset.file.open("rb") as raw, gzip.open(raw, "rt", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            smiles = [row[0] for row in reader if row]
    else:
        smiles = load_smiles_file(Path(dataset.path))
    if limit is not None and len(smiles) > limit:
        smiles = random.Random(seed).sample(smiles, limit)
    return smiles


def run_list() -> QuerySet[DesignRun]:
    return DesignRun.objects.select_related("dataset", "created_by", "job", "generator")


def run_get(*, pk: int) -> DesignRun:
    return run_list().get(pk=pk)


# Sortable columns of the molecule grid: (label, expression).
SORTS: dict[str, str] = {
    "qed": "QED",
    "sa_score": "SA score",
    "mw": "Molecular weight",
    "logp": "logP",
    "tpsa": "TPSA",
    "count": "Times sampled",
    "smiles": "SMILES",
}
RANGE_FIELDS = ("mw", "logp", "tpsa", "qed", "sa_score")


@dataclass
class MoleculeFilters:
    """The grid's filters: property ranges, filters passed, novelty, a predicted-endpoint
    range, and the sort."""

    ranges: dict[str, tuple[float | None, float | None]]
    lipinski: bool = False
    pains: bool = False
    moses_filters: bool = False
    novel_only: bool = False
    shortlisted_by: User | None = None
    endpoint: str = ""
    endpoint_min: float | None = None
    endpoint_max: float | None = None
    sort: str = "-qed"


def _prediction(endpoint: str) -> Any:
    return Cast(KeyTextTransform(endpoint, "predictions"), FloatField())


def molecule_filter(*, run: DesignRun, filters: MoleculeFilters) -> QuerySet[GeneratedMolecule]:
    """The run's molecules passing ``filters``, sorted (ties broken by id, so pages are
    stable). An unknown sort falls back to QED."""
    rows = run.molecules.all()
    for name, (low, high) in filters.ranges.items():
        if name not in RANGE_FIELDS:
            continue
        if low is not None:
            rows = rows.filter(**{f"{name}__gte": low})
        if high is not None:
            rows = rows.filter(**{f"{name}__lte": high})
    if filters.lipinski:
        rows = rows.filter(lipinski_pass=True)
    if filters.pains:
        rows = rows.filter(pains_pass=True)
    if filters.moses_filters:
        rows = rows.filter(moses_filters_pass=True)
    if filters.novel_only:
        rows = rows.filter(novel=True)
    if filters.shortlisted_by is not None:
        rows = rows.filter(shortlist_entries__user=filters.shortlisted_by)
    predicted = set(run.result.get("predictors", {}))
    if filters.endpoint in predicted:
        rows = rows.annotate(predicted=_prediction(filters.endpoint))
        if filters.endpoint_min is not None:
            rows = rows.filter(predicted__gte=filters.endpoint_min)
        if filters.endpoint_max is not None:
            rows = rows.filter(predicted__lte=filters.endpoint_max)
    key = filters.sort.lstrip("-")
    descending = filters.sort.startswith("-")
    if key.startswith("pred:") and key[5:] in predicted:
        expression = _prediction(key[5:])
    elif key in SORTS:
        expression = F(key)
    else:
        expression, descending = F("qed"), True
    ordered = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return rows.order_by(ordered, "id")


def molecule_get(*, pk: int) -> GeneratedMolecule:
    return GeneratedMolecule.objects.select_related("run", "run__dataset", "run__generator").get(
        pk=pk
    )


def shortlist_for(*, user: User) -> QuerySet[ShortlistEntry]:
    return ShortlistEntry.objects.filter(user=user).select_related("molecule", "molecule__run")


def shortlist_entry(*, molecule: GeneratedMolecule, user: User) -> ShortlistEntry | None:
    return ShortlistEntry.objects.filter(molecule=molecule, user=user).first()


def generator_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(task=GENERATOR_TASK).exclude(
        status=ModelVersion.Status.FAILED
    )


def generator_active() -> ModelVersion | None:
    """The generator version in service, if any: the prior a design run fine-tunes by default."""
    return generator_versions().filter(status=ModelVersion.Status.ACTIVE).first()


def predictor_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(task__startswith=PREDICTOR_TASK_PREFIX).order_by(
        "task", "-version", "pk"
    )


def active_predictors() -> list[ModelVersion]:
    """The predictor version in service for each endpoint that has one."""
    return list(predictor_versions().filter(status=ModelVersion.Status.ACTIVE).order_by("task"))


def endpoint_of(version: ModelVersion) -> str:
    """The endpoint a predictor version predicts (as ENDPOINTS names it)."""
    return (version.training_data or {}).get("endpoint") or version.task.removeprefix(
        PREDICTOR_TASK_PREFIX
    )


def predictor_summary(metrics: dict[str, Any]) -> str:
    """A predictor's cross-validated scores in words, with the baseline a model must beat."""

    def pm(name: str) -> str:
        mean, sd = metrics.get(f"{name}_mean"), metrics.get(f"{name}_sd")
        if mean is None:
            return ""
        return f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}"

    parts = []
    if metrics.get("roc_auc_mean") is not None:
        parts.append(f"ROC-AUC {pm('roc_auc')}")
    if metrics.get("pr_auc_mean") is not None:
        baseline = metrics.get("baseline_pr_auc")
        parts.append(
            f"PR-AUC {pm('pr_auc')}" + (f" (random {baseline:.3f})" if baseline is not None else "")
        )
    if metrics.get("rmse_mean") is not None:
        baseline = metrics.get("baseline_rmse")
        parts.append(
            f"RMSE {pm('rmse')}" + (f" (predicting the mean: {baseline:.3f})" if baseline else "")
        )
    if metrics.get("r2_mean") is not None:
        parts.append(f"R² {pm('r2')}")
    folds = metrics.get("cv_folds")
    if folds:
        scheme = "scaffold-grouped " if metrics.get("cv") == "scaffold" else ""
        parts.append(f"{scheme}{folds}-fold CV, n = {metrics.get('n', '?')}")
    threshold = metrics.get("applicability_threshold")
    if threshold is not None:
        outside = metrics.get("applicability_cv_outside_rate")
        parts.append(
            f"applicability domain: max Tanimoto similarity to training ≥ {threshold:.2f}"
            + (
                f" ({outside:.0%} of held-out molecules fell outside)"
                if outside is not None
                else ""
            )
        )
    else:
        parts.append("applicability domain unknown (trained before it was recorded)")
    return "; ".join(parts)


def dataset_preview(dataset: MoleculeDataset, *, n: int = 12) -> list[str]:
    """The first ``n`` molecules of a data set (for its page)."""
    if dataset.file:
        with dataset.file.open("rb") as raw, gzip.open(raw, "rt", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            return [row[0] for _, row in zip(range(n), reader) if row]
    from drugs.ml.datasets import load_smiles_file

    return load_smiles_file(Path(dataset.path), limit=n)


# Fingerprint indexes of training sets for the molecule page, per process: building one for
# 10,000 molecules takes about a second, a search a few milliseconds.
_NEIGHBOUR_INDEXES: dict[tuple[Any, ...], Any] = {}


def training_neighbours(
    *, dataset: MoleculeDataset, smiles: str, k: int = 5, limit: int = 10_000
) -> list[tuple[str, float]]:
    """The ``k`` molecules of ``dataset`` (a seeded subset of ``limit`` for larger sets) most
    similar to ``smiles``, with their Tanimoto similarity, most similar first."""
    from drugs.ml.chem import FingerprintIndex

    key = (dataset.pk, dataset.file.name or "", dataset.path, limit)
    index = _NEIGHBOUR_INDEXES.get(key)
    if index is None:
        index = FingerprintIndex(dataset_smiles(dataset, limit=limit, seed=0))
        if len(_NEIGHBOUR_INDEXES) >= 4:
            _NEIGHBOUR_INDEXES.pop(next(iter(_NEIGHBOUR_INDEXES)))
        _NEIGHBOUR_INDEXES[key] = index
    return index.nearest(smiles, k)


def dataset_runs(*, dataset: MoleculeDataset) -> QuerySet[DesignRun]:
    """The data set's design runs with their jobs, newest first."""
    return dataset.runs.select_related("job")


def run_top_molecules(*, run: DesignRun, limit: int = 12) -> list[GeneratedMolecule]:
    """A run's molecules with the highest drug-likeness (QED) first."""
    return list(run.molecules.order_by("-qed", "id")[:limit])


def shortlisted_ids(*, user: Any, molecules: Any) -> set[int]:
    """Which of ``molecules`` are on the user's shortlist (their primary keys)."""
    return set(
        shortlist_for(user=user)
        .filter(molecule__in=[m.pk for m in molecules])
        .values_list("molecule_id", flat=True)
    )


def model_versions_by_pk(*, pks: list[int]) -> dict[int, ModelVersion]:
    """The model versions ``pks`` name, by primary key (missing ones left out)."""
    return {v.pk: v for v in ModelVersion.objects.filter(pk__in=pks)}


def predictor_training_jobs(*, user: Any, limit: int = 10) -> QuerySet[Job]:
    """The user's recent predictor-training jobs, newest first."""
    return Job.objects.filter(kind="drugs.predictor_training", owner=user)[:limit]
