"""Batched prediction, calibrated probabilities, Grad-CAM heat-maps and series aggregation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from diagnosis.ml.data import ImageDataset
from diagnosis.ml.metrics import roc_auc
from diagnosis.ml.predict import predict, predict_series
from diagnosis.ml.train import TrainResult


def _count_forwards(model: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    model.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    return calls


def test_batch_of_test_images(trained: TrainResult, pneumonia: ImageDataset) -> None:
    bundle = trained.to_bundle()
    calls = _count_forwards(bundle.model)
    images = list(pneumonia.test_images[:, :, :, 0])
    preds = predict(bundle, images, tta=False, batch_size=1024)
    assert calls == [624]  # the whole batch in a single forward pass
    predict(bundle, images, tta=False)
    assert calls[1:] == [256, 256, 112]  # the default batch size bounds memory
    assert len(preds) == 624
    p = np.stack([pr.probabilities for pr in preds])
    assert np.allclose(p.sum(axis=1), 1.0)
    assert roc_auc(pneumonia.test_labels, p[:, 1]) > 0.85
    for pr in preds[:50]:
        assert pr.heatmap.shape == (28, 28) and pr.heatmap.dtype == np.float32
        assert 0.0 <= pr.heatmap.min() and pr.heatmap.max() <= 1.0
        assert pr.predicted_class == (
            "pneumonia" if pr.probabilities[1] >= bundle.threshold else "normal"
        )
        assert pr.tta_std == 0.0 and pr.uncertainty == pytest.approx(pr.entropy)
    assert any(pr.heatmap.max() == pytest.approx(1.0) for pr in preds)


def test_mixed_sizes_and_colour_with_tta(trained: TrainResult, pneumonia: ImageDataset) -> None:
    bundle = trained.to_bundle()
    base = pneumonia.test_images[:3, :, :, 0]
    big_rgb = np.asarray(Image.fromarray(base[0]).resize((300, 240)).convert("RGB"))
    as_float = base[1].astype(np.float64) / 255.0
    images = [big_rgb, as_float, base[2]]
    preds = predict(bundle, images)
    assert [pr.heatmap.shape for pr in preds] == [(240, 300), (28, 28), (28, 28)]
    for pr in preds:
        assert 0.0 <= pr.heatmap.min() and pr.heatmap.max() <= 1.0
        assert 0.0 <= pr.entropy <= 1.0 and 0.0 <= pr.uncertainty <= 1.0 and pr.tta_std >= 0.0
        assert sum(pr.to_dict()["probabilities"].values()) == pytest.approx(1.0)
    # Predictions of one image do not depend on what else is in the batch.
    alone = predict(bundle, [base[2]])[0]
    assert np.allclose(alone.probabilities, preds[2].probabilities, atol=1e-6)
    assert np.allclose(alone.heatmap, preds[2].heatmap, atol=1e-5)


def test_series_aggregates_frames(trained: TrainResult, pneumonia: ImageDataset) -> None:
    bundle = trained.to_bundle()
    frames = pneumonia.test_images[:5, :, :, 0]  # (F, H, W)
    series = predict_series(bundle, frames, tta=False)
    singles = predict(bundle, list(frames), tta=False)
    mean = np.mean([s.probabilities for s in singles], axis=0)
    assert np.allclose(series.probabilities, mean)
    assert series.predicted_class == ("pneumonia" if mean[1] >= bundle.threshold else "normal")
    assert len(series.heatmaps) == 5 and all(h.shape == (28, 28) for h in series.heatmaps)
    assert series.frames[series.key_frame].probabilities[series.predicted_index] == pytest.approx(
        max(s.probabilities[series.predicted_index] for s in singles)
    )
    assert len(series.to_dict()["frames"]) == 5
    # A worker batches several series in one pass and splits afterwards: same answer.
    from diagnosis.ml.series import aggregate_series

    split = aggregate_series(bundle, singles)
    assert np.array_equal(split.probabilities, series.probabilities)
    assert split.key_frame == series.key_frame
    with pytest.raises(ValueError):
        predict_series(bundle, [])


def test_tta_trained_model_is_scored_on_averaged_views(
    trained: TrainResult, pneumonia: ImageDataset
) -> None:
    from diagnosis.ml.data import TTA_VIEWS, prepare_images, tta_views

    bundle = trained.to_bundle()
    bundle.config["tta"] = True  # as if trained with TrainConfig(tta=True)
    images = list(pneumonia.test_images[:8, :, :, 0])
    averaged = predict(bundle, images)
    plain = predict(bundle, images, tta=False)
    x = prepare_images(images, input_size=(28, 28), channels=1, normalisation=bundle.normalisation)
    with torch.no_grad():
        logits = bundle.model(tta_views(x)).view(len(TTA_VIEWS), 8, 2).mean(dim=0)
    expected = torch.softmax(logits.double() / bundle.temperature, dim=1).numpy()
    assert np.allclose([p.probabilities for p in averaged], expected, atol=1e-6)
    assert not np.allclose([p.probabilities for p in plain], expected, atol=1e-6)
    assert all(p.tta_std > 0 for p in averaged)
