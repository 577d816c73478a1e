"""The pre-trained generator prior shipped in data/models/drugs-generator-prior/, put into
service on the first start so a design run fine-tunes it instead of starting from scratch.

The folder holds the artifact (`generator.pt`, a `drugs.ml.gan.GanArtifact`), `SHA256SUMS`,
`training.log`, `metrics.json` and a README saying how it was made
(`python -m drugs.ml pretrain ...`). The file is verified against its recorded sha256 before
it is registered, and registered once (a version with the same sha256 is reused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from drugs.models import GENERATOR_TASK, MoleculeDataset
from drugs.services import MOSES_FULL_NAME
from medai_site.jobs.runtime import job_run_now
from medai_site.registry.models import ModelValidation, ModelVersion
from medai_site.registry.services import model_version_publish
from medai_site.registry.shipped import shipped_artifact

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PRIOR_SLUG = "drugs-generator-prior"
ARTIFACT_NAME = "generator.pt"


def prior_dir() -> Path:
    return Path(settings.BASE_DIR) / "data" / "models" / PRIOR_SLUG


@dataclass
class ShippedPrior:
    """The shipped artifact's bytes once their sha256 matched SHA256SUMS, and its record."""

    content: bytes
    sha256: str
    metrics: dict[str, Any]


def prior_read(*, folder: Path | None = None) -> ShippedPrior | None:
    """The shipped prior, verified by the platform's shipped-model check
    (medai_site.registry.shipped.shipped_artifact); None when none is shipped. ValueError
    (ShippedArtifactError) when its SHA256SUMS is missing or malformed or the file does not
    match it (a corrupted or replaced file is never registered)."""
    folder = folder or prior_dir()
    if not (folder / ARTIFACT_NAME).is_file():
        return None
    found = shipped_artifact(slug=folder.name, root=folder.parent)
    return ShippedPrior(content=found.content, sha256=found.sha256, metrics=found.record)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The generator row of the shipped MOSES table, under the registry's metric names."""
    row = (metrics.get("moses") or {}).get("rows", {}).get("generator", {})
    renamed = {"fcd_test": "fcd", "fcd_testsf": "fcd_sf", "scaff_testsf": "scaff_sf"}
    out = {renamed.get(k, k): v for k, v in row.items() if isinstance(v, (int, float))}
    if metrics.get("moses"):
        out["moses_samples"] = metrics["moses"].get("samples")
    return out


def generator_prior_ensure(
    *, user: User, folder: Path | None = None, validate: bool = True
) -> tuple[ModelVersion, str]:
    """Register the shipped prior as a ``drugs.generator`` version and, when no generator was
    ever in service, put it into service (bootstrap). Idempotent: the version already holding
    these bytes is returned. With ``validate``, its held-out validation job runs here and now,
    so it is recorded before any worker starts and never queues ahead of clinical work (as
    for the other shipped models, medai_site.registry.shipped). Returns (version, a console
    note); ValueError when nothing is shipped or the file fails its sha256 check."""
    from drugs.artifacts import generator_from_bytes

    shipped = prior_read(folder=folder)
    if shipped is None:
        raise ValueError(f"No generator prior is shipped in {folder or prior_dir()}.")
    existing = ModelVersion.objects.filter(task=GENERATOR_TASK, sha256=shipped.sha256).first()
    if existing is not None:
        return existing, f"{existing} (the shipped prior) is already registered"
    artifact = generator_from_bytes(shipped.content)  # refuses bytes that are not a generator
    full = MoleculeDataset.objects.filter(name=MOSES_FULL_NAME).first()
    provenance = dict(artifact.provenance)
    version = model_version_publish(
        task=GENERATOR_TASK,
        artifact=shipped.content,
        created_by=user,
        activate=True,
        # A sample run compares with the whole set the prior learnt from (novelty).
        params={"gan": artifact.config.to_dict(), "train_limit": None, "pretrain": provenance},
        training_data={
            "dataset": MOSES_FULL_NAME,
            "dataset_id": full.pk if full is not None else None,
            "n": artifact.train_size,
            "shipped": f"data/models/{PRIOR_SLUG}/{ARTIFACT_NAME}",
        },
        metrics=_headline(shipped.metrics),
        notes="Pre-trained prior shipped with MedAI (maximum likelihood on the MOSES training "
        f"set; {provenance.get('hardware', 'hardware not recorded')}).",
    )
    state = "in service" if version.status == ModelVersion.Status.ACTIVE else "awaiting approval"
    pending = ModelValidation.objects.filter(
        version=version, status=ModelValidation.Status.PENDING, job__isnull=False
    ).first()
    if validate and pending is not None and pending.job_id is not None:
        job_run_now(job_id=pending.job_id)
        pending.refresh_from_db()
        state += f", validation {pending.get_status_display().lower()}"
    return version, f"registered the shipped generator prior as {version} ({state})"
