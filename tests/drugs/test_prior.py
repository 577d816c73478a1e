"""The shipped generator prior: verified, registered once, in service from the first start,
and the generator every design run fine-tunes by default."""

from __future__ import annotations

import hashlib
import json

import pytest

from drugs.models import GENERATOR_TASK, DesignRun
from drugs.prior import ARTIFACT_NAME, generator_prior_ensure, prior_dir
from drugs.services import design_run_start
from medai_site.registry.models import ModelActivation, ModelVersion
from tests.drugs.configs import TINY_GAN


@pytest.fixture
def shipped(tmp_path, moses_smiles):
    """A prior folder laid out like data/models/drugs-generator-prior/ (an untrained model)."""
    from drugs.ml.gan import GanArtifact, GanConfig, Generator, Vocab

    config = GanConfig(embed_dim=8, hidden_dim=16, layers=1, max_length=80)
    vocab = Vocab.from_smiles(moses_smiles[:500])
    artifact = GanArtifact(
        vocab,
        config,
        Generator(len(vocab), config).state_dict(),
        provenance={"hardware": "test CPU", "steps": 0},
    )
    artifact.save(tmp_path / ARTIFACT_NAME, half=True)
    digest = hashlib.sha256((tmp_path / ARTIFACT_NAME).read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  {ARTIFACT_NAME}\n")
    table = {"rows": {"generator": {"valid": 0.9, "fcd_test": 1.5, "novelty": 0.95}}}
    (tmp_path / "metrics.json").write_text(json.dumps({"moses": {**table, "samples": 30000}}))
    return tmp_path


@pytest.mark.django_db
def test_the_prior_goes_into_service_once_by_bootstrap(users, shipped):
    version, note = generator_prior_ensure(user=users.model_admin, folder=shipped)
    assert version.status == ModelVersion.Status.ACTIVE and "in service" in note
    activation = ModelActivation.objects.get(task=GENERATOR_TASK)
    assert activation.kind == ModelActivation.Kind.BOOTSTRAP
    assert version.sha256 == (shipped / "SHA256SUMS").read_text().split()[0]
    assert version.metrics["valid"] == 0.9 and version.metrics["fcd"] == 1.5
    assert version.params["pretrain"]["hardware"] == "test CPU"
    again, note = generator_prior_ensure(user=users.model_admin, folder=shipped)
    assert again == version and "already registered" in note
    assert ModelVersion.objects.filter(task=GENERATOR_TASK).count() == 1


@pytest.mark.django_db
def test_a_prior_that_fails_its_sha256_is_not_registered(users, shipped):
    with (shipped / ARTIFACT_NAME).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ValueError, match="was refused: .* has sha256"):
        generator_prior_ensure(user=users.model_admin, folder=shipped)
    (shipped / "SHA256SUMS").unlink()
    with pytest.raises(ValueError, match="is missing: .*SHA256SUMS does not exist"):
        generator_prior_ensure(user=users.model_admin, folder=shipped)
    assert not ModelVersion.objects.filter(task=GENERATOR_TASK).exists()


@pytest.mark.django_db
def test_design_runs_fine_tune_the_generator_in_service_unless_told_otherwise(
    users, shipped, moses_dataset
):
    prior, _ = generator_prior_ensure(user=users.model_admin, folder=shipped)
    common = {"dataset": moses_dataset, "name": "r", "config": TINY_GAN, "user": users.researcher}
    run = design_run_start(**common)
    assert run.kind == DesignRun.Kind.FINETUNE and run.base_version == prior
    scratch = design_run_start(**common, from_scratch=True)
    assert scratch.kind == DesignRun.Kind.TRAIN and scratch.base_version is None


@pytest.mark.django_db
def test_seed_demo_puts_the_shipped_prior_into_service(users):
    from drugs.demo import demo_drugs_ensure

    if not (prior_dir() / ARTIFACT_NAME).is_file():
        pytest.fail(f"no prior shipped in {prior_dir()}")
    note = demo_drugs_ensure(user=users.model_admin, train=False)
    active = ModelVersion.objects.get(task=GENERATOR_TASK, status=ModelVersion.Status.ACTIVE)
    assert "generator prior" in note and active.training_data["shipped"].endswith(ARTIFACT_NAME)
    assert demo_drugs_ensure(user=users.model_admin, train=False).count("already registered") == 1


@pytest.mark.django_db
def test_the_run_form_preselects_the_prior_and_its_empty_choice_trains_from_scratch(
    users, shipped, moses_dataset
):
    from django.urls import reverse

    from tests.drugs.test_views import _advanced_defaults
    from tests.support.clients import login

    prior, _ = generator_prior_ensure(user=users.model_admin, folder=shipped)
    client = login(users.researcher)
    page = client.get(reverse("drugs:run_create")).content.decode()
    assert f'<option value="{prior.pk}" selected>' in page
    assert "from scratch (ORGAN-style, no prior)" in page
    form = {
        "dataset": moses_dataset.pk,
        "train_limit": 1000,
        "n_samples": 500,
        **{k: v for k, v in TINY_GAN.items() if k in ("pretrain_epochs", "adversarial_epochs")},
        "temperature": 1.0,
        "w_realism": 1,
        **{w: 0 for w in ("w_qed", "w_sa", "w_lipinski", "w_pains", "w_activity")},
        **_advanced_defaults(),
    }
    for base, kind in ((prior.pk, DesignRun.Kind.FINETUNE), ("", DesignRun.Kind.TRAIN)):
        response = client.post(reverse("drugs:run_create"), {**form, "base_version": base})
        assert response.status_code == 302, response.content.decode()[:2000]
        assert DesignRun.objects.latest("pk").kind == kind
