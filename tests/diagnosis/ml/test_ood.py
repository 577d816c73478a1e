"""The learned out-of-distribution detector: fitted at training time, stored in the artifact,
and applied per image by prediction and by the product's scan assessment."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from diagnosis.applicability import NO_DETECTOR, scan_assess, scan_prepare
from diagnosis.imaging.contract import MEDMNIST_CONTRACTS
from diagnosis.ml.artifact import artifact_bytes, load_artifact, save_artifact
from diagnosis.ml.data import ImageDataset
from diagnosis.ml.ood import OodDetector, parse_method
from diagnosis.ml.predict import aggregate_series, predict
from diagnosis.ml.train import TrainResult

CHEST = MEDMNIST_CONTRACTS["pneumoniamnist"]
CAPS = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 50_000_000}


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _text_screenshot() -> np.ndarray:
    canvas = Image.new("L", (256, 256), color=255)
    draw = ImageDraw.Draw(canvas)
    for line in range(12):
        draw.text((8, 8 + 20 * line), "Findings: no acute cardiopulmonary process.", fill=0)
    return np.asarray(canvas)


def test_training_fits_a_detector_and_records_its_rates(trained: TrainResult) -> None:
    detector = trained.ood
    assert detector is not None
    metrics = trained.metrics()["ood"]
    assert metrics["method"] == detector.method
    assert metrics["threshold"] == pytest.approx(detector.threshold)
    # The threshold is the validation split's 99th percentile, so about 1 % of it is flagged;
    # the test split's rate is measured, not assumed.
    assert metrics["val_flag_rate"] <= 0.02
    assert 0.0 <= metrics["test_flag_rate"] <= 0.1
    assert metrics["test_images"] == 200


def test_a_png_far_from_the_training_data_is_out_of_scope(trained: TrainResult) -> None:
    bundle = trained.to_bundle()
    item = scan_prepare(_png(_text_screenshot()), name="report.png", contract=CHEST, **CAPS)
    # A grey 256x256 PNG carries no metadata: the gate has nothing to refuse.
    assert item.gate.fits
    (result,) = scan_assess([item], bundle=bundle)
    assert result.outcome == "out_of_scope"
    assert result.probabilities is None
    assert result.ood_score is not None and result.ood_score > result.ood_threshold
    assert "outside this model's scope" in result.message


def test_test_split_images_are_mostly_in_scope(
    trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    results = predict(trained.to_bundle(), list(small_pneumonia.test_images[:100]), tta=False)
    in_scope = [p.in_scope for p in results]
    assert all(s is not None for s in in_scope)
    assert sum(1 for s in in_scope if not s) <= 10
    assert all(p.ood_threshold == trained.ood.threshold for p in results)


def test_a_series_is_out_of_scope_when_one_frame_is(
    trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    bundle = trained.to_bundle()
    frames = predict(bundle, [small_pneumonia.test_images[0, :, :, 0], _text_screenshot()])
    assert frames[0].in_scope and not frames[1].in_scope
    series = aggregate_series(bundle, frames)
    assert series.in_scope is False
    assert series.ood_score == pytest.approx(frames[1].ood_score)
    assert series.to_dict()["in_scope"] is False


def test_detector_round_trips_through_the_artifact(tmp_path: Path, trained: TrainResult) -> None:
    bundle = trained.to_bundle()
    path = tmp_path / "model.pt"
    save_artifact(bundle, path)
    loaded = load_artifact(path)
    assert isinstance(loaded.ood, OodDetector)
    assert loaded.ood.method == bundle.ood.method
    assert loaded.ood.threshold == bundle.ood.threshold
    assert loaded.ood.rates == bundle.ood.rates
    images = [np.full((28, 28), 128, np.uint8), _text_screenshot()]
    before = [p.ood_score for p in predict(bundle, images, tta=False)]
    after = [p.ood_score for p in predict(loaded, images, tta=False)]
    assert after == pytest.approx(before, rel=1e-6)
    # Plain tensors and lists only: the safe loader reads it.
    payload = torch.load(path, weights_only=True)
    assert payload["ood"]["method"] == bundle.ood.method
    # Same content, same bytes (the registry compares sha256).
    assert artifact_bytes(loaded) == artifact_bytes(bundle)


def test_an_artifact_without_a_detector_loads_and_says_so(
    tmp_path: Path, trained: TrainResult
) -> None:
    payload = trained.to_bundle().to_payload()
    del payload["ood"]  # as every artifact written before detectors existed
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    bundle = load_artifact(path)
    assert bundle.ood is None
    (prediction,) = predict(bundle, [_text_screenshot()], tta=False)
    assert prediction.in_scope is None and prediction.ood_score is None
    item = scan_prepare(_png(_text_screenshot()), name="x.png", contract=CHEST, **CAPS)
    (result,) = scan_assess([item], bundle=bundle)
    assert result.outcome == "scored"
    assert result.message == NO_DETECTOR


def test_a_malformed_detector_is_refused(tmp_path: Path, trained: TrainResult) -> None:
    payload = trained.to_bundle().to_payload()
    payload["ood"]["method"] = "crystal-ball"
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="OOD detector is malformed"):
        load_artifact(path)


def test_unknown_methods_are_refused() -> None:
    assert parse_method("maha-layers+knn") == ("maha-layers", "knn")
    with pytest.raises(ValueError, match="unknown OOD method"):
        parse_method("maha+magic")
