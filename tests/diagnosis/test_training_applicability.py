"""A training job records the model's input contract and its OOD detector's measured rates on
the model version and in the artifact, so every worker applies the same checks."""

from __future__ import annotations

import numpy as np
import pytest

from diagnosis.ml.artifact import load_artifact
from diagnosis.services import dataset_register, training_start
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion
from tests.diagnosis.model_versions import PNEUMONIA_NPZ

pytestmark = pytest.mark.django_db


def test_training_records_contract_and_detector_rates(users, tmp_path, settings, run_job) -> None:
    from diagnosis.ml.data import load_npz

    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    small = load_npz(PNEUMONIA_NPZ).subset(train=300, val=100, test=100, seed=1)
    # Named like the MedMNIST file, so the collection's default contract applies.
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(
        path,
        **{
            f"{s}_{k}": getattr(small, f"{s}_{k}")
            for s in ("train", "val", "test")
            for k in ("images", "labels")
        },
    )
    dataset = dataset_register(
        name="chest",
        task="diagnosis.chest",
        kind="npz",
        path=str(path),
        class_names=["normal", "pneumonia"],
        created_by=users.model_admin,
    )
    check = Job.objects.get(kind="diagnosis.dataset_check", target_id=dataset.pk)
    run_job(check)
    dataset.refresh_from_db()
    assert dataset.status == "ready", dataset.message
    job = training_start(
        dataset=dataset,
        config={"epochs": 1, "width": 8, "batch_size": 64},
        activate=False,
        user=users.model_admin,
    )
    run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(task="diagnosis.chest")
    contract = version.metrics["contract"]
    assert contract["modalities"] == ["CR", "DX"] and contract["body_parts"] == ["CHEST"]
    ood = version.metrics["ood"]
    assert ood["test_images"] == len(small.test_labels) and 0.0 <= ood["test_flag_rate"] <= 1.0
    with version.artifact.open("rb") as handle:
        bundle = load_artifact(handle.read())
    assert bundle.contract == contract
    assert bundle.ood is not None and bundle.ood.threshold == pytest.approx(ood["threshold"])
