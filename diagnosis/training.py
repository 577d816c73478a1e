"""Turning a registered data set into arrays the trainer reads, from where it may be read."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from diagnosis.models import ImageDataset as DatasetRecord
from diagnosis.models import Prediction, Review
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row

if TYPE_CHECKING:
    from diagnosis.imaging.dataset_archive import ArchiveLimits
    from diagnosis.ml.data import ImageDataset

# One message for every refused server path, whether or not it exists, so the form cannot be
# used to learn which paths exist on the server.
PATH_REFUSED = (
    "This path cannot be registered: give the absolute path of a .npz file or image folder "
    "inside a data-set folder this server is configured with (MEDAI_DATASET_ROOTS)."
)
PREVIEW_PER_CLASS = 4
PREVIEW_MAX_CLASSES = 12


class DatasetPathRefused(ValueError):
    """A server path outside the configured data-set roots (or inside MEDIA_ROOT)."""

    def __init__(self) -> None:
        super().__init__(PATH_REFUSED)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def dataset_path_confine(path: str) -> Path:
    """The resolved ``path`` if it lies inside one of MEDAI_DATASET_ROOTS and outside
    MEDIA_ROOT after following every symbolic link; DatasetPathRefused otherwise."""
    if not path or "\x00" in path or not os.path.isabs(path):
        raise DatasetPathRefused()
    try:
        resolved = Path(path).resolve(strict=False)
        media = Path(settings.MEDIA_ROOT).resolve(strict=False)
        roots = [Path(root).resolve(strict=False) for root in settings.MEDAI_DATASET_ROOTS]
    except (OSError, RuntimeError, ValueError):  # a link loop, an unreadable component
        raise DatasetPathRefused() from None
    if _inside(resolved, media) or not any(_inside(resolved, root) for root in roots):
        raise DatasetPathRefused()
    return resolved


def _confine_tree(folder: Path) -> None:
    """Refuse a folder in which a symbolic link leads outside the data-set roots (or into
    MEDIA_ROOT): the loader follows links to class folders and images."""
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(current) / name
            if entry.is_symlink():
                try:
                    dataset_path_confine(str(entry))
                except DatasetPathRefused:
                    raise ValueError(
                        f"{entry.relative_to(folder)} is a link to a place outside the "
                        "configured data-set folders."
                    ) from None


def archive_limits() -> ArchiveLimits:
    """The caps on uploaded and registered archives, from settings."""
    from diagnosis.imaging.dataset_archive import ArchiveLimits

    return ArchiveLimits(
        max_uncompressed_bytes=settings.MEDAI_DATASET_MAX_UNCOMPRESSED_BYTES,
        max_entries=settings.MEDAI_DATASET_MAX_ENTRIES,
        max_ratio=settings.MEDAI_DATASET_MAX_RATIO,
        max_pixels=settings.DIAGNOSIS_MAX_PIXELS,
    )


def dataset_location(record: DatasetRecord) -> Path:
    """Where the data set's file or folder is: under MEDIA_ROOT/datasets/ for uploads, else
    its server path, confined again (roots and links may have changed since registration)."""
    if record.uploaded:
        base = (Path(settings.MEDIA_ROOT) / "datasets").resolve()
        location = (base / Path(record.path).relative_to("datasets")).resolve()
        if not _inside(location, base):
            raise ValueError("The uploaded data set's files are not where MedAI keeps them.")
        return location
    return dataset_path_confine(record.path)


def load_dataset(record: DatasetRecord) -> object:
    """Load a registered data set as diagnosis.ml.data.ImageDataset (ValueError if unusable,
    OSError if its files cannot be read)."""
    from diagnosis.imaging.dataset_archive import ArchiveRejected, check_npz
    from diagnosis.ml.data import load_folder, load_npz

    if record.kind == DatasetRecord.Kind.REVIEWS:
        return reviewed_scans_dataset(record)
    location = dataset_location(record)
    if record.kind == DatasetRecord.Kind.NPZ:
        if not location.is_file():
            raise ValueError(f"no .npz file at {location}")
        try:
            # The headers first: no pickled object, no array bigger than the caps is loaded.
            check_npz(location, archive_limits())
        except ArchiveRejected as exc:
            raise ValueError(exc.message) from None
        return load_npz(location, class_names=record.class_names or None)
    if not location.is_dir():
        raise ValueError(f"no folder at {location}")
    if not record.uploaded:
        _confine_tree(location)
    return load_folder(location, max_pixels=settings.DIAGNOSIS_MAX_PIXELS)


def dataset_digest(record: DatasetRecord) -> str:
    """sha256 of a data set's .npz file ("" for folders and reviewed scans)."""
    if record.kind != DatasetRecord.Kind.NPZ:
        return ""
    digest = hashlib.sha256()
    with open(dataset_location(record), "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_preview(data: object) -> dict:
    """Per-split counts per class and a few training images of each class as small PNG data
    URLs, for the model admin to see what the data set holds."""
    from PIL import Image

    names = list(data.class_names)
    counts = {
        split: dict(
            zip(
                names, np.bincount(data.split(split)[1], minlength=len(names)).tolist(), strict=True
            )
        )
        for split in ("train", "val", "test")
    }
    images, labels = data.split("train")
    samples = []
    for index, name in enumerate(names[:PREVIEW_MAX_CLASSES]):
        urls = []
        for i in np.flatnonzero(labels == index)[:PREVIEW_PER_CLASS]:
            pixels = images[i][..., 0] if images.shape[-1] == 1 else images[i]
            image = Image.fromarray(pixels)
            image.thumbnail((96, 96))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
        samples.append({"class": name, "images": urls})
    return {"counts": counts, "samples": samples}


def reviewed_scans_dataset(record: DatasetRecord) -> ImageDataset:
    """Clinicians' verdicts as labelled data: each reviewed scan's key frame with the label
    the clinician gave, split 70/15/15 by scan (seeded), resized to the data set's shape.
    Scans found outside the model's scope never join its training data, even when a
    clinician scored and reviewed one anyway."""
    from diagnosis.ml.data import ImageDataset

    names = list(record.class_names)
    reviews = (
        Review.objects.filter(label__in=names, prediction__model_version__task=record.task)
        .exclude(prediction__scope=Prediction.Scope.OUT_OF_SCOPE)
        .select_related("prediction__scan")
        .order_by("pk")
    )
    height, width, channels = record.image_shape or (28, 28, 1)
    images, labels = [], []
    for review in reviews:
        scan = review.prediction.scan
        with scan.display.open("rb") as handle, np.load(handle) as npz:
            frame = npz[f"model_{review.prediction.key_frame}"]
        images.append(_fit(frame, (height, width), channels))
        labels.append(names.index(review.label))
    if len(set(labels)) < 2 or len(labels) < 6:
        raise ValueError(
            f"only {len(labels)} reviewed scans with {len(set(labels))} different labels; "
            "at least 6 scans and 2 labels are needed"
        )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(labels))
    x, y = np.stack(images)[order], np.asarray(labels, dtype=np.int64)[order]
    cut1, cut2 = int(0.7 * len(y)), int(0.85 * len(y))
    return ImageDataset(
        train_images=x[:cut1],
        train_labels=y[:cut1],
        val_images=x[cut1:cut2],
        val_labels=y[cut1:cut2],
        test_images=x[cut2:],
        test_labels=y[cut2:],
        class_names=tuple(names),
        channels=channels,
        image_size=(height, width),
        source=f"reviews:{record.task}",
    )


