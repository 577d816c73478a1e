"""The drug-design families' validation hooks: a property predictor on its endpoint's
deterministic scaffold held-out molecules (paired), the generator on its own samples against
the MOSES test molecules (unpaired, said so)."""

from __future__ import annotations

import pytest

from drugs.models import GENERATOR_TASK, predictor_task
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelValidation
from medai_site.registry.services import model_version_register
from tests.support.governance import activate_version

pytestmark = pytest.mark.django_db


def run_validation(version, run_job) -> ModelValidation:
    pending = version.validations.get(status=ModelValidation.Status.PENDING)
    job = Job.objects.get(kind="registry.validate", params__validation_id=pending.pk)
    assert run_job(job).status == Job.Status.SUCCEEDED
    pending.refresh_from_db()
    return pending


def predictor_bytes(endpoint: str, n_estimators: int) -> bytes:
    from drugs import sources
    from drugs.artifacts import artifact_bytes
    from drugs.ml.predictors import fit_predictor, load_endpoint

    smiles, y, task = load_endpoint(endpoint, sources.moleculenet_dir())
    artifact, _ = fit_predictor(
        smiles, y, task, cv_folds=2, n_estimators=n_estimators, endpoint=endpoint
    )
    return artifact_bytes(artifact.save)


def test_scaffold_holdout_is_deterministic_and_keeps_scaffolds_together():
    from drugs import sources
    from drugs.ml.predictors import load_endpoint, scaffold_groups, scaffold_holdout

    smiles, _, _ = load_endpoint("BBBP", sources.moleculenet_dir())
    held = scaffold_holdout(smiles)
    assert 0.1 < held.mean() < 0.3
    assert (scaffold_holdout(list(reversed(smiles)))[::-1] == held).all()  # order-free
    groups = scaffold_groups(smiles)
    for group in set(groups[held]):
        assert held[groups == group].all()


def test_predictor_versions_are_compared_on_the_same_molecules(users, run_job, settings):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 100
    task = predictor_task("BBBP")
    v1 = model_version_register(
        task=task,
        artifact=predictor_bytes("BBBP", 20),
        created_by=users.model_admin,
        training_data={"endpoint": "BBBP"},
    )
    first = run_validation(v1, run_job)
    assert first.metric == "auroc" and first.value > 0.6, first.error
    activate_version(v1, users.model_admin)
    v2 = model_version_register(
        task=task,
        artifact=predictor_bytes("BBBP", 5),
        created_by=users.model_admin,
        training_data={"endpoint": "BBBP"},
    )
    second = run_validation(v2, run_job)
    assert second.held_out_ref == first.held_out_ref and second.held_out_ref["size"] == 100
    assert second.compared_to == v1 and second.paired and second.diff is not None


def test_a_regression_predictor_is_judged_by_rmse_against_predicting_the_mean(
    users, run_job, settings
):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 100
    version = model_version_register(
        task=predictor_task("ESOL"),
        artifact=predictor_bytes("ESOL", 20),
        created_by=users.model_admin,
        training_data={"endpoint": "ESOL"},
    )
    validation = run_validation(version, run_job)
    assert validation.metric == "rmse" and not validation.higher_is_better, validation.error
    assert validation.floor is not None and "standard deviation" in validation.verdict


def test_generator_versions_are_compared_unpaired_on_their_own_samples(
    users, run_job, settings, moses_smiles
):
    from drugs.artifacts import artifact_bytes
    from drugs.ml.gan import GanConfig, train_gan
    from tests.drugs.configs import TINY_GAN

    settings.MEDAI_HELDOUT_MAX_ITEMS = 64
    generators = [
        artifact_bytes(
            train_gan(GanConfig.from_dict({**TINY_GAN, "seed": s}), moses_smiles[:300]).save
        )
        for s in (0, 1)
    ]
    v1 = model_version_register(
        task=GENERATOR_TASK, artifact=generators[0], created_by=users.model_admin
    )
    first = run_validation(v1, run_job)
    assert first.metric == "validity" and not first.paired, first.error
    assert first.held_out_ref["name"].startswith("MOSES test set")
    assert "Unpaired" in first.details["notes"][0]
    activate_version(v1, users.model_admin)
    v2 = model_version_register(
        task=GENERATOR_TASK, artifact=generators[1], created_by=users.model_admin
    )
    second = run_validation(v2, run_job)
    assert second.held_out_ref == first.held_out_ref
    assert second.compared_to == v1 and not second.paired and second.diff is not None
    assert "unpaired" in second.verdict
