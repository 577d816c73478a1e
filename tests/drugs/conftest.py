"""Drug-design fixtures: real molecules (the shipped MOSES 10k subset) and helpers to run jobs
in the test process."""

from __future__ import annotations

import pytest

from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import job_execute


def run_job(job: Job) -> Job:
    """Run a queued job here, the way a worker would, and return it reloaded."""
    job_execute(job_id=job.pk, fn=get_kind(job.kind).task.job_function)
    job.refresh_from_db()
    return job


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


# A generator small enough to train in seconds on a CPU (the product's defaults take minutes).
TINY_GAN = {
    "pretrain_epochs": 2,
    "adversarial_epochs": 1,
    "batch_size": 32,
    "embed_dim": 16,
    "hidden_dim": 48,
    "layers": 1,
    "samples_per_epoch": 64,
    "pg_steps_per_epoch": 2,
    "discriminator_steps_per_epoch": 2,
    "discriminator_pretrain_steps": 2,
    "max_length": 80,
    "lr": 5e-3,
    "w_qed": 0.5,
}


@pytest.fixture(autouse=True)
def _small_metrics_reference(settings):
    # FCD needs ChemNet activations of every reference molecule: 500 keep a test to seconds.
    settings.DRUGS_METRICS_TEST_SIZE = 500
