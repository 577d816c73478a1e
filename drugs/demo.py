"""Demo data for seed_demo: the built-in MOSES data sets, the shipped generator prior
(data/models/drugs-generator-prior/) and the shipped pre-trained BBBP predictor
(data/models/drugs-predictor-bbbp/), both in service from the first start; a first BBBP
training run is queued only when that shipped model cannot be used."""

from __future__ import annotations

from typing import Any

from drugs.services import dataset_builtin_ensure, predictor_task, predictor_train_start
from drugs.training import SHIPPED_ENDPOINT, SHIPPED_KIND, SHIPPED_SLUG
from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job


def demo_drugs_ensure(*, user: Any, train: bool) -> str:
    """Register the built-in MOSES data sets and the shipped generator prior (into service when
    no generator ever was, after its sha256 check); while the BBBP task has never had a
    predictor in service, put the shipped one into service (bootstrap, validated here and
    now), or, when it is missing or refused and ``train``, queue a training run. Idempotent;
    a console line."""
    from drugs.prior import generator_prior_ensure
    from medai_site.registry.models import ModelVersion
    from medai_site.registry.services import model_task_bootstrappable
    from medai_site.registry.shipped import ShippedArtifactError, shipped_model_install

    notes = [f"registered the {d.name} data set" for d in dataset_builtin_ensure(user=user)]
    try:
        _, note = generator_prior_ensure(user=user)
    except ValueError as exc:  # none shipped, or a file that fails its sha256 check
        note = f"generator prior not registered: {exc}"
    notes.append(note)
    task = predictor_task(SHIPPED_ENDPOINT)
    if not model_task_bootstrappable(task=task):
        return "; ".join(notes)
    try:
        notes.append(
            shipped_model_install(slug=SHIPPED_SLUG, user=user).note("BBBP property predictor")
        )
        return "; ".join(n for n in notes if n)
    except ShippedArtifactError as exc:
        notes.append(str(exc))
    busy = Job.objects.filter(kind="drugs.predictor_training", status__in=["queued", "running"])
    if train and not ModelVersion.objects.filter(task=task).exists() and not busy.exists():
        try:
            predictor_train_start(
                endpoint=SHIPPED_ENDPOINT, kind=SHIPPED_KIND, user=user, activate=True
            )
        except ValueError:
            pass  # an installation whose ml layer has no BBBP endpoint
        else:
            notes.append("queued the BBBP property predictor instead (random forest)")
    return "; ".join(notes)


def demo_drugs_seed(run: DemoRun) -> str:
    """seed_demo's drug-design step: :func:`demo_drugs_ensure` for the demo model admin."""
    return demo_drugs_ensure(user=run.model_admin, train=run.train)