def _fit(frame: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Resize a uint8 frame to the data set's (H, W, C) shape."""
    from PIL import Image

    image = Image.fromarray(frame).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return array[..., None] if channels == 1 else array


@dataclass
class TrainingInputs:
    """What a training job trains on: the data set's row and arrays, the checked settings
    and the input contract that travels with the weights."""

    dataset: DatasetRecord
    data: Any
    config: Any
    contract: Any


def training_inputs(*, job: Job, progress: Progress) -> TrainingInputs:
    """Load a checked data set and validate the training settings and its input contract;
    JobError (a message for the model admin) when any of them is unusable."""
    from diagnosis.imaging.contract import contract_for_training
    from diagnosis.ml.train import TrainConfig

    dataset = job_row(
        DatasetRecord.objects, job=job, param="dataset_id", missing="The data set no longer exists."
    )
    config = job.params.get("config", {})
    if dataset.status != DatasetRecord.Status.READY:
        raise JobError(f"The data set {dataset.name} has not passed its check.")
    progress.update(2, f"Loading {dataset.name}", force=True)
    try:
        data: Any = load_dataset(dataset)
    except (OSError, ValueError) as exc:
        raise JobError(f"The data set {dataset.name} could not be read: {exc}") from None
    try:
        train_config = TrainConfig.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise JobError(f"The training settings are not valid: {exc}") from None
    # The input contract travels with the weights (and is recorded on the version), so any
    # worker that loads the artifact applies the same metadata gate: the one the model admin
    # stated for the data set, else the default its file name points to.
    try:
        contract = contract_for_training(
            dataset.contract,
            source=dataset.path or dataset.name,
            channels=data.channels,
            image_size=data.image_size,
        )
    except ValueError as exc:
        raise JobError(f"The data set {dataset.name}'s input contract: {exc}.") from None
    return TrainingInputs(dataset=dataset, data=data, config=train_config, contract=contract)


def classifier_train(
    *,
    data: Any,
    config: Any,
    contract: Any,
    on_epoch: Callable[[Any], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    device: Any = "cpu",
) -> tuple[bytes, dict[str, Any], Any]:
    """Train a classifier on ``data`` (diagnosis.ml) with ``config``, its input ``contract``
    travelling with the weights: (the artifact bytes the registry stores, its metrics, the
    TrainResult). The training job and the shipped demo model both train through here."""
    from diagnosis.ml.artifact import artifact_bytes
    from diagnosis.ml.train import train

    result = train(data, config, on_epoch, device=device)
    if on_stage is not None:
        on_stage("Evaluating on the test split and saving the model")
    bundle = result.to_bundle()
    bundle.contract = contract.to_dict()
    content = artifact_bytes(bundle)
    return content, {**training_metrics(result), "contract": bundle.contract}, result


def training_metrics(result: Any) -> dict[str, Any]:
    """Headline test metrics first (they head the registry's lists and cards), then all of
    the evaluation, the per-epoch history and the configuration."""
    headline = {f"test_{k}": v for k, v in result.test.summary().items() if v is not None}
    return {**headline, "val_auc": result.val.auc, **result.metrics()}
