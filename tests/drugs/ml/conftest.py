"""Real molecules for the drugs ML tests: the MOSES authors' 10k subsets shipped in data/molecules."""

from __future__ import annotations

import pytest
import torch

from drugs.ml.datasets import load_smiles_file, moses_10k_dir


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The CI machine has 2 cores shared with other work.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def moses_train() -> list[str]:
    path = moses_10k_dir() / "train10k.csv"
    assert path.is_file(), f"MOSES 10k subset not found at {path}; set MEDAI_SHARED_DATA"
    return load_smiles_file(path)


@pytest.fixture(scope="session")
def moses_test() -> list[str]:
    return load_smiles_file(moses_10k_dir() / "test_10k.csv")
