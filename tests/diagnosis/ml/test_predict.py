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


def test_without_heatmaps_the_answer_is_the_same(
    trained: TrainResult, pneumonia: ImageDataset
) -> None:
    """Shadow scoring keeps only the answer: no Grad-CAM backward pass, same probabilities."""
    bundle = trained.to_bundle()
    images = list(pneumonia.test_images[:20, :, :, 0])
    full = predict(bundle, images)
    bare = predict(bundle, images, heatmaps=False)
    for a, b in zip(full, bare, strict=True):
        assert b.heatmap.shape == (0, 0)
        assert np.allclose(a.probabilities, b.probabilities, atol=1e-6)
        assert (a.predicted_class, a.ood_score) == (b.predicted_class, b.ood_score)
        assert a.tta_std == pytest.approx(b.tta_std, abs=1e-6)


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


def _reference(bundle, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, Grad-CAM maps and OOD scores computed the plain way, image by image
    (TTA views and Grad-CAM each by their own full forward pass, autograd through the whole
    model), to check the batched single-pass path against."""
    from diagnosis.ml.data import prepare_images, tta_views
    from diagnosis.ml.metrics import predict_labels
    from diagnosis.ml.ood import extract_features, pixel_stats

    model = bundle.model.eval()
    probs, cams, scores = [], [], []
    for image in images:
        x = prepare_images(
            [image],
            input_size=bundle.input_size,
            channels=bundle.in_channels,
            normalisation=bundle.normalisation,
        )
        with torch.no_grad():
            logits = model(tta_views(x)).mean(dim=0, keepdim=True)
        p = torch.softmax(logits.double() / bundle.temperature, dim=1).numpy()
        k = int(predict_labels(p, bundle.threshold)[0])
        acts: list[torch.Tensor] = []
        hook = model.cam_layer.register_forward_hook(
            lambda _m, _i, out, acts=acts: acts.append(out)
        )
        try:
            (grads,) = torch.autograd.grad(model(x)[0, k], acts[0])
        finally:
            hook.remove()
        cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts[0]).sum(dim=1))
        cam = torch.nn.functional.interpolate(
            cam[None], size=image.shape[:2], mode="bilinear", align_corners=False
        )[0, 0]
        feats, plain = extract_features(model, x)
        probs.append(p[0])
        cams.append((cam / cam.max()).detach().numpy())
        scores.append(bundle.ood.score(feats, plain, pixel_stats(x))[0])
    return np.stack(probs), np.stack(cams), np.asarray(scores)


def test_batched_inference_equals_per_scan(trained: TrainResult, pneumonia: ImageDataset) -> None:
    """The worker's batched single pass (TTA views, Grad-CAM of the predicted class and the
    OOD score from one forward) gives each scan what scoring it alone, the plain way, gives."""
    bundle = trained.to_bundle()
    assert bundle.config["tta"] and bundle.ood is not None
    images = list(pneumonia.test_images[:70, :, :, 0])
    calls = _count_forwards(bundle.model)
    batched = predict(bundle, images, batch_size=64)
    assert calls == [64 * 7, 6 * 7]  # one pass per batch over the images and their 7 views
    alone = [predict(bundle, [image])[0] for image in images[:8]]
    for one, many in zip(alone, batched, strict=False):
        assert np.allclose(one.probabilities, many.probabilities, atol=1e-6)
        assert np.allclose(one.heatmap, many.heatmap, atol=1e-5)
        assert one.ood_score == pytest.approx(many.ood_score, rel=1e-6, abs=1e-6)
    probs, cams, scores = _reference(bundle, images[:12])
    got = batched[:12]
    assert np.allclose(np.stack([p.probabilities for p in got]), probs, atol=1e-6)
    assert np.allclose(np.stack([p.heatmap for p in got]), cams, atol=1e-5)
    assert np.allclose([p.ood_score for p in got], scores, rtol=1e-5, atol=1e-5)
    # The heat-maps differ between scans: the test would notice maps shared across a batch.
    assert not np.allclose(got[0].heatmap, got[1].heatmap)
