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
from diagnosis.ml.data import ImageDataset, normalise
from diagnosis.ml.ood import (
    CORRUPTIONS,
    DEFAULT_METHOD,
    DEFAULT_QUANTILE,
    DEFAULT_SCALING,
    OodDetector,
    corrupt_images,
    fit_detector,
    parse_method,
)
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
    # The threshold is the validation split's 99.5th percentile, so about .5 % of it is
    # flagged; the test split's rate is measured, not assumed.
    assert metrics["quantile"] == 0.995 and metrics["method"] == "maha-layers+knn+corruption+pixels"
    assert metrics["val_flag_rate"] <= 0.01
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


def _raw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def _fit(trained: TrainResult, data: ImageDataset, **options: object) -> OodDetector:
    bundle = trained.to_bundle()

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return normalise(batch.float().div_(255.0), bundle.normalisation)

    return fit_detector(
        bundle.model,
        _raw(data.train_images),
        data.train_labels,
        _raw(data.val_images),
        num_classes=2,
        prepare=prepare,
        **options,  # type: ignore[arg-type]
    )


def _flag_rate(trained: TrainResult, detector: OodDetector, images: list[np.ndarray]) -> float:
    bundle = trained.to_bundle()
    bundle.ood = detector
    return float(np.mean([p.in_scope is False for p in predict(bundle, images, tta=False)]))


