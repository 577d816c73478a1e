"""Drug models in shadow: a shadow property predictor predicts the molecules a design run has
just stored, once each, without changing or failing the run; the generator cannot run in
shadow and says why."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from drugs.models import GENERATOR_TASK, predictor_task
from drugs.services import design_run_start, predictor_train_start
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion, ShadowResult
from medai_site.registry.shadow import model_version_shadow_start, shadow_models_clear
from tests.drugs.configs import TINY_GAN
from tests.platform.factories import ModelVersionFactory, UserFactory
from tests.support.clients import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    shadow_models_clear()
    yield
    torch.set_num_threads(threads)
    shadow_models_clear()


def test_a_shadow_predictor_scores_the_runs_molecules_once(users, moses_dataset, run_job):
    # Two fits of the same settings: the second (ready) is the shadow.
    for kind in ("random_forest", "random_forest"):
        job = run_job(
            predictor_train_start(endpoint="FreeSolv", kind=kind, cv_folds=2, user=users.researcher)
        )
        assert job.status == Job.Status.SUCCEEDED, job.error
    active, challenger = (
        ModelVersion.objects.filter(task=predictor_task("FreeSolv")).order_by("version").all()
    )
    assert active.status == ModelVersion.Status.ACTIVE
    ModelVersion.objects.filter(pk=challenger.pk).update(
        approved_by=UserFactory(username="second_admin")
    )
    challenger.refresh_from_db()
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="gbm vs rf")
    run = design_run_start(
        dataset=moses_dataset,
        name="live",
        config=TINY_GAN,
        n_samples=120,
        train_limit=300,
        user=users.researcher,
    )
    job = run_job(run.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    run.refresh_from_db()
    molecules = {str(m.pk): m for m in run.molecules.all()}
    results = ShadowResult.objects.filter(shadow_version=challenger)
    assert {r.item_id for r in results} == set(molecules) and molecules
    for result in results:
        molecule = molecules[result.item_id]
        assert result.item_type == "drugs.generatedmolecule"
        # The run keeps the predictions of the predictor in service.
        assert result.active_score == molecule.predictions["FreeSolv"]
        assert result.shadow_label in {"low", "middle", "high"}
        # Same settings and seed, same molecules: the shadow reproduces the live prediction,
        # so the comparison is like for like.
        assert result.shadow_score == pytest.approx(result.active_score, abs=1e-2)
    assert run.result["predictors"]["FreeSolv"]["version_id"] == active.pk
    # The run's pages show the version in service only.
    client = login(users.researcher)
    for url in (
        reverse("drugs:run_detail", args=[run.pk]),
        reverse("drugs:run_molecules", args=[run.pk]),
        reverse("drugs:run_export", args=[run.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert str(challenger).encode() not in body, url


def test_the_generator_cannot_run_in_shadow_and_says_why(users):
    ModelVersionFactory(task=GENERATOR_TASK, version=1, status=ModelVersion.Status.ACTIVE)
    candidate = ModelVersionFactory(
        task=GENERATOR_TASK, version=2, approved_by=UserFactory(username="second")
    )
    with pytest.raises(ValidationError, match="its own generation"):
        model_version_shadow_start(version=candidate, user=users.model_admin, reason="try")
    page = login(users.model_admin).get(reverse("registry:shadow_dashboard", args=[candidate.pk]))
    assert b"its own generation" in page.content and b"data-side-by-side" in page.content
