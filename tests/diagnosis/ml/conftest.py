"""Shared fixtures: the real PneumoniaMNIST file and one small model trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diagnosis.ml.data import ImageDataset, load_npz
from diagnosis.ml.train import TrainConfig, TrainResult, train

NPZ = Path(__file__).resolve().parents[3] / "data" / "medmnist" / "pneumoniamnist.npz"
CLASS_NAMES = ("normal", "pneumonia")
# Small enough to train in a few seconds on 2 CPU cores, large enough to beat chance clearly.
QUICK = TrainConfig(width=16, epochs=3, batch_size=32, lr=5e-3, ema_decay=0.0, seed=0)


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    # The CI machine has 2 cores shared with other work; more threads only add contention.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def pneumonia() -> ImageDataset:
    return load_npz(NPZ, class_names=CLASS_NAMES)


@pytest.fixture(scope="session")
def small_pneumonia(pneumonia: ImageDataset) -> ImageDataset:
    return pneumonia.subset(train=600, val=200, test=200, seed=0)


@pytest.fixture(scope="session")
def trained(small_pneumonia: ImageDataset) -> TrainResult:
    return train(small_pneumonia, QUICK)
