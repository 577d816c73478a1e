"""Turning a registered data set into arrays the trainer reads."""

from __future__ import annotations

import numpy as np

from diagnosis.models import ImageDataset as DatasetRecord
from diagnosis.models import Review


def load_dataset(record: DatasetRecord) -> object:
    """Load a registered data set as diagnosis.ml.data.ImageDataset (ValueError if unusable)."""
    from diagnosis.ml.data import load_folder, load_npz

    if record.kind == DatasetRecord.Kind.NPZ:
        return load_npz(
            record.file.path if record.file else record.path, class_names=record.class_names or None
        )
    if record.kind == DatasetRecord.Kind.FOLDER:
        return load_folder(record.path)
    return reviewed_scans_dataset(record)


def reviewed_scans_dataset(record: DatasetRecord) -> object:
    """Clinicians' verdicts as labelled data: each reviewed scan's key frame with the label
    the clinician gave, split 70/15/15 by scan (seeded), resized to the data set's shape."""
    from diagnosis.ml.data import ImageDataset

    names = list(record.class_names)
    reviews = (
        Review.objects.filter(label__in=names, prediction__model_version__task=record.task)
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
