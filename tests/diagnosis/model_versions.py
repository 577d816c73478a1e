"""Registering the tiny test model as a diagnosis model version, and variants of its artifact
with the PneumoniaMNIST input contract (chest radiographs) or without an out-of-distribution
detector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PNEUMONIA_NPZ = ROOT / "data" / "medmnist" / "pneumoniamnist.npz"
TASK = "diagnosis.pneumonia"


def artifact_variant(content: bytes, *, contract: Any = "keep", detector: bool = True) -> bytes:
    """The tiny artifact with another input contract (a dict, or None for none) and/or
    without its out-of-distribution detector (as versions trained before detectors)."""
    from diagnosis.ml.artifact import artifact_bytes, load_artifact

    bundle = load_artifact(content)
    if contract != "keep":
        bundle.contract = contract
    if not detector:
        bundle.ood = None
    return artifact_bytes(bundle)


def chest_contract() -> dict[str, Any]:
    from diagnosis.imaging.contract import contract_for_dataset

    return contract_for_dataset(
        source="pneumoniamnist.npz", channels=1, image_size=(28, 28)
    ).to_dict()


def register_version(users, artifact: bytes, *, task: str = TASK, activate: bool = True):
    """Register (and activate) an artifact as a version of ``task``, with its data set."""
    from diagnosis.models import ImageDataset
    from medai_site.registry.loader import clear_model_cache
    from medai_site.registry.services import model_version_register
    from tests.support.governance import activate_version

    ImageDataset.objects.get_or_create(
        task=task,
        defaults={
            "name": "PneumoniaMNIST" if task == TASK else task,
            "kind": "npz",
            "path": str(PNEUMONIA_NPZ),
            "class_names": ["normal", "pneumonia"],
            "split_sizes": {"train": 4708, "val": 524, "test": 624},
            "image_shape": [28, 28, 1],
            "status": "ready",
        },
    )
    version = model_version_register(
        task=task,
        artifact=artifact,
        created_by=users.model_admin,
        metrics={"test_auc": 0.9, "test_accuracy": 0.8},
    )
    if activate:
        activate_version(version, users.model_admin)
    clear_model_cache()
    return version
