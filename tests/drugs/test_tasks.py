from __future__ import annotations

import pytest

from drugs.models import GENERATOR_TASK, DesignRun
from drugs.services import design_run_sample_start, design_run_start
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion
from tests.drugs.configs import TINY_GAN


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.django_db
def test_design_run_trains_registers_a_generator_and_stores_evaluated_molecules(
    users, moses_dataset, run_job
):
    run = design_run_start(
        dataset=moses_dataset,
        name="tiny",
        config=TINY_GAN,
        n_samples=300,
        train_limit=400,
        user=users.researcher,
    )
    job = run_job(run.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    run.refresh_from_db()
    assert run.is_done
    # Per-epoch curves: two pre-training epochs then one adversarial epoch.
    assert [h["phase"] for h in run.history] == ["pretrain", "pretrain", "adversarial"]
    assert all("samples" not in h for h in run.history)
    assert run.history[-1]["d_loss"] is not None
    version = run.generator
    assert version.task == GENERATOR_TASK and version.status == ModelVersion.Status.READY
    assert version.training_data["dataset_id"] == moses_dataset.pk
    assert set(run.metrics) >= {"valid", "unique@1k", "novelty", "intdiv", "snn", "fcd"}
    assert run.n_sampled == 300 and 0 < run.n_unique <= run.n_valid <= 300
    assert run.molecules.count() == run.n_unique
    molecule = run.molecules.order_by("-qed").first()
    assert 0 < molecule.qed <= 1 and molecule.mw > 0 and molecule.x is not None
    assert sum(m.count for m in run.molecules.all()) == run.n_valid
    # The training-set row and property sample are cached on the data set for the next run.
    moses_dataset.refresh_from_db()
    assert moses_dataset.reference_metrics["metrics"]["valid"] == 1.0
    assert moses_dataset.reference_metrics["metrics"]["novelty"] is None
    assert len(moses_dataset.reference_metrics["properties"]["qed"]) > 100
    assert len(run.result["space"]["train"]) > 100
    assert len(run.result["space"]["explained"]) == 2
    assert job.result["url"].endswith(f"/drugs/runs/{run.pk}/")
    # The goal-directed comparison on the run's objective (QED only, realism left out): the
    # run, the best of a seeded MOSES training sample, and the run's own generator after
    # maximum-likelihood pre-training (a from-scratch run has no other prior).
    goal = run.result["goal"]
    assert goal["status"] == "done" and goal["k"] == 100 and goal["objective"] == {"qed": 0.5}
    assert set(goal["rows"]) == {"run", "train", "prior"}
    assert goal["rows"]["run"]["n_scored"] == run.n_unique
    train_row = goal["rows"]["train"]
    assert train_row["sampled"] == 300 and 250 < train_row["n_scored"] <= 300
    assert not train_row["cached"]
    assert train_row["source"].startswith("MOSES train")
    assert 0 < train_row["top_1"] <= 1 and 0 < train_row["intdiv"] < 1
    assert goal["rows"]["prior"]["generator"].endswith("maximum-likelihood pre-training")
    assert goal["rows"]["prior"]["sampled"] == 300
    assert set(goal["beats"]) == {"train", "prior"}
    assert goal["beats"]["train"] == (goal["rows"]["run"]["top_k_mean"] > train_row["top_k_mean"])

    # Generate more from the registered generator: no training, same evaluation.
    again = design_run_sample_start(version=version, n_samples=200, user=users.researcher)
    assert again.dataset == moses_dataset
    job = run_job(again.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    again.refresh_from_db()
    assert again.kind == DesignRun.Kind.SAMPLE and again.generator == version
    assert again.n_sampled == 200 and again.molecules.exists() and again.history == []
    assert again.result["goal"] == {"status": "sample_run"}
    assert ModelVersion.objects.filter(task=GENERATOR_TASK).count() == 1
    # A rerun of a finished job's function changes nothing.
    assert run_job(Job.objects.get(pk=again.job.pk)).status == Job.Status.SUCCEEDED
    assert again.molecules.count() == DesignRun.objects.get(pk=again.pk).molecules.count()

    # Fine-tuning starts from that generator (its vocabulary and shape) with new objectives.
    tuned = design_run_start(
        dataset=moses_dataset,
        name="tuned",
        config={**TINY_GAN, "pretrain_epochs": 1, "hidden_dim": 16, "w_sa": 0.5},
        n_samples=200,
        train_limit=200,
        user=users.researcher,
        base_version=version,
    )
    job = run_job(tuned.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    tuned.refresh_from_db()
    assert tuned.kind == DesignRun.Kind.FINETUNE and tuned.generator.version == version.version + 1
    from drugs.artifacts import load_generator

    assert load_generator(tuned.generator).config.hidden_dim == TINY_GAN["hidden_dim"]
    # Its prior row samples the version it started from; the new objective scores its own
    # training-set sample.
    goal = tuned.result["goal"]
    assert goal["objective"] == {"qed": 0.5, "sa": 0.5}
    assert goal["rows"]["prior"]["generator"] == str(version)
    assert goal["rows"]["prior"]["sampled"] == 200 and not goal["rows"]["train"]["cached"]


@pytest.mark.django_db
def test_cancelling_a_run_stops_training_and_keeps_its_curves(
    users, moses_dataset, monkeypatch, run_job
):
    import drugs.design
    from drugs.services import design_run_record_history as record

    def record_then_cancel(*, run, history):
        record(run=run, history=history)
        Job.objects.filter(pk=run.job_id).update(cancel_requested=True)

    monkeypatch.setattr(drugs.design, "design_run_record_history", record_then_cancel)
    run = design_run_start(
        dataset=moses_dataset,
        name="to cancel",
        config={**TINY_GAN, "pretrain_epochs": 5},
        n_samples=200,
        train_limit=300,
        user=users.researcher,
    )
    job = run_job(run.job)
    assert job.status == Job.Status.CANCELLED
    run.refresh_from_db()
    assert not run.is_done and len(run.history) == 1
    assert not ModelVersion.objects.filter(task=GENERATOR_TASK).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pretrain_epochs": 0, "adversarial_epochs": 0}, "at least one epoch"),
        ({"batch_size": 1}, "batch size"),
        ({"w_realism": 0, "w_qed": 0}, "positive weight"),
        ({"w_activity": 1.0}, "predictor"),
    ],
)
@pytest.mark.django_db
def test_bad_run_settings_are_refused_before_anything_is_queued(
    users, moses_dataset, change, message
):
    with pytest.raises(ValueError, match=message):
        design_run_start(
            dataset=moses_dataset,
            name="bad",
            config={**TINY_GAN, **change},
            user=users.researcher,
        )
    assert (
        not DesignRun.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["gradient_boosting"])
def test_every_model_kind_the_form_offers_trains(users, run_job, kind):
    from drugs.forms import PredictorTrainingForm
    from drugs.services import PREDICTOR_KINDS, predictor_train_start

    offered = dict(PredictorTrainingForm(endpoints=[], can_activate=False).fields["kind"].choices)
    assert set(offered) == set(PREDICTOR_KINDS) == {"random_forest", kind}
    job = run_job(
        predictor_train_start(endpoint="FreeSolv", kind=kind, cv_folds=2, user=users.researcher)
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert "gradient boosting" in job.title


@pytest.mark.django_db
def test_predictor_training_registers_cv_metrics_and_scores_a_design_run(
    users, moses_dataset, run_job
):
    from drugs.models import predictor_task
    from drugs.services import predictor_train_start

    job = run_job(
        predictor_train_start(
            endpoint="FreeSolv", kind="random_forest", cv_folds=2, user=users.researcher
        )
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(task=predictor_task("FreeSolv"))
    assert version.task == "drugs.predictor.freesolv"
    # The first version of an endpoint goes into service by itself.
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.metrics["rmse_mean"] > 0 and version.metrics["cv_folds"] == 2
    assert version.training_data["endpoint"] == "FreeSolv"
    assert "RMSE" in job.result["summary"] and "now in service" in job.result["summary"]

    # The activity objective rewards the predictor's output; every molecule is scored by it.
    run = design_run_start(
        dataset=moses_dataset,
        name="with activity",
        config={**TINY_GAN, "w_activity": 0.5},
        activity_endpoint="FreeSolv",
        n_samples=200,
        train_limit=300,
        user=users.researcher,
    )
    job = run_job(run.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    run.refresh_from_db()
    assert run.result["predictors"]["FreeSolv"]["version_id"] == version.pk
    values = [m.predictions.get("FreeSolv") for m in run.molecules.all()]
    assert values and all(isinstance(v, float) for v in values)
    # Every prediction carries its applicability domain against the predictor's threshold.
    verdicts = [m.applicability["FreeSolv"] for m in run.molecules.all()]
    assert all(v["status"] in ("inside", "outside") for v in verdicts)
    assert all(
        v["threshold"] == round(version.metrics["applicability_threshold"], 2) for v in verdicts
    )
    assert run.history[-1]["mean_reward"] is not None


@pytest.mark.django_db
def test_unknown_predictor_endpoint_is_refused(users):
    from drugs.services import predictor_train_start

    with pytest.raises(ValueError, match="Unknown endpoint"):
        predictor_train_start(endpoint="Potency", kind="random_forest", user=users.researcher)
    assert not Job.objects.exclude(kind="registry.validate").exists()
