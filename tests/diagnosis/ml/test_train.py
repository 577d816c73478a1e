"""A short real training run, cancellation through `progress`, and reproducibility."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from diagnosis.ml.data import ImageDataset
from diagnosis.ml.train import EpochReport, TrainResult, train
from tests.diagnosis.ml.configs import QUICK


def test_short_run_beats_chance_on_val_and_test(trained: TrainResult) -> None:
    assert trained.val.auc > 0.9
    assert trained.test.auc > 0.85
    assert trained.test.accuracy > 0.7
    assert trained.test.num_samples == 200
    assert 0.0 < trained.threshold < 1.0 and trained.temperature > 0


def test_selection_uses_validation_history_only(trained: TrainResult) -> None:
    history = trained.history
    assert [h.epoch for h in history] == [1, 2, 3]
    best = max(history, key=lambda h: (round(h.val_auc, 4), -h.val_loss))
    assert trained.best_epoch == best.epoch
    assert [h.is_best for h in history].count(True) >= 1
    assert all(h.elapsed_s > 0 and np.isfinite(h.train_loss) for h in history)
    # The stored test metrics are those of the selected weights, not of the last epoch.
    bundle = trained.to_bundle()
    state = bundle.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in trained.state_dict.items())


def test_metrics_are_json_ready(trained: TrainResult) -> None:
    metrics = json.loads(json.dumps(trained.metrics(), allow_nan=False))
    assert metrics["test"]["confusion_matrix"] and len(metrics["history"]) == 3
    assert metrics["config"]["arch"] == "small_cnn"


class Cancelled(Exception):
    pass


def test_progress_exception_stops_training(small_pneumonia: ImageDataset) -> None:
    seen: list[EpochReport] = []

    def cancel_after_first(report: EpochReport) -> None:
        seen.append(report)
        raise Cancelled

    tiny = small_pneumonia.subset(train=128, val=64, test=64)
    with pytest.raises(Cancelled):
        train(tiny, replace(QUICK, epochs=50), cancel_after_first)
    assert [r.epoch for r in seen] == [1]
    assert seen[0].epochs == 50


def test_same_seed_same_weights(small_pneumonia: ImageDataset) -> None:
    tiny = small_pneumonia.subset(train=128, val=64, test=64)
    config = replace(QUICK, epochs=1, mixup_alpha=0.2, hflip=True, ema_decay=0.9)
    a, b = train(tiny, config), train(tiny, config)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = train(tiny, replace(config, seed=1))
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


def test_multiclass_rgb_training() -> None:
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 3
        # Each class brightens a different colour channel: learnable in one epoch.
        images = rng.integers(0, 100, (n, 12, 12, 3), dtype=np.uint8)
        images[np.arange(n), :, :, labels] += 120
        return images, labels.astype(np.int64)

    (xa, ya), (xb, yb), (xc, yc) = split(192), split(48), split(48)
    data = ImageDataset(xa, ya, xb, yb, xc, yc, ("a", "b", "c"), 3, (12, 12))
    result = train(data, replace(QUICK, epochs=2))
    assert result.threshold is None
    assert set(result.test.per_class_recall) == {"a", "b", "c"}
    assert result.test.auc > 0.9


def test_command_line_trains_saves_and_predicts(tmp_path) -> None:
    from PIL import Image

    from diagnosis.ml.__main__ import main
    from diagnosis.ml.artifact import file_sha256, load_artifact
    from diagnosis.ml.predict import predict

    rng = np.random.default_rng(0)
    for k, name in enumerate(("cyst", "mass", "normal")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(30):
            pixels = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            pixels[:, 5 * k : 5 * k + 5] += 150  # a bright band whose position gives the class
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    out = tmp_path / "model.pt"
    assert (
        main(
            [
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--set",
                "epochs=3",
                "--set",
                "width=8",
                "--set",
                "batch_size=32",
            ]
        )
        == 0
    )
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    assert metrics["artifact_sha256"] == file_sha256(out)
    assert metrics["data"]["class_names"] == ["cyst", "mass", "normal"]
    bundle = load_artifact(out, expected_sha256=metrics["artifact_sha256"])
    probe = rng.integers(0, 60, (64, 64), dtype=np.uint8)
    probe[:, 40:60] += 150  # the "normal" band, drawn at four times the training size
    (pred,) = predict(bundle, [probe])
    assert pred.predicted_class == "normal" and pred.heatmap.shape == (64, 64)
