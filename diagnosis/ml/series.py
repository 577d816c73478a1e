"""Series (multi-frame) aggregation of per-frame predictions made in one batched pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from diagnosis.ml.artifact import ModelBundle
from diagnosis.ml.metrics import predict_labels
from diagnosis.ml.predict import Prediction, SeriesPrediction, normalised_entropy


def aggregate_series(
    model_bundle: ModelBundle, per_frame: Sequence[Prediction]
) -> SeriesPrediction:
    """Combine one series' per-frame predictions exactly as predict_series does (mean of the
    calibrated probabilities, the bundle's threshold), so a worker can score many files in a
    single forward pass and split the results afterwards."""
    if not per_frame:
        raise ValueError("a series needs at least one frame")
    stacked = np.stack([f.probabilities for f in per_frame])
    mean = stacked.mean(axis=0)
    k = int(predict_labels(mean[None], model_bundle.threshold)[0])
    return SeriesPrediction(
        class_names=model_bundle.class_names,
        probabilities=mean,
        predicted_index=k,
        predicted_class=model_bundle.class_names[k],
        confidence=float(mean[k]),
        uncertainty=normalised_entropy(mean),
        key_frame=int(stacked[:, k].argmax()),
        frames=list(per_frame),
    )
