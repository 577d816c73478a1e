"""Artifact files: identical predictions after a round trip, stable sha256, safe loading."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from diagnosis.ml.artifact import artifact_bytes, file_sha256, load_artifact, save_artifact
from diagnosis.ml.data import ImageDataset
from diagnosis.ml.predict import predict
from diagnosis.ml.train import TrainResult


def test_round_trip_gives_identical_predictions(
    tmp_path: Path, trained: TrainResult, pneumonia: ImageDataset
) -> None:
    bundle = trained.to_bundle()
    sha = save_artifact(bundle, tmp_path / "model.pt")
    assert sha == file_sha256(tmp_path / "model.pt") and len(sha) == 64
    loaded = load_artifact(tmp_path / "model.pt", expected_sha256=sha)
    assert loaded.sha256 == sha
    assert loaded.class_names == ("normal", "pneumonia")
    assert loaded.threshold == trained.threshold and loaded.temperature == trained.temperature
    assert loaded.normalisation == trained.normalisation
    images = list(pneumonia.test_images[:20, :, :, 0])
    before, after = predict(bundle, images), predict(loaded, images)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a.probabilities, b.probabilities)
        assert np.array_equal(a.heatmap, b.heatmap)
        assert a.predicted_class == b.predicted_class


def test_sha256_is_stable(tmp_path: Path, trained: TrainResult) -> None:
    first = save_artifact(trained.to_bundle(), tmp_path / "a.pt")
    second = save_artifact(trained.to_bundle(), tmp_path / "other-name.pt")
    resaved = save_artifact(load_artifact(tmp_path / "a.pt"), tmp_path / "c.pt")
    assert first == second == resaved
    # The registry's loader hands over bytes rather than a path.
    assert load_artifact(artifact_bytes(trained.to_bundle()), expected_sha256=first).sha256 == first


def test_wrong_sha_and_foreign_files_are_refused(tmp_path: Path, trained: TrainResult) -> None:
    path = tmp_path / "model.pt"
    save_artifact(trained.to_bundle(), path)
    with pytest.raises(ValueError, match="does not match"):
        load_artifact(path, expected_sha256="0" * 64)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a loadable"):
        load_artifact(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a medai"):
        load_artifact(tmp_path / "plain.pt")


class _Boom:
    def __reduce__(self) -> tuple:
        return (exec, ("raise SystemExit('code ran while loading')",))


def test_pickled_code_is_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Boom()}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match="not a loadable"):
        load_artifact(path)
