"""Drug design: molecule data sets, design runs (a generator trained or sampled), the
molecules a run generated with their properties, and researchers' shortlists.

Generator and property-predictor versions are registry ModelVersions (tasks
``drugs.generator`` and ``drugs.predictor.<endpoint>``), so model admins activate and roll
them back in the Django admin like every other model.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.db import models

GENERATOR_TASK = "drugs.generator"
PREDICTOR_TASK_PREFIX = "drugs.predictor."


def predictor_task(endpoint: str) -> str:
    """The registry task of ``endpoint``'s property predictor ("Tox21 NR-AR" ->
    drugs.predictor.tox21_nr_ar: task names end up in artifact paths)."""
    slug = re.sub(r"[^a-z0-9]+", "_", endpoint.lower()).strip("_")
    return f"{PREDICTOR_TASK_PREFIX}{slug}"


def _upload_path(instance: MoleculeDataset, filename: str) -> str:
    # Generated names only; the researcher's file name is kept in the row, never on disk.
    return f"drugs/uploads/{uuid.uuid4().hex}.bin"


def _molecules_path(instance: MoleculeDataset, filename: str) -> str:
    return f"drugs/datasets/{uuid.uuid4().hex}.csv.gz"


class MoleculeDataset(models.Model):
    """Molecules a generator can learn from: an upload (SMILES/CSV/SDF, stored as canonical
    SMILES in a gzipped CSV) or a built-in set read by path (the MOSES sets)."""

    class Source(models.TextChoices):
        UPLOAD = "upload", "Uploaded file"
        BUILTIN = "builtin", "Built-in"

    class Status(models.TextChoices):
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=100, unique=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IMPORTING)
    description = models.TextField(blank=True)
    attribution = models.TextField(blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    upload = models.FileField(upload_to=_upload_path, blank=True, max_length=300)
    smiles_column = models.CharField(max_length=100, blank=True)
    file = models.FileField(upload_to=_molecules_path, blank=True, max_length=300)
    path = models.CharField(max_length=500, blank=True, help_text="Server path of a built-in set.")
    n_lines = models.PositiveIntegerField(default=0)
    n_molecules = models.PositiveIntegerField(default=0)
    n_invalid = models.PositiveIntegerField(default=0)
    n_duplicates = models.PositiveIntegerField(default=0)
    value_columns = models.JSONField(default=list, blank=True)
    # The first invalid lines ({line, text, message}); n_invalid counts all of them.
    errors = models.JSONField(default=list, blank=True)
    # MOSES metrics of a sample of this set scored as if generated (the "training set" row),
    # computed once by the first design run that needs them.
    reference_metrics = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY


class DesignRun(models.Model):
    """One generation run: train (or fine-tune) a generator on a data set with objectives, or
    sample more molecules from an existing generator version; then evaluate the sample."""

    class Kind(models.TextChoices):
        TRAIN = "train", "Train a generator"
        FINETUNE = "finetune", "Fine-tune a generator"
        SAMPLE = "sample", "Generate from a generator"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TRAIN)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    dataset = models.ForeignKey(MoleculeDataset, on_delete=models.PROTECT, related_name="runs")
    config = models.JSONField(default=dict, blank=True)
    n_samples = models.PositiveIntegerField(default=2000)
    # The generator version the run started from (fine-tune, sample) ...
    base_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # ... and the one that produced its molecules (registered by a train/fine-tune run).
    generator = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    collapse = models.BooleanField(default=False)
    n_sampled = models.PositiveIntegerField(default=0)
    n_valid = models.PositiveIntegerField(default=0)
    n_unique = models.PositiveIntegerField(default=0)
    n_novel = models.PositiveIntegerField(default=0)
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (run #{self.pk})"

    @property
    def is_done(self) -> bool:
        return self.status == self.Status.DONE


class GeneratedMolecule(models.Model):
    """One unique valid molecule of a run's sample, with its computed and predicted
    properties (predictions keyed by endpoint; the versions used are on the run)."""

    run = models.ForeignKey(DesignRun, on_delete=models.CASCADE, related_name="molecules")
    smiles = models.CharField(max_length=500)
    count = models.PositiveIntegerField(default=1, help_text="Times it was sampled.")
    novel = models.BooleanField(default=True, help_text="Not in the training set.")
    mw = models.FloatField(null=True)
    logp = models.FloatField(null=True)
    tpsa = models.FloatField(null=True)
    hbd = models.PositiveSmallIntegerField(null=True)
    hba = models.PositiveSmallIntegerField(null=True)
    rotatable_bonds = models.PositiveSmallIntegerField(null=True)
    qed = models.FloatField(null=True)
    sa_score = models.FloatField(null=True)
    lipinski_pass = models.BooleanField(default=False)
    pains_pass = models.BooleanField(default=False)
    moses_filters_pass = models.BooleanField(default=False)
    predictions = models.JSONField(default=dict, blank=True)
    applicability = models.JSONField(
        default=dict,
        blank=True,
        help_text="Per endpoint: the prediction's applicability domain (max Tanimoto similarity "
        "to the predictor's training molecules against its threshold).",
    )
    x = models.FloatField(null=True, help_text="Chemical-space map coordinates.")
    y = models.FloatField(null=True)

    class Meta:
        ordering = ["run", "-qed", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "smiles"], name="unique_molecule_per_run")
        ]

    def __str__(self) -> str:
        return self.smiles

    @property
    def prediction_rows(self) -> list[dict[str, Any]]:
        """(endpoint, value, domain status and sentence) per prediction, for the grid."""
        from drugs.ml.domain import domain_text

        domains = self.applicability or {}
        return [
            {
                "endpoint": endpoint,
                "value": value,
                "domain_status": (domains.get(endpoint) or {}).get("status", "unknown"),
                "domain": domain_text(domains.get(endpoint)),
            }
            for endpoint, value in (self.predictions or {}).items()
        ]

    @property
    def filters_passed(self) -> int:
        return sum((self.lipinski_pass, self.pains_pass, self.moses_filters_pass))


class ShortlistEntry(models.Model):
    """A researcher's pick of a generated molecule, with their note."""

    molecule = models.ForeignKey(
        GeneratedMolecule, on_delete=models.CASCADE, related_name="shortlist_entries"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["molecule", "user"], name="one_shortlist_entry_per_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.molecule.smiles} ({self.user})"
