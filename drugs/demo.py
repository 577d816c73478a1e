"""Demo data for seed_demo: the built-in MOSES data sets, the shipped generator prior (in
service from the first start) and the first BBBP predictor."""

from __future__ import annotations

from typing import Any

from drugs.services import dataset_builtin_ensure, predictor_task, predictor_train_start
from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job


def demo_drugs_ensure(*, user: Any, train: bool) -> str:
    """Register the built-in MOSES data sets and the shipped generator prior (into service when
    no generator ever was, after its sha256 check); if ``train`` and no BBBP predictor exists,
    queue one (minutes on CPU; it goes into service when done). Idempotent; a console line."""
    from drugs.prior import generator_prior_ensure
    from medai_site.registry.models import ModelVersion

    notes = [f"registered the {d.name} data set" for d in dataset_builtin_ensure(user=user)]
    try:
        _, note = generator_prior_ensure(user=user)
    except ValueError as exc:  # none shipped, or a file that fails its sha256 check
        note = f"generator prior not registered: {exc}"
    notes.append(note)
    task = predictor_task("BBBP")
    busy = Job.objects.filter(kind="drugs.predictor_training", status__in=["queued", "running"])
    if train and not ModelVersion.objects.filter(task=task).exists() and not busy.exists():
        try:
            predictor_train_start(endpoint="BBBP", kind="random_forest", user=user, activate=True)
        except ValueError:
            pass  # an installation whose ml layer has no BBBP endpoint
        else:
            notes.append("queued the BBBP property predictor (random forest, about a minute)")
    return "; ".join(notes)


def demo_drugs_seed(run: DemoRun) -> str:
    """seed_demo's drug-design step: :func:`demo_drugs_ensure` for the demo model admin."""
    return demo_drugs_ensure(user=run.model_admin, train=run.train)
