"""Imaging model artifacts: bytes from the registry loaded as classifier bundles, the
version in service from this worker's cache, and any given version for a score-anyway."""

from __future__ import annotations

import hashlib
from typing import Any

from medai_site.core.compute import torch_device
from medai_site.jobs.exceptions import JobError
from medai_site.registry.loader import LoadedModel, NoActiveModel, load_active_model
from medai_site.registry.models import ModelVersion


def load_bundle(content: bytes) -> Any:
    """An imaging artifact loaded on this worker's device (GPU when present)."""
    from diagnosis.ml.artifact import load_artifact

    return load_artifact(content, device=torch_device())


def artifact_check(content: bytes) -> Any:
    """An imaging artifact loaded on the CPU; ValueError for bytes of any other kind (the
    registry's import refuses those)."""
    from diagnosis.ml.artifact import load_artifact

    return load_artifact(content)


class NoModelInService(JobError):
    """No version of the task is in service (the scans are kept and wait for one)."""


def active_classifier(task: str) -> LoadedModel:
    """The active model of ``task`` from this worker's cache (NoModelInService, a JobError,
    if none is active)."""
    try:
        return load_active_model(task, load_bundle)
    except NoActiveModel:
        raise NoModelInService(
            f"No model version of {task} is in service. Ask a model admin to train and "
            "activate one; the scans are stored and can be classified then."
        ) from None


def version_bundle(version: ModelVersion) -> Any:
    """A given model version loaded (from this process's cache when it is the active one),
    e.g. to score a scan anyway with the version that found it outside its scope."""
    from medai_site.registry.loader import ArtifactCorrupt

    active = active_classifier(version.task) if version.status == "active" else None
    if active is not None and active.version.pk == version.pk:
        return active.model
    with version.artifact.open("rb") as handle:
        content = handle.read()
    if version.sha256 and hashlib.sha256(content).hexdigest() != version.sha256:
        raise ArtifactCorrupt(f"The artifact of {version} does not match its recorded sha256.")
    return load_bundle(content)
