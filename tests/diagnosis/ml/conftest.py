"""Shared fixtures: the real PneumoniaMNIST file and one small model trained once per session."""

from __future__ import annotations

import pytest
import torch

from diagnosis.ml.data import ImageDataset, load_npz
from diagnosis.ml.train import TrainResult, train
from tests.diagnosis.ml.configs import CLASS_NAMES, NPZ, QUICK
from tests.support.parallel import torch_threads


@pytest.fixture(scope="session", autouse=True)
def _two_threads() -> None:
    # The CI machine has 2 cores shared with bin/test's other process; more threads only add
    # contention.
    torch.set_num_threads(torch_threads())


@pytest.fixture(scope="session")
def pneumonia() -> ImageDataset:
    return load_npz(NPZ, class_names=CLASS_NAMES)


@pytest.fixture(scope="session")
def small_pneumonia(pneumonia: ImageDataset) -> ImageDataset:
    return pneumonia.subset(train=600, val=200, test=200, seed=0)


@pytest.fixture(scope="session")
def trained(small_pneumonia: ImageDataset) -> TrainResult:
    return train(small_pneumonia, QUICK)
