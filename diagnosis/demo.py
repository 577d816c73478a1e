"""Demo data for seed_demo: the shipped PneumoniaMNIST data set and its first training run."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from diagnosis.models import ImageDataset
from diagnosis.selectors import SHIPPED_TASK
from diagnosis.services import DatasetRejected, dataset_register, training_start
from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job

DEMO_DATASET = "PneumoniaMNIST"
DEMO_TASK = SHIPPED_TASK


def demo_imaging_ensure(*, user: Any, train: bool) -> str:
    """Register the shipped PneumoniaMNIST data set and, if no model of its task exists yet
    and ``train``, queue the first training run (put into service when it finishes).
    Idempotent; returns a line for the console ("" when nothing was done)."""
    from diagnosis.ml.train import TrainConfig
    from medai_site.registry.models import ModelVersion

    dataset = ImageDataset.objects.filter(name=DEMO_DATASET).first()
    busy = Job.objects.filter(
        kind__in=["diagnosis.training", "diagnosis.dataset_check"],
        status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
    )
    wanted = (
        train and not ModelVersion.objects.filter(task=DEMO_TASK).exists() and not busy.exists()
    )
    plan = {"config": TrainConfig().to_dict(), "activate": True}
    queued = (
        "queued the first training run of the pneumonia model (a few minutes on CPU; it goes "
        "into service when done)"
    )
    notes = []
    if dataset is None:
        try:
            dataset = dataset_register(
                name=DEMO_DATASET,
                task=DEMO_TASK,
                kind=ImageDataset.Kind.NPZ,
                path=str(settings.BASE_DIR / "data" / "medmnist" / "pneumoniamnist.npz"),
                class_names=["normal", "pneumonia"],
                created_by=user,
                description="Paediatric chest X-rays, 28x28 (MedMNIST v2).",
                attribution="MedMNIST v2 (CC BY 4.0): Yang et al., Scientific Data 10:41 (2023); "
                "Kermany et al., Cell 2018.",
                # The check job queues the run once the data set has passed.
                train=plan if wanted else None,
            )
        except DatasetRejected as exc:
            return f"the {DEMO_DATASET} data set was not registered: {exc.message}"
        notes.append(f"registered the {DEMO_DATASET} data set (a job checks it)")
        if wanted:
            notes.append(queued + " after the check")
    elif not dataset.contract:
        # Registered before data sets stated contracts: given the collection's default, so
        # the next training run and the training page state what its models read.
        from diagnosis.imaging.contract import contract_declare

        ImageDataset.objects.filter(pk=dataset.pk, contract={}).update(
            contract=contract_declare({}, names=[DEMO_DATASET])
        )
        notes.append(f"gave the {DEMO_DATASET} data set its input contract")
    if wanted and dataset.status == ImageDataset.Status.READY:
        training_start(dataset=dataset, config=plan["config"], activate=True, user=user)
        notes.append(queued)
    return "; ".join(notes)


def demo_imaging_seed(run: DemoRun) -> str:
    """seed_demo's imaging step: :func:`demo_imaging_ensure` for the demo model admin."""
    return demo_imaging_ensure(user=run.model_admin, train=run.train)
