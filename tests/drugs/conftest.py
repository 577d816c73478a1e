"""Drug-design fixtures: real molecules (the shipped MOSES 10k subset)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def moses_smiles() -> list[str]:
    from drugs import sources
    from drugs.ml.datasets import load_smiles_file

    return load_smiles_file(sources.moses_train_10k())


@pytest.fixture
def moses_dataset(db, users):
    from drugs.models import MoleculeDataset
    from drugs.services import MOSES_10K_NAME, dataset_builtin_ensure

    dataset_builtin_ensure(user=users.researcher)
    return MoleculeDataset.objects.get(name=MOSES_10K_NAME)


@pytest.fixture(autouse=True)
def _small_metrics_reference(settings):
    # FCD needs ChemNet activations of every reference molecule: 500 keep a test to seconds.
    settings.DRUGS_METRICS_TEST_SIZE = 500


@pytest.fixture(autouse=True)
def _small_goal_baseline(settings, tmp_path):
    # The goal-directed comparison's training-set sample: 300 molecules score in about a
    # second; each test gets its own cache folder.
    settings.DRUGS_GOAL_BASELINE_SAMPLE = 300
    settings.MEDAI_CACHE_DIR = tmp_path / "cache"
