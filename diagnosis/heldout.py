"""The imaging family's validation hook: a version scored on its task's locked held-out set,
the test split of the task's data set (the split its training already held out: the .npz's
own test arrays, or the seeded stratified cut of an image folder).

The first validation of a task fixes the data set: the one that trained the version when it
is a file or folder data set, else the task's oldest checked one (clinicians' reviewed scans
grow with every review, so they never make a locked set). Its first N test images (in file
order, N = MEDAI_HELDOUT_MAX_ITEMS when locked) are the items; each id names the data set's
sha256, so a changed file is a different set.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from diagnosis.models import ImageDataset
from medai_site.registry.catalogue import HeldOutOutputs, HeldOutSet


def _dataset_for(version: Any, source: dict[str, Any] | None) -> ImageDataset:
    if source is not None:
        record = ImageDataset.objects.filter(pk=source.get("dataset_id")).first()
        if record is None:
            raise ValueError(
                f"The locked held-out set's data set ({source.get('name')}) no longer exists."
            )
        return record
    usable = ImageDataset.objects.filter(
        task=version.task, status=ImageDataset.Status.READY
    ).exclude(kind=ImageDataset.Kind.REVIEWS)
    trained_on = usable.filter(pk=(version.training_data or {}).get("dataset_id")).first()
    record = trained_on or usable.order_by("created_at", "pk").first()
    if record is None:
        raise ValueError(
            f"{version.task} has no checked image data set (file or folder) whose test split "
            "could be its held-out set."
        )
    return record


def imaging_validate(version: Any, source: dict[str, Any] | None) -> HeldOutOutputs:
    """Class probabilities of ``version`` on the task's held-out test images (AUROC)."""
    from diagnosis.artifacts import version_bundle
    from diagnosis.ml.predict import class_probabilities
    from diagnosis.training import load_dataset

    record = _dataset_for(version, source)
    limit = int((source or {}).get("limit") or settings.MEDAI_HELDOUT_MAX_ITEMS)
    data: Any = load_dataset(record)
    images, labels = data.split("test")
    images, labels = images[:limit], labels[:limit]
    bundle = version_bundle(version)
    if list(bundle.class_names) != list(data.class_names):
        raise ValueError(
            f"{version} predicts {', '.join(bundle.class_names)}; the held-out set is labelled "
            f"{', '.join(data.class_names)}."
        )
    probabilities = class_probabilities(bundle, images)
    tag = (record.sha256 or f"dataset-{record.pk}")[:16]
    held = HeldOutSet(
        name=f"{record.name} test split",
        item_ids=tuple(f"{tag}:test:{i}" for i in range(len(labels))),
        source={"dataset_id": record.pk, "name": record.name, "limit": limit},
    )
    binary = probabilities.shape[1] == 2
    return HeldOutOutputs(
        held_out=held,
        metric="auroc",
        targets={"labels": labels.astype(int).tolist()},
        scores=(probabilities[:, 1] if binary else probabilities).tolist(),
        notes=()
        if binary
        else ("Macro one-vs-rest AUROC over the classes present in the held-out set.",),
    )
