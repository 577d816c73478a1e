"""Demo data for seed_demo: the shipped pre-trained GBSG2 treatment model
(data/models/treatment-gbsg2/), in service from the first start; a first training run is queued
only when that shipped model cannot be used."""

from __future__ import annotations

from typing import Any

from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job
from treatment.services import model_train_start, task_name
from treatment.training import SHIPPED_SETTINGS, SHIPPED_SLUG, SHIPPED_TRIAL


def demo_treatment_ensure(*, user: Any, train: bool) -> str:
    """While GBSG2's task has never had a model in service, put the shipped Cox model into
    service (bootstrap, validated here and now); when it is missing or refused and ``train``,
    queue a Cox run that goes into service when done. Idempotent; a console line ("" if
    nothing was done)."""
    from medai_site.registry.models import ModelVersion
    from medai_site.registry.services import model_task_bootstrappable
    from medai_site.registry.shipped import ShippedArtifactError, shipped_model_install

    task = task_name(SHIPPED_TRIAL)
    if not model_task_bootstrappable(task=task):
        return ""
    try:
        return shipped_model_install(slug=SHIPPED_SLUG, user=user).note("GBSG2 treatment model")
    except ShippedArtifactError as exc:
        problem = str(exc)
    if not train or ModelVersion.objects.filter(task=task).exists():
        return problem
    if Job.objects.filter(kind="treatment.training", status__in=["queued", "running"]).exists():
        return problem
    model_train_start(trial=SHIPPED_TRIAL, kind=SHIPPED_SETTINGS["kind"], activate=True, user=user)
    return problem + "; queued the GBSG2 treatment model instead (Cox, about a minute)"


def demo_treatment_seed(run: DemoRun) -> str:
    """seed_demo's treatment step: :func:`demo_treatment_ensure` for the demo model admin."""
    return demo_treatment_ensure(user=run.model_admin, train=run.train)
