"""Demo data for seed_demo: the shipped PneumoniaMNIST data set and the pre-trained pneumonia
classifier shipped with it (data/models/diagnosis-pneumonia/), in service from the first start;
a first training run is queued only when that shipped model cannot be used."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType

from diagnosis.models import ImageDataset
from diagnosis.selectors import SHIPPED_TASK
from diagnosis.services import DatasetRejected, dataset_register, training_start
from diagnosis.shipped import DEMO_CLASSES, DEMO_DATASET, SLUG, demo_dataset_path
from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job

DEMO_TASK = SHIPPED_TASK


def _check_now(dataset: ImageDataset) -> None:
    """Run the data set's queued check in this process, so it is ready (and can serve as the
    held-out set of the shipped model's validation) before any worker starts."""
    from medai_site.jobs.runtime import job_run_now

    queued = Job.objects.filter(
        kind="diagnosis.dataset_check",
        status=Job.Status.QUEUED,
        target_type=ContentType.objects.get_for_model(ImageDataset),
        target_id=dataset.pk,
    )
    for job_id in queued.values_list("pk", flat=True):
        job_run_now(job_id=job_id)
    dataset.refresh_from_db()


def demo_imaging_ensure(*, user: Any, train: bool) -> str:
    """Register the shipped PneumoniaMNIST data set (checked here and now) and, while its task
    has never had a model in service, put the shipped pre-trained classifier into service
    (bootstrap, validated here and now). When that shipped model is missing or refused and
    ``train``, queue a first training run instead (in service when it finishes). Idempotent;
    returns a line for the console ("" when nothing was done)."""
    from diagnosis.ml.train import TrainConfig
    from medai_site.registry.models import ModelVersion
    from medai_site.registry.services import model_task_bootstrappable
    from medai_site.registry.shipped import ShippedArtifactError, shipped_model_install

    dataset = ImageDataset.objects.filter(name=DEMO_DATASET).first()
    notes = []
    if dataset is None:
        try:
            dataset = dataset_register(
                name=DEMO_DATASET,
                task=DEMO_TASK,
                kind=ImageDataset.Kind.NPZ,
                path=str(demo_dataset_path()),
                class_names=list(DEMO_CLASSES),
                created_by=user,
                description="Paediatric chest X-rays, 28x28 (MedMNIST v2).",
                attribution="MedMNIST v2 (CC BY 4.0): Yang et al., Scientific Data 10:41 (2023); "
                "Kermany et al., Cell 2018.",
            )
        except DatasetRejected as exc:
            return f"the {DEMO_DATASET} data set was not registered: {exc.message}"
        _check_now(dataset)
        notes.append(f"registered the {DEMO_DATASET} data set ({dataset.get_status_display()})")
    elif not dataset.contract:
        # Registered before data sets stated contracts: given the collection's default, so
        # the next training run and the training page state what its models read.
        from diagnosis.imaging.contract import contract_declare

        ImageDataset.objects.filter(pk=dataset.pk, contract={}).update(
            contract=contract_declare({}, names=[DEMO_DATASET])
        )
        notes.append(f"gave the {DEMO_DATASET} data set its input contract")
    if model_task_bootstrappable(task=DEMO_TASK):
        try:
            installed = shipped_model_install(
                slug=SLUG, user=user, training_data={"dataset_id": dataset.pk}
            )
            notes.append(installed.note("pneumonia classifier"))
        except ShippedArtifactError as exc:
            notes.append(str(exc))
            busy = Job.objects.filter(
                kind__in=["diagnosis.training", "diagnosis.dataset_check"],
                status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
            )
            if (
                train
                and dataset.status == ImageDataset.Status.READY
                and not ModelVersion.objects.filter(task=DEMO_TASK).exists()
                and not busy.exists()
            ):
                training_start(
                    dataset=dataset, config=TrainConfig().to_dict(), activate=True, user=user
                )
                notes.append(
                    "queued a first training run of the pneumonia model instead (a few "
                    "minutes on CPU; it goes into service when done)"
                )
    return "; ".join(n for n in notes if n)


def demo_imaging_seed(run: DemoRun) -> str:
    """seed_demo's imaging step: :func:`demo_imaging_ensure` for the demo model admin."""
    return demo_imaging_ensure(user=run.model_admin, train=run.train)
