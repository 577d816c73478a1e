"""Shared fixtures: the real PneumoniaMNIST file and one small model trained once per session."""

from __future__ import annotations

import pytest
import torch

from diagnosis.ml.data import ImageDataset, load_npz
from diagnosis.ml.train import TrainResult, train
from tests.diagnosis.ml.configs import CLASS_NAMES, NPZ, QUICK


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    # The CI machine has 2 cores. Two threads even beside bin/test's other process: the
    # fixture model's numbers (and the OOD rates tests assert on) follow the thread count.
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
