"""Diagnosis fixtures: a tiny real model (trained once per session on a PneumoniaMNIST
subset) registered and activated for each test that needs one."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNEUMONIA_NPZ = ROOT / "data" / "medmnist" / "pneumoniamnist.npz"
TASK = "diagnosis.pneumonia"


@pytest.fixture
def active_model(db, users, tiny_artifact):
    """The tiny model as the active version of diagnosis.pneumonia, with its data set."""
    from diagnosis.models import ImageDataset
    from medai_site.registry.loader import clear_model_cache
    from medai_site.registry.services import model_version_activate, model_version_register

    ImageDataset.objects.create(
        name="PneumoniaMNIST",
        task=TASK,
        kind="npz",
        path=str(PNEUMONIA_NPZ),
        class_names=["normal", "pneumonia"],
        split_sizes={"train": 4708, "val": 524, "test": 624},
        image_shape=[28, 28, 1],
        status="ready",
    )
    version = model_version_register(
        task=TASK,
        artifact=tiny_artifact,
        created_by=users.model_admin,
        metrics={"test_auc": 0.9, "test_accuracy": 0.8},
    )
    model_version_activate(version=version, user=users.model_admin)
    clear_model_cache()
    yield version
    clear_model_cache()