def test_corrupt_images_makes_each_corruption() -> None:
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (200, 1, 12, 12), np.uint8))
    out, kinds = corrupt_images(x, seed=3)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert set(kinds) == set(CORRUPTIONS)
    for i, kind in enumerate(kinds):
        if kind.startswith("rot"):
            expected = torch.rot90(x[i], int(kind[3:]) // 90, dims=(1, 2))
            assert torch.equal(out[i], expected)
        elif kind == "invert":
            assert torch.equal(out[i], 255 - x[i])
        elif kind == "lowcontrast":
            assert out[i].float().std() < 0.25 * x[i].float().std()
            assert abs(out[i].float().mean() - x[i].float().mean()) < 1.0
        else:
            assert not torch.equal(out[i], x[i])  # a part of the image, enlarged
    again, _ = corrupt_images(x, seed=3)
    assert torch.equal(again, out)


def test_the_product_default_flags_rotated_cropped_and_inverted_films(
    trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    # The distance scores alone pass most rotated and cropped chest films (they are chest
    # films at the level of texture); the default detector must not.
    films = small_pneumonia.test_images[:60, :, :, 0]
    rotated = [np.rot90(f, k=1 + i % 3).copy() for i, f in enumerate(films)]
    quarter = [np.kron(f[:14, :14], np.ones((2, 2), np.uint8)) for f in films]
    inverted = [255 - f for f in films]
    default = _fit(trained, small_pneumonia)
    assert default.method == DEFAULT_METHOD and "corruption" in default.components
    assert default.quantile == DEFAULT_QUANTILE and default.scaling == DEFAULT_SCALING
    distance_only = _fit(trained, small_pneumonia, method="maha-layers+knn", scaling="std")
    rates = {
        name: (_flag_rate(trained, default, s), _flag_rate(trained, distance_only, s))
        for name, s in (("rotated", rotated), ("cropped", quarter), ("inverted", inverted))
    }
    # This fixture is a 3-epoch, width-16 model whose exact rates move with the CPU's
    # floating-point paths (cropped: .8+ on one machine, .67 on an AMD EPYC); the shipped model's
    # rates (rotated .92, cropped .93, inverted .97) are in bench/diagnosis_ml_notes.md. What
    # holds on every machine: most of each kind is flagged, far more than by distance alone.
    assert all(new >= 0.6 and new >= old + 0.3 for new, old in rates.values()), rates
    assert sum(new for new, _ in rates.values()) > sum(old for _, old in rates.values()), rates
    # ... while the test split's own films stay in scope.
    assert _flag_rate(trained, default, list(films)) <= 0.05


def test_the_threshold_can_come_from_a_held_out_part_of_validation(
    trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    detector = _fit(trained, small_pneumonia, holdout=0.5, quantile=0.95)
    assert detector.rates["val_holdout_images"] == 100
    # The threshold is the held-out half's 95th percentile: about 5 % of that half lies above.
    assert 0.0 < detector.rates["val_holdout_flag_rate"] <= 0.05 + 1 / 100
    with pytest.raises(ValueError, match="holdout"):
        _fit(trained, small_pneumonia, holdout=1.0)


def test_an_older_detector_without_head_or_scaling_loads_unchanged(
    tmp_path: Path, trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    bundle = trained.to_bundle()
    bundle.ood = _fit(trained, small_pneumonia, method="maha-layers+knn", scaling="std")
    payload = bundle.to_payload()
    # Exactly the keys detectors had before heads and scalings existed.
    assert "head" not in payload["ood"] and "scaling" not in payload["ood"]
    save_artifact(bundle, tmp_path / "old.pt")
    loaded = load_artifact(tmp_path / "old.pt")
    assert loaded.ood.head is None and loaded.ood.scaling == "std"
    images = list(small_pneumonia.test_images[:20, :, :, 0]) + [_text_screenshot()]
    before = [p.ood_score for p in predict(bundle, images, tta=False)]
    after = [p.ood_score for p in predict(loaded, images, tta=False)]
    # The kNN bank is stored as float32: scores agree to well under the threshold's precision.
    assert after == pytest.approx(before, abs=1e-4)


def test_a_corruption_detector_round_trips_and_needs_its_head(
    tmp_path: Path, trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    bundle = trained.to_bundle()
    bundle.ood = _fit(trained, small_pneumonia, method="maha-layers+corruption", scaling="tail")
    save_artifact(bundle, tmp_path / "new.pt")
    loaded = load_artifact(tmp_path / "new.pt")
    assert loaded.ood.scaling == "tail" and loaded.ood.head is not None
    rotated = [np.rot90(f).copy() for f in small_pneumonia.test_images[:10, :, :, 0]]
    before = [p.ood_score for p in predict(bundle, rotated, tta=False)]
    assert [p.ood_score for p in predict(loaded, rotated, tta=False)] == pytest.approx(before)
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    del payload["ood"]["head"]
    torch.save(payload, tmp_path / "headless.pt")
    with pytest.raises(ValueError, match="OOD detector is malformed"):
        load_artifact(tmp_path / "headless.pt")


def _faint_noise(i: int) -> np.ndarray:
    """Uniform noise of 256 x 256: averaged down to the model's input it is a faint,
    noise-textured grey frame, whose features land near the films' (no chest, no contrast)."""
    return np.random.default_rng(i).integers(0, 256, (256, 256), dtype=np.uint8)


def test_faint_noise_textured_frames_are_caught_by_their_pixel_statistics(
    tmp_path: Path, trained: TrainResult, small_pneumonia: ImageDataset
) -> None:
    noise = [_faint_noise(i) for i in range(30)]
    films = list(small_pneumonia.test_images[:60, :, :, 0])
    default = _fit(trained, small_pneumonia)
    assert "pixels" in default.components
    # The pixel statistics alone separate them (with the 30-epoch product model the feature
    # components flag only 41 % of such frames: bench/diagnosis_ml_notes.md).
    alone = _fit(trained, small_pneumonia, method="pixels")
    assert _flag_rate(trained, alone, noise) >= 0.95 and _flag_rate(trained, alone, films) <= 0.05
    assert _flag_rate(trained, default, noise) >= 0.95
    assert _flag_rate(trained, default, films) <= 0.05
    # Stored with the artifact; a detector missing its statistics is refused.
    bundle = trained.to_bundle()
    bundle.ood = default
    save_artifact(bundle, tmp_path / "pixels.pt")
    loaded = load_artifact(tmp_path / "pixels.pt")
    before = [p.ood_score for p in predict(bundle, noise[:5], tta=False)]
    assert [p.ood_score for p in predict(loaded, noise[:5], tta=False)] == pytest.approx(before)
    payload = torch.load(tmp_path / "pixels.pt", weights_only=True)
    del payload["ood"]["pixel_means"]
    torch.save(payload, tmp_path / "no-stats.pt")
    with pytest.raises(ValueError, match="OOD detector is malformed"):
        load_artifact(tmp_path / "no-stats.pt")
