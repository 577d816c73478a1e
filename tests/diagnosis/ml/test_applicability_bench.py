"""bench/applicability.py prints exactly one `<set>: images N, flagged K, rate R` line per set,
the in-distribution one first (named after the .npz, scored on its test split)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.applicability import main
from diagnosis.ml.artifact import load_artifact, save_artifact
from diagnosis.ml.data import ImageDataset
from diagnosis.ml.ood import DEFAULT_METHOD, DEFAULT_QUANTILE, DEFAULT_SCALING
from diagnosis.ml.train import TrainConfig, TrainResult, ood_fit_for

LINE = re.compile(r"^(?P<set>[^:]+): images (?P<n>\d+), flagged (?P<k>\d+), rate (?P<r>[0-9.]+)$")


def _npz(path: Path, data: ImageDataset) -> Path:
    arrays = {}
    for split in ("train", "val", "test"):
        images, labels = data.split(split)
        arrays[f"{split}_images"] = images[:60, :, :, 0]
        arrays[f"{split}_labels"] = labels[:60, None]
    np.savez(path, **arrays)
    return path


def _ood_folder(root: Path) -> Path:
    folder = root / "blank-and-noise"
    (folder / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(np.full((64, 64), 40 * i, np.uint8)).save(folder / f"blank{i}.png")
        noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(folder / "deeper" / f"noise{i}.jpg")
    (folder / "readme.txt").write_text("not an image")
    return folder


def _lines(capsys: pytest.CaptureFixture[str]) -> list[re.Match[str]]:
    out = capsys.readouterr().out.splitlines()
    matches = [LINE.match(line) for line in out]
    assert all(matches), out
    return matches  # type: ignore[return-value]


def test_bench_line_format_with_an_artifact(
    tmp_path: Path,
    trained: TrainResult,
    small_pneumonia: ImageDataset,
    capsys: pytest.CaptureFixture[str],
) -> None:
    artifact = tmp_path / "model.pt"
    save_artifact(trained.to_bundle(), artifact)
    npz = _npz(tmp_path / "pneumoniamnist.npz", small_pneumonia)
    folder = _ood_folder(tmp_path)
    code = main(
        [
            "--task",
            "diagnosis.pneumonia",
            "--artifact",
            str(artifact),
            "--in-dist",
            str(npz),
            "--ood-dir",
            str(folder),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    first, second = _lines(capsys)
    assert first["set"] == "pneumoniamnist.npz" and first["n"] == "60"
    # The text file is not an image; the six images in two folder levels are.
    assert second["set"] == "blank-and-noise" and second["n"] == "6"
    # The colour JPEGs are refused by the contract's channel check at least.
    assert int(second["k"]) >= 3
    for match in (first, second):
        assert float(match["r"]) == pytest.approx(int(match["k"]) / int(match["n"]), abs=1e-4)


def test_bench_trains_the_default_model_without_an_artifact(
    tmp_path: Path, small_pneumonia: ImageDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _npz(tmp_path / "tiny.npz", small_pneumonia)
    folder = _ood_folder(tmp_path)
    args = ["--task", "diagnosis.pneumonia", "--in-dist", str(npz), "--ood-dir", str(folder)]
    # Tiny overrides keep the test fast; the default run uses TrainConfig() as bin/run does.
    args += ["--set", "epochs=1", "--set", "width=4", "--set", "tta=false", "--threads", "1"]
    assert main(args) == 0
    first, second = _lines(capsys)
    assert first["set"] == "tiny.npz" and first["n"] == "60"
    assert second["n"] == "6"


def test_bench_refits_only_the_detector_of_an_artifact(
    tmp_path: Path,
    trained: TrainResult,
    small_pneumonia: ImageDataset,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An artifact whose detector an older default fitted: --refit-ood gives it the product's
    # current detector without retraining the network, and --save-artifact keeps the result.
    bundle = trained.to_bundle()
    bundle.ood = ood_fit_for(
        bundle.model,
        small_pneumonia,
        bundle.normalisation,
        TrainConfig(ood_method="maha-layers+knn", ood_quantile=0.99, ood_scaling="std"),
    )
    old, new = tmp_path / "old.pt", tmp_path / "refit.pt"
    save_artifact(bundle, old)
    npz = _npz(tmp_path / "pneumoniamnist.npz", small_pneumonia)
    args = ["--task", "diagnosis.pneumonia", "--artifact", str(old), "--in-dist", str(npz)]
    args += ["--ood-dir", str(_ood_folder(tmp_path)), "--threads", "1", "--refit-ood"]
    assert main([*args, "--save-artifact", str(new)]) == 0
    assert [m["set"] for m in _lines(capsys)] == ["pneumoniamnist.npz", "blank-and-noise"]
    refit = load_artifact(new)
    assert refit.ood.method == DEFAULT_METHOD and refit.ood.quantile == DEFAULT_QUANTILE
    assert refit.ood.scaling == DEFAULT_SCALING and refit.ood.head is not None
    assert refit.config["ood_method"] == DEFAULT_METHOD
    for key, value in bundle.model.state_dict().items():
        assert torch.equal(refit.model.state_dict()[key], value)
    # Bad refit options are a usage error, not a traceback.
    with pytest.raises(SystemExit):
        main([*args, "--holdout", "1.5"])
